#include "capture/event.hpp"

#include <algorithm>

namespace telecap {

std::string event::dotted_name() const {
    std::string out;
    for (const auto& part : name) {
        if (!out.empty()) out += '.';
        out += part;
    }
    return out;
}

const measurement_value* event::measurement(std::string_view key) const noexcept {
    for (const auto& [k, v] : measurements)
        if (k == key) return &v;
    return nullptr;
}

const metadata_value* event::meta(std::string_view key) const noexcept {
    for (const auto& [k, v] : metadata)
        if (k == key) return &v;
    return nullptr;
}

bool event::matches(const std::vector<std::string>& prefix) const noexcept {
    return prefix.size() <= name.size() && std::equal(prefix.begin(), prefix.end(), name.begin());
}

std::size_t event::approximate_size() const noexcept {
    const auto heap = [](const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; };
    std::size_t n = sizeof(event) + name.capacity() * sizeof(std::string) +
                    measurements.capacity() * sizeof(measurements[0]) +
                    metadata.capacity() * sizeof(metadata[0]);
    for (const auto& p : name) n += heap(p);
    for (const auto& [k, v] : measurements) {
        n += heap(k);
        if (const auto* s = std::get_if<std::string>(&v)) n += heap(*s);
    }
    for (const auto& [k, v] : metadata) {
        n += heap(k);
        if (const auto* s = std::get_if<std::string>(&v)) n += heap(*s);
    }
    if (correlation_id) n += heap(*correlation_id);
    return n;
}

}  // namespace telecap
