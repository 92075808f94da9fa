#pragma once
// Counters of the capture path. Each counter has one writer (the thread that owns the
// pipeline); any thread may read it at any time (the metrics registry's collectors do).

#include <array>
#include <atomic>
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
    output,      // an output could not take an event (stream dead or full, handler failed)
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
        "queue_full", "shutdown", "output"};
    return names[static_cast<std::size_t>(r)];
}

// A counter with one writing thread and readers anywhere: relaxed loads and stores, so an
// increment costs what a plain one does (no locked instruction) and a reader never sees a torn
// value.
class relaxed_counter {
public:
    relaxed_counter() noexcept = default;
    relaxed_counter(std::uint64_t v) noexcept : v_(v) {}  // NOLINT: reads like a number
    relaxed_counter(const relaxed_counter& o) noexcept : v_(o.get()) {}
    relaxed_counter& operator=(const relaxed_counter& o) noexcept { return *this = o.get(); }
    relaxed_counter& operator=(std::uint64_t v) noexcept {
        v_.store(v, std::memory_order_relaxed);
        return *this;
    }
    relaxed_counter& operator++() noexcept { return *this += 1; }
    relaxed_counter& operator+=(std::uint64_t n) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        return *this;
    }
    std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }
    operator std::uint64_t() const noexcept { return get(); }  // NOLINT

private:
    std::atomic<std::uint64_t> v_{0};
};

struct capture_stats {
    relaxed_counter bytes;              // bytes read
    relaxed_counter lines;              // lines framed (events + passthrough_lines)
    relaxed_counter telemetry_lines;    // lines that began with the prefix
    relaxed_counter events;             // accepted, normalized events
    relaxed_counter passthrough_lines;  // lines sent to pass-through (incl. rejected telemetry)
    relaxed_counter emitter_errors;     // TELEMETRY_ERROR: lines
    relaxed_counter long_lines;         // lines longer than max_line (telemetry or not)
    // Pass-through's alterations (io/passthrough.hpp), counted by the stream's mux: a long line
    // split so that the lines waiting for it could go out, and a last line without a newline
    // that got one.
    relaxed_counter long_lines_split;
    relaxed_counter partial_lines;
    std::array<relaxed_counter, static_cast<std::size_t>(reject_reason::count_)> rejected{};
    std::array<relaxed_counter, static_cast<std::size_t>(drop_reason::count_)> dropped{};
    relaxed_counter handler_failures;

    relaxed_counter& rejected_for(reject_reason r) noexcept {
        return rejected[static_cast<std::size_t>(r)];
    }
    relaxed_counter& dropped_for(drop_reason r) noexcept {
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
