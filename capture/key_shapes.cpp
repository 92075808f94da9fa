#include "capture/key_shapes.hpp"

namespace telecap {

namespace {

// Each key as its length and bytes (a key may hold any byte). False, with `out` left as it
// is, once the sequence would pass max_sequence_bytes.
template <typename Members>
bool append_keys(std::string& out, const Members& members) {
    for (const auto& [k, v] : members) {
        if (out.size() + 4 + k.size() > key_shapes::max_sequence_bytes) return false;
        const auto n = static_cast<std::uint32_t>(k.size());
        out.append(reinterpret_cast<const char*>(&n), sizeof n);
        out += k;
    }
    return true;
}

}  // namespace

std::uint64_t key_shapes::id(const event& ev) {
    thread_local std::string key;  // at most max_sequence_bytes: reused, no allocation once warm
    key.clear();
    const auto m = static_cast<std::uint32_t>(ev.measurements.size());
    key.append(reinterpret_cast<const char*>(&m), sizeof m);  // where the metadata begins
    const bool fits = append_keys(key, ev.measurements) && append_keys(key, ev.metadata);
    std::lock_guard lock(mu_);
    ++asked_;
    if (!fits) return none;
    if (const auto it = ids_.find(key); it != ids_.end()) return it->second;
    if (ids_.size() >= max_shapes_ || bytes_ + key.size() > max_bytes_) return none;
    const std::uint64_t id = ids_.size() + 1;
    ids_.emplace(key, id);
    bytes_ += key.size();
    return id;
}

key_shapes& key_shapes::process() {
    static key_shapes& table = *new key_shapes(4096, std::size_t{1} << 20);
    return table;
}

}  // namespace telecap
