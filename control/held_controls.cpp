#include "control/held_controls.hpp"

namespace telecap::control {

namespace {

template <typename K, typename T>
void note_kind(K& k, const std::optional<T>& before, const std::optional<T>& update) {
    if (!update) return;
    if (!k.set) k.before = before;  // the first change keeps what was there before the holder
    k.set = true;
    k.now = update;
}

template <typename K, typename T>
bool restore_kind(const K& k, std::optional<T>& current) {
    // Changed by someone else since: theirs is the later word.
    if (!k.set || current != k.now) return false;
    current = k.before;
    return true;
}

}  // namespace

controls& scope_controls(control_table& table, const scope& where) {
    switch (where.kind) {
        case scope_kind::pool:
            return table.pools[where.name];
        case scope_kind::worker:
            return table.workers[where.name];
        case scope_kind::global:
            break;
    }
    return table.global;
}

void held_controls::note(std::uint64_t holder, const scope& where, const controls& before,
                         const controls& update) {
    auto it = held_.find(holder);
    if (it == held_.end() || it->second.where.kind != where.kind ||
        it->second.where.name != where.name) {
        record fresh;
        fresh.where = where;
        it = held_.insert_or_assign(holder, std::move(fresh)).first;
    }
    auto& r = it->second;
    note_kind(r.enabled, before.enabled, update.enabled);
    note_kind(r.sample, before.sample, update.sample);
    note_kind(r.filt, before.filt, update.filt);
    note_kind(r.limit, before.limit, update.limit);
}

bool held_controls::withdraw(std::uint64_t holder, control_table& table) {
    const auto it = held_.find(holder);
    if (it == held_.end()) return false;
    const record r = std::move(it->second);
    held_.erase(it);
    controls& c = scope_controls(table, r.where);
    bool changed = false;
    changed |= restore_kind(r.enabled, c.enabled);
    changed |= restore_kind(r.sample, c.sample);
    changed |= restore_kind(r.filt, c.filt);
    changed |= restore_kind(r.limit, c.limit);
    // An override left with nothing in it is no override: keep the table as ctl reset would.
    if (r.where.kind == scope_kind::pool && c == controls{}) table.pools.erase(r.where.name);
    if (r.where.kind == scope_kind::worker && c == controls{}) table.workers.erase(r.where.name);
    return changed;
}

}  // namespace telecap::control
