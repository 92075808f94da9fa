#pragma once
// Counters of the capture path. Each counter has one writer (the thread that owns the
// pipeline or the dispatcher); readers take a snapshot when the writer is quiescent.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace telecap {

enum class reject_reason : std::uint8_t {
    invalid_json,         // not JSON (syntax error, NUL byte)
    bad_shape,            // JSON, but not the event shape (no event, wrong types)
    invalid_utf8,         // invalid UTF-8 inside the telemetry line
    oversize,             // longer than max_line
    too_deep,             // nesting beyond the limit
    unknown_event,        // name not in the catalog (policy: reject)
    unknown_measurement,  // measurement key not in the catalog (policy: reject)
    bad_measurement,      // measurement value null, array, object, or out of int64 range
    count_
};

enum class drop_reason : std::uint8_t {
    queue_full,  // the bounded queue to the dispatcher was full (overflow drop-newest)
    shutdown,    // still queued when the dispatcher had to stop
    count_
};

constexpr std::string_view to_string(reject_reason r) noexcept {
    constexpr std::array<std::string_view, static_cast<std::size_t>(reject_reason::count_)> names{
        "invalid_json", "bad_shape",           "invalid_utf8",   "oversize",
        "too_deep",     "unknown_event",       "unknown_measurement", "bad_measurement"};
    return names[static_cast<std::size_t>(r)];
}

constexpr std::string_view to_string(drop_reason r) noexcept {
    constexpr std::array<std::string_view, static_cast<std::size_t>(drop_reason::count_)> names{
        "queue_full", "shutdown"};
    return names[static_cast<std::size_t>(r)];
}

struct capture_stats {
    std::uint64_t bytes = 0;              // bytes read
    std::uint64_t lines = 0;              // lines framed (events + passthrough_lines)
    std::uint64_t telemetry_lines = 0;    // lines that began with the prefix
    std::uint64_t events = 0;             // accepted, normalized events
    std::uint64_t passthrough_lines = 0;  // lines sent to pass-through (incl. rejected telemetry)
    std::uint64_t emitter_errors = 0;     // TELEMETRY_ERROR: lines
    std::uint64_t long_lines = 0;         // lines longer than max_line (telemetry or not)
    std::array<std::uint64_t, static_cast<std::size_t>(reject_reason::count_)> rejected{};
    std::array<std::uint64_t, static_cast<std::size_t>(drop_reason::count_)> dropped{};
    std::uint64_t handler_failures = 0;

    std::uint64_t& rejected_for(reject_reason r) noexcept {
        return rejected[static_cast<std::size_t>(r)];
    }
    std::uint64_t& dropped_for(drop_reason r) noexcept {
        return dropped[static_cast<std::size_t>(r)];
    }
    std::uint64_t rejected_total() const noexcept {
        std::uint64_t n = 0;
        for (auto v : rejected) n += v;
        return n;
    }
    capture_stats& operator+=(const capture_stats& o) noexcept;
};

// The counters as one JSON object (rejected and dropped as objects keyed by reason).
// `outputs`: the outputs' own counters as a JSON object (handler_bus::counters_json()),
// written as "outputs" unless empty or "{}".
std::string stats_to_json(const capture_stats& s, std::string_view outputs = {});

}  // namespace telecap
