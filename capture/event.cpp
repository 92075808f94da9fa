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

}  // namespace telecap
