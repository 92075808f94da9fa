#include "capture/key_shapes.hpp"

namespace telecap {

namespace {

// Each key as its length and bytes (a key may hold any byte).
void append_key(std::string& out, const std::string& key) {
    const auto n = static_cast<std::uint32_t>(key.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out += key;
}

}  // namespace

std::uint64_t key_shapes::id(const event& ev) {
    thread_local std::string key;  // reused: no allocation once warm
    key.clear();
    const auto m = static_cast<std::uint32_t>(ev.measurements.size());
    key.append(reinterpret_cast<const char*>(&m), sizeof m);  // where the metadata begins
    for (const auto& [k, v] : ev.measurements) append_key(key, k);
    for (const auto& [k, v] : ev.metadata) append_key(key, k);
    std::lock_guard lock(mu_);
    if (const auto it = ids_.find(key); it != ids_.end()) return it->second;
    if (ids_.size() >= max_) return 0;
    const std::uint64_t id = ids_.size() + 1;
    ids_.emplace(key, id);
    return id;
}

key_shapes& key_shapes::process() {
    static key_shapes table(4096);
    return table;
}

}  // namespace telecap
