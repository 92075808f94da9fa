#include "capture/stats.hpp"

namespace telecap {

capture_stats& capture_stats::operator+=(const capture_stats& o) noexcept {
    bytes += o.bytes;
    lines += o.lines;
    telemetry_lines += o.telemetry_lines;
    events += o.events;
    passthrough_lines += o.passthrough_lines;
    emitter_errors += o.emitter_errors;
    long_lines += o.long_lines;
    long_lines_split += o.long_lines_split;
    partial_lines += o.partial_lines;
    for (std::size_t i = 0; i < rejected.size(); ++i) rejected[i] += o.rejected[i];
    for (std::size_t i = 0; i < dropped.size(); ++i) dropped[i] += o.dropped[i];
    handler_failures += o.handler_failures;
    return *this;
}

std::string stats_to_json(const capture_stats& s, std::string_view outputs) {
    std::string out = "{";
    const auto field = [&](std::string_view name, std::uint64_t v) {
        if (out.size() > 1) out += ',';
        out += '"';
        out += name;
        out += "\":";
        out += std::to_string(v);
    };
    field("bytes", s.bytes);
    field("lines", s.lines);
    field("telemetry_lines", s.telemetry_lines);
    field("events", s.events);
    field("passthrough_lines", s.passthrough_lines);
    field("emitter_errors", s.emitter_errors);
    field("long_lines", s.long_lines);
    field("long_lines_split", s.long_lines_split);
    field("partial_lines", s.partial_lines);
    out += ",\"rejected\":{";
    for (std::size_t i = 0; i < s.rejected.size(); ++i) {
        if (i) out += ',';
        out += '"';
        out += to_string(static_cast<reject_reason>(i));
        out += "\":" + std::to_string(s.rejected[i]);
    }
    out += "},\"dropped\":{";
    for (std::size_t i = 0; i < s.dropped.size(); ++i) {
        if (i) out += ',';
        out += '"';
        out += to_string(static_cast<drop_reason>(i));
        out += "\":" + std::to_string(s.dropped[i]);
    }
    out += '}';
    field("handler_failures", s.handler_failures);
    if (!outputs.empty() && outputs != "{}") {  // no output keeps counters: no key
        out += ",\"outputs\":";
        out += outputs;
    }
    out += "}\n";
    return out;
}

}  // namespace telecap
