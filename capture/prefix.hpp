#pragma once
// Recognition of telemetry lines by their prefix.

#include <string_view>

namespace telecap {

inline constexpr std::string_view default_telemetry_prefix = "TELEMETRY:";
inline constexpr std::string_view emitter_error_prefix = "TELEMETRY_ERROR:";

// The payload after `prefix` when `line` begins with it, else an empty view with a null data
// pointer (so "TELEMETRY:" alone, an empty payload, is still told apart from no match).
constexpr std::string_view strip_telemetry_prefix(
    std::string_view line, std::string_view prefix = default_telemetry_prefix) {
    if (line.substr(0, prefix.size()) != prefix) return {};
    const std::string_view rest = line.substr(prefix.size());
    return rest.empty() ? std::string_view(line.data() + line.size(), 0) : rest;
}

static_assert(strip_telemetry_prefix("TELEMETRY:{}") == "{}");
static_assert(strip_telemetry_prefix("TELEMETRY_ERROR: x").data() == nullptr);
static_assert(strip_telemetry_prefix("log line").data() == nullptr);

}  // namespace telecap
