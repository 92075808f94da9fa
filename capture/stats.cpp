#include "capture/stats.hpp"

namespace telecap {

capture_stats& capture_stats::operator+=(const capture_stats& o) noexcept {
    for (const auto& c : capture_counters)
        for (std::size_t i = 0; i < c.size(); ++i) c.at(*this, i) += c.get(o, i);
    return *this;
}

std::string stats_to_json(const capture_stats& s, std::string_view outputs) {
    std::string out = "{";
    for (const auto& c : capture_counters) {
        if (out.size() > 1) out += ',';
        out += '"';
        out += c.json;
        out += "\":";
        if (c.reasons.empty()) {
            out += std::to_string(c.get(s));
            continue;
        }
        out += '{';
        for (std::size_t i = 0; i < c.reasons.size(); ++i) {
            if (i) out += ',';
            out += '"';
            out += c.reasons[i];
            out += "\":" + std::to_string(c.get(s, i));
        }
        out += '}';
    }
    if (!outputs.empty() && outputs != "{}") {  // no output keeps counters: no key
        out += ",\"outputs\":";
        out += outputs;
    }
    out += "}\n";
    return out;
}

}  // namespace telecap
