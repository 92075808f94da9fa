#pragma once
// One stream's capture path: framing, recognition, decoding, normalization. Accepted events
// go to the event_sink; every other byte goes to the passthrough_sink unchanged, in order.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "telecap/capture/catalog.hpp"
#include "telecap/capture/event.hpp"
#include "telecap/capture/line_framer.hpp"
#include "telecap/capture/normalizer.hpp"
#include "telecap/capture/parser.hpp"
#include "telecap/capture/prefix.hpp"
#include "telecap/capture/sinks.hpp"
#include "telecap/capture/stats.hpp"
#include "telecap/capture/unknown_events.hpp"

namespace telecap {

struct pipeline_options {
    std::string prefix{default_telemetry_prefix};
    std::size_t max_line = std::size_t{1} << 20;
    std::size_t max_depth = event_parser::default_max_depth;
    bool recognize =
        true;  // false: every line is pass-through (a stream that carries no telemetry)
    // Shared by the pipelines of many streams (optional; must outlive them): bounds what
    // their partial lines hold together (capture/line_budget.hpp).
    line_budget* budget = nullptr;
    // Shared the same way (optional): told each event rejected as unknown_event, to warn once
    // per name (capture/unknown_events.hpp).
    unknown_event_notes* unknown_events = nullptr;
};

class capture_pipeline final : private line_sink {
public:
    // The catalog, sinks and stats must outlive the pipeline; sinks may be null.
    capture_pipeline(const catalog& cat, worker_context ctx, const pipeline_options& opts,
                     event_sink* events, passthrough_sink* passthrough, reject_sink* rejects,
                     capture_stats& stats);

    void feed(std::string_view bytes);
    void finish();  // end of input: a last partial line is processed like any other

    // An event decoded elsewhere (a gRPC worker's TelemetryEvent: bridge/grpc_client.hpp):
    // normalized, counted and handed to the event sink exactly as a telemetry line's would be,
    // or rejected and counted by reason. `text` is asked only for a rejects record (the
    // event as text); it may be empty. Returns whether the event was accepted.
    bool accept(const raw_event& raw, const std::function<std::string()>& text);

    worker_context& context() noexcept { return ctx_; }
    // Where pass-through bytes go from now on (null: nowhere). Between two feeds: a long line
    // under way goes on to the new sink.
    void set_passthrough(passthrough_sink* p) noexcept { passthrough_ = p; }
    bool mid_line() const noexcept { return framer_.buffered() > 0 || framer_.in_long_line(); }

private:
    void on_line(std::string_view line, std::string_view eol) override;
    void on_long_begin(std::string_view head) override;
    void on_long_data(std::string_view bytes) override;
    void on_long_end(std::string_view eol) override;

    bool normalized(const raw_event& raw, bool line);  // false: err_ says why
    void pass(std::string_view bytes, bool starts, bool ends);
    void rejected(const parse_error& err, std::string_view text, bool truncated);

    line_framer framer_;
    event_parser parser_;
    normalizer normalizer_;
    worker_context ctx_;
    std::string prefix_;
    std::string error_prefix_;
    event_sink* events_;
    passthrough_sink* passthrough_;
    reject_sink* rejects_;
    capture_stats& stats_;
    raw_event raw_;
    event_slots events_by_type_;
    event_slot_source* slots_;  // the sink's, or events_by_type_
    parse_error err_;
    std::uint64_t line_no_ = 0;
    bool recognize_;
    unknown_event_notes* unknown_events_;
};

}  // namespace telecap
