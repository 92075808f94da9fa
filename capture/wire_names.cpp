#include "capture/wire_names.hpp"

#include <algorithm>

namespace telecap {

namespace {

std::string dotted(const std::vector<std::string>& parts, std::size_t from = 0) {
    std::string out;
    for (std::size_t i = from; i < parts.size(); ++i) {
        if (i > from) out += '.';
        out += parts[i];
    }
    return out;
}

}  // namespace

void wire_names::add(const catalog& c) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < c.event_count(); ++i) {
        const std::string_view wire = c.wire_name(i);
        if (const auto* we = c.find_event(wire))
            by_name_.insert_or_assign(dotted(we->parts), entry{std::string(wire), i});
    }
    if (c.policies().unknown_event != unknown_event_policy::keep) return;
    const auto& prefix = c.policies().unknown_event_prefix;
    if (std::find(unknown_prefixes_.begin(), unknown_prefixes_.end(), prefix) ==
        unknown_prefixes_.end())
        unknown_prefixes_.push_back(prefix);
}

bool wire_names::find(const event& ev, entry& out) const {
    const std::string name = ev.dotted_name();
    std::lock_guard lock(mu_);
    if (const auto it = by_name_.find(name); it != by_name_.end()) {
        out = it->second;
        return true;
    }
    // Lifecycle events (snakepit.pool.worker.*) are telecap's, whatever a prefix says.
    if (ev.name.size() >= 2 && ev.name[0] == "snakepit" && ev.name[1] == "pool") return false;
    // A kept unknown name: a prefix, then at least one part of the worker's name.
    for (const auto& p : unknown_prefixes_)
        if (ev.name.size() > p.size() && std::equal(p.begin(), p.end(), ev.name.begin())) {
            out.wire = dotted(ev.name, p.size());
            out.index = std::string_view::npos;
            return true;
        }
    return false;
}

std::string wire_names::of(const event& ev) const {
    entry e;
    return find(ev, e) ? std::move(e.wire) : ev.dotted_name();
}

}  // namespace telecap
