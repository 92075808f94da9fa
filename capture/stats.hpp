#pragma once
// Counters of the capture path. Each counter has one writer (the thread that owns the
// pipeline); any thread may read it at any time (the metrics registry's collectors do).

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
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

inline constexpr std::array<std::string_view, static_cast<std::size_t>(reject_reason::count_)>
    reject_reason_names{"invalid_json", "bad_shape",     "invalid_utf8",        "oversize",
                        "too_deep",     "unknown_event", "unknown_measurement", "bad_measurement"};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(drop_reason::count_)>
    drop_reason_names{"queue_full", "shutdown", "output"};

constexpr std::string_view to_string(reject_reason r) noexcept {
    return reject_reason_names[static_cast<std::size_t>(r)];
}

constexpr std::string_view to_string(drop_reason r) noexcept {
    return drop_reason_names[static_cast<std::size_t>(r)];
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

// Who counts a counter while telecap runs, and so where its live series comes from.
enum class counter_scope : std::uint8_t {
    pipeline,     // each capture's pipeline: per worker under run (labels worker, pool)
    queue,        // the queue to the dispatcher: one for all workers
    passthrough,  // the pass-through muxes (add_passthrough_collector); copied in at the end
    handler_bus,  // the handler bus; copied in at the end, no live series
};

// One counter of capture_stats, or one array of them by reason.
struct capture_counter {
    std::string_view json;    // key in --stats (an object keyed by reason when `reasons`)
    std::string_view series;  // Prometheus series (labelled {reason} when `reasons`)
    std::string_view help;    // the series' HELP text
    counter_scope scope;
    relaxed_counter& (*at)(capture_stats&, std::size_t) noexcept;  // the i-th of `reasons`
    std::span<const std::string_view> reasons;                     // empty: one counter

    std::size_t size() const noexcept { return reasons.empty() ? 1 : reasons.size(); }
    std::uint64_t get(const capture_stats& s, std::size_t i = 0) const noexcept {
        return at(const_cast<capture_stats&>(s), i).get();  // at() only forms the reference
    }
};

namespace capture_detail {
template <relaxed_counter capture_stats::*M>
relaxed_counter& one(capture_stats& s, std::size_t) noexcept {
    return s.*M;
}
template <auto M>
relaxed_counter& by_reason(capture_stats& s, std::size_t i) noexcept {
    return (s.*M)[i];
}
}  // namespace capture_detail

// Every counter of capture_stats, in --stats order. operator+=, stats_to_json, the capture
// and per-worker series and their HELP texts are all derived from this list: a new counter
// is a member above and a line here (a static_assert below catches a missing line).
inline constexpr capture_counter capture_counters[] = {
    {"bytes",
     "telecap_bytes_read_total",
     "Bytes read from a worker's captured streams.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::bytes>,
     {}},
    {"lines",
     "telecap_lines_total",
     "Lines read from a worker's captured streams.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::lines>,
     {}},
    {"telemetry_lines",
     "telecap_telemetry_lines_total",
     "Lines that began with the telemetry prefix.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::telemetry_lines>,
     {}},
    {"events",
     "telecap_events_total",
     "Events captured and handed to the outputs.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::events>,
     {}},
    {"passthrough_lines",
     "telecap_passthrough_lines_total",
     "Lines passed through untouched.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::passthrough_lines>,
     {}},
    {"emitter_errors",
     "telecap_emitter_errors_total",
     "TELEMETRY_ERROR lines written by a worker.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::emitter_errors>,
     {}},
    {"long_lines",
     "telecap_long_lines_total",
     "Lines longer than the line limit, telemetry or not.",
     counter_scope::pipeline,
     &capture_detail::one<&capture_stats::long_lines>,
     {}},
    {"long_lines_split",
     "telecap_long_lines_split_total",
     "Long pass-through lines split so that the lines waiting for them could go out.",
     counter_scope::passthrough,
     &capture_detail::one<&capture_stats::long_lines_split>,
     {}},
    {"partial_lines",
     "telecap_partial_lines_total",
     "Last pass-through lines without a newline that got one.",
     counter_scope::passthrough,
     &capture_detail::one<&capture_stats::partial_lines>,
     {}},
    {"rejected", "telecap_rejected_total", "Telemetry lines rejected, by reason.",
     counter_scope::pipeline, &capture_detail::by_reason<&capture_stats::rejected>,
     reject_reason_names},
    {"dropped", "telecap_dropped_total", "Events dropped, by reason.", counter_scope::queue,
     &capture_detail::by_reason<&capture_stats::dropped>, drop_reason_names},
    {"handler_failures",
     "telecap_handler_failures_total",
     "Handlers detached from the bus because they threw.",
     counter_scope::handler_bus,
     &capture_detail::one<&capture_stats::handler_failures>,
     {}},
};

namespace capture_detail {
constexpr std::size_t listed_counters() {
    std::size_t n = 0;
    for (const auto& c : capture_counters) n += c.reasons.empty() ? 1 : c.reasons.size();
    return n;
}
}  // namespace capture_detail
// capture_stats holds nothing but counters: a member without its line above fails here.
static_assert(sizeof(capture_stats) == capture_detail::listed_counters() * sizeof(relaxed_counter),
              "a capture_stats counter is missing from capture_counters");

// The entry whose --stats key is `json` (a compile-time error when there is none).
consteval const capture_counter& capture_counter_named(std::string_view json) {
    for (const auto& c : capture_counters)
        if (c.json == json) return c;
    throw "no such capture counter";
}

// The counters as one JSON object (rejected and dropped as objects keyed by reason).
// `outputs`: the outputs' own counters as a JSON object (handler_bus::counters_json()),
// written as "outputs" unless empty or "{}".
std::string stats_to_json(const capture_stats& s, std::string_view outputs = {});

// A worker's gRPC StreamTelemetry as telecap dials it (bridge/grpc_client.hpp), over all the
// worker's runs. Written by gRPC's threads and the loop thread, read anywhere; the events'
// own counters (events, rejected by reason, dropped) are the worker's capture_stats.
struct grpc_client_stats {
    std::atomic<std::uint64_t> calls{0};          // calls started (the first and every retry)
    std::atomic<std::uint64_t> connects{0};       // calls the worker answered (stream open)
    std::atomic<std::uint64_t> reconnects{0};     // calls started again after one ended
    std::atomic<std::uint64_t> ended{0};          // streams the worker ended with OK
    std::atomic<std::uint64_t> failed{0};         // calls that ended with an error status
    std::atomic<std::uint64_t> events{0};         // events received
    std::atomic<std::uint64_t> read_pauses{0};    // reads held back: the loop was behind
    std::atomic<std::uint64_t> controls_sent{0};  // TelemetryControl messages written
    std::atomic<std::int64_t> connected{0};       // 1 while a stream is open
    std::atomic<std::int64_t> last_status{-1};    // the gRPC status code of the last end
};

}  // namespace telecap
