#include "control/held_controls.hpp"

#include <algorithm>

namespace telecap::control {

namespace {

template <typename K, typename T>
void note_kind(K& k, const std::optional<T>& current, const std::optional<T>& update,
               std::uint64_t holder) {
    if (!update) return;
    if (k.writes.empty()) k.base = current;  // before the live holders' first write
    std::erase_if(k.writes, [&](const auto& w) { return w.first == holder; });
    k.writes.emplace_back(holder, update);
}

template <typename K, typename T>
void supersede(K& k, const std::optional<T>& update) {
    if (update) k.writes.clear();
}

// The holder's writes go; the table's value follows when it had the latest word.
template <typename K, typename T>
bool withdraw_kind(K& k, std::uint64_t holder, std::optional<T>& current) {
    const auto it = std::find_if(k.writes.begin(), k.writes.end(),
                                 [&](const auto& w) { return w.first == holder; });
    if (it == k.writes.end()) return false;
    const bool latest = std::next(it) == k.writes.end();
    k.writes.erase(it);
    if (!latest) return false;
    current = k.writes.empty() ? k.base : k.writes.back().second;
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

void held_controls::note(std::uint64_t holder, const scope& where, const controls& current,
                         const controls& update) {
    auto& e = held_[{where.kind, where.name}];
    note_kind(e.enabled, current.enabled, update.enabled, holder);
    note_kind(e.sample, current.sample, update.sample, holder);
    note_kind(e.filt, current.filt, update.filt, holder);
    note_kind(e.limit, current.limit, update.limit, holder);
}

void held_controls::overridden(const scope& where, const controls& update) {
    const auto it = held_.find({where.kind, where.name});
    if (it == held_.end()) return;
    supersede(it->second.enabled, update.enabled);
    supersede(it->second.sample, update.sample);
    supersede(it->second.filt, update.filt);
    supersede(it->second.limit, update.limit);
    if (it->second.empty()) held_.erase(it);
}

void held_controls::reset(const scope& where) { held_.erase({where.kind, where.name}); }

bool held_controls::withdraw(std::uint64_t holder, control_table& table) {
    bool changed = false;
    for (auto it = held_.begin(); it != held_.end();) {
        const scope where{it->first.first, it->first.second};
        auto& e = it->second;
        controls& c = scope_controls(table, where);
        changed |= withdraw_kind(e.enabled, holder, c.enabled);
        changed |= withdraw_kind(e.sample, holder, c.sample);
        changed |= withdraw_kind(e.filt, holder, c.filt);
        changed |= withdraw_kind(e.limit, holder, c.limit);
        // An override left with nothing in it is no override (as after ctl reset).
        if (c == controls{}) {
            if (where.kind == scope_kind::pool) table.pools.erase(where.name);
            if (where.kind == scope_kind::worker) table.workers.erase(where.name);
        }
        it = e.empty() ? held_.erase(it) : std::next(it);
    }
    return changed;
}

}  // namespace telecap::control
