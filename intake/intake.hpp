#pragma once
// The intake: the life of a worker's lines from read(2) to the dispatcher, on the loop thread.
// For each stream (a worker's stderr, captured stdout or telemetry fd) it reads the pipe,
// frames and parses the lines (capture_pipeline), sends what is not telemetry to pass-through
// and what is rejected to the rejects file, lets each event through the worker's gates, and
// copies the events into a batch that goes to the dispatcher whole: at the end of each loop
// turn, or when full. It applies the overflow policy (drop and count, or stop reading the
// workers until there is room: back-pressure), and coalesces reads (read_linger) so that a
// worker writing one line per write(2) is read many lines at a time.
//
// It knows nothing of processes: streams are added with an fd (watched on the loop) or fed
// bytes directly (tests), and are known by their owner (a worker) for drain and close.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/catalog.hpp"
#include "telecap/capture/line_budget.hpp"
#include "telecap/capture/pipeline.hpp"
#include "telecap/capture/stats.hpp"
#include "telecap/core/unique_fd.hpp"
#include "telecap/dispatch/dispatcher.hpp"
#include "telecap/intake/read_linger.hpp"
#include "telecap/io/passthrough.hpp"
#include "telecap/io/rejects_writer.hpp"
#include "telecap/loop/event_loop.hpp"

namespace telecap {

enum class overflow_policy { drop_newest, block };

// Whether an event leaves its worker (the worker's gates: control/gates.hpp). Loop thread.
class event_gate {
public:
    virtual ~event_gate() = default;
    virtual bool admit(const event& ev) = 0;
};

struct intake_options {
    pipeline_options pipeline;  // prefix, max_line, max_depth (recognize and budget per stream)
    overflow_policy overflow = overflow_policy::drop_newest;
    // Memory for the partial lines of all streams together (capture/line_budget.hpp).
    std::size_t line_budget = std::size_t{8} << 20;
    // How long a turn waits before reading again while reads come back small, turn after turn
    // (intake/read_linger.hpp). 0: read at once, always.
    std::chrono::microseconds read_linger{100};
    // Events per batch: a full batch goes to the dispatcher without waiting for the turn's end.
    // 0: chosen by the dispatcher's mode. With a dispatch thread, each hand-off costs it a
    // wake-up when it sleeps: 1024 keeps that under one per hundred events. With the handlers
    // on this thread (dispatch_mode::caller) a hand-off costs nothing, and 64 keeps the batch's
    // slots in this core's cache from normalizing to handling.
    std::size_t batch_events = 0;
    // drop-newest: how long reading may wait for a handler about to drop (handler::about_to_drop:
    // a gRPC stream's queue half full) while the workers' pipes have room, so that a burst
    // waits in the pipes instead of being read only to be dropped. Reading goes on as soon as
    // a pipe is half full (looked at before each read, and every congestion_recheck while it
    // waits), so a worker's write waits for it at most about that long, and only one of more
    // than half a pipe. 0: never.
    std::chrono::milliseconds burst_hold{100};
};

// What one stream reads for, and where its lines go.
struct stream_spec {
    const void* owner = nullptr;   // the worker it belongs to (drain, close)
    const catalog* cat = nullptr;  // must outlive the stream (keep holds it when needed)
    std::shared_ptr<const void> keep;
    worker_context ctx;
    bool recognize = true;  // false: every line is pass-through
    passthrough_mux* pass = nullptr;
    std::string label;  // pass-through lines' prefix ("[worker-id] "), may be empty
    rejects_writer* rejects = nullptr;
    std::string rejects_id;                   // the worker id in the rejects records
    capture_stats* stats = nullptr;           // required: the worker's counters
    event_gate* gate = nullptr;               // null: every event leaves
    std::string_view stream_name = "stderr";  // names its tapped pass-through lines (static)
};

class intake {
public:
    // The dispatcher, loop and writers must outlive the intake. `congestion`: the writers whose
    // congestion stops reading in block mode (pass-through and rejects streams).
    intake(event_loop& loop, dispatcher& events, intake_options o,
           std::vector<stream_writer*> congestion = {});
    ~intake();
    intake(const intake&) = delete;
    intake& operator=(const intake&) = delete;

    // A stream read from `fd` (made non-blocking) when the loop says it is readable.
    void add(unique_fd fd, stream_spec spec);
    // A stream without an fd: its bytes come through feed(). Returns its handle.
    void* add_unwatched(stream_spec spec);
    void feed(void* stream, std::string_view bytes);
    // An event decoded outside the stream's pipeline (a gRPC worker's: bridge/grpc_client.hpp)
    // into a stream without an fd: normalized, counted, gated and batched as the stream's
    // telemetry lines are (capture_pipeline::accept). `text`: the event as text for --rejects.
    void feed_event(void* stream, const raw_event& raw, const std::function<std::string()>& text);

    // Reads what the owner's pipes hold now (its process exited): to EOF, or until a
    // descendant that still holds a pipe has nothing more for now. `yield`: in block mode,
    // also until a handler is behind (the rest is read as usual, once it has room: after the
    // exit's lifecycle event, but nothing dropped), and by default while a burst is held for
    // a handler about to drop (read as usual once it caught up or the hold is spent); a
    // stream about to be closed must not yield.
    void drain(const void* owner, bool yield = false);
    // Ends the owner's streams: a last partial line is processed like any other.
    void close(const void* owner);
    // Whether the owner has a stream not yet ended.
    bool reading(const void* owner) const;
    // Ends every stream (shutdown), after draining it.
    void close_all();

    // An event made outside the pipelines (a lifecycle event); it passes no gate.
    void push(const event& ev);

    // While on, every stream's pass-through lines also ride in the batches, in their place
    // among the events, to the handlers that take them (`ctl tap --passthrough`); what
    // pass-through writes is unchanged. Off (the default) costs nothing: the pipelines write
    // to pass-through directly. A batch carries at most tap_line_bytes of lines; past that
    // they are not carried, and a batch the queue refuses takes its lines with it (both
    // counted in tap_lines_dropped(), and told to the taps with the next line carried).
    void tap_passthrough(bool on);
    static constexpr std::size_t tap_line_bytes = std::size_t{1} << 20;
    static constexpr std::size_t tap_line_max = 64 * 1024;  // a longer line is cut (truncated)
    // What a carried line costs besides its text (its record: names, the batch's slot).
    static constexpr std::size_t tap_line_overhead = 128;
    // Any thread (telecap_tap_passthrough_lines_dropped_total).
    std::uint64_t tap_lines_dropped() const noexcept { return tap_lines_dropped_; }

    // After each loop turn: the turn's batch to the dispatcher, the read linger, and
    // back-pressure; closed streams are removed.
    void end_turn();
    // Block mode given up (the stop's grace period is over): what cannot be queued is dropped.
    void escape();
    // The last batches at shutdown: in block mode they may wait up to `patience` for room.
    void finish(std::chrono::milliseconds patience);

    bool paused() const noexcept { return paused_; }
    // Times reading was paused for back-pressure.
    std::uint64_t pauses() const noexcept { return pauses_; }
    // drop-newest: the bursts held in the pipes while a handler was about to drop (burst_hold),
    // and those of them that ended before it caught up (their time or a pipe's room was spent:
    // reading went on, and what the handler had no room for was dropped by it). Any thread.
    std::uint64_t burst_holds() const noexcept { return burst_holds_; }
    std::uint64_t burst_hold_overruns() const noexcept { return burst_hold_overruns_; }
    // Events dropped by the intake itself (queue_full, shutdown). Any thread.
    const capture_stats& own() const noexcept { return own_; }
    const line_budget& budget() const noexcept { return budget_; }
    std::size_t streams() const noexcept { return streams_.size(); }

private:
    struct stream;
    class sink;
    class tee;
    void tap_line(stream& s, passthrough_line&& line);
    // A batch that will not be dispatched: its lines counted, their gaps told per stream.
    void lines_not_carried(const event_batch& b);
    stream& make(stream_spec spec);
    // One read(2) fed to the stream's pipeline: the bytes read, 0 when the pipe is empty for
    // now or ended (then the stream is ended).
    std::size_t pull(stream& s);
    void read(stream& s);
    void drain_stream(stream& s, bool yield = false);
    bool handlers_behind() const;  // block mode, and a handler congested
    // drop-newest: whether reading waits for a handler about to drop (burst_hold); moves the
    // hold along (begun, spent, over) as the handlers and the pipes are found.
    bool holding_burst();
    bool pipes_have_room() const;
    void end(stream& s);
    void added();  // an event joined the batch
    void flush();
    bool submit_held();
    void update_backpressure();
    bool output_congested() const;
    bool long_line_stalled() const;

    event_loop& loop_;
    dispatcher& events_;
    intake_options o_;
    std::vector<stream_writer*> congestion_;
    line_budget budget_;  // before streams_: their pipelines give back to it when they go
    std::vector<std::unique_ptr<stream>> streams_;
    std::unique_ptr<event_batch> batch_;              // being filled
    std::vector<std::unique_ptr<event_batch>> held_;  // refused in block mode, oldest first
    capture_stats own_;
    read_linger linger_;
    std::size_t turn_bytes_ = 0;
    std::uint64_t pauses_ = 0;
    bool paused_ = false;
    bool escape_ = false;
    bool want_room_ = false;
    bool want_taken_ = false;
    enum class hold { none, holding, spent };  // drop-newest's burst hold, per congestion
    hold hold_ = hold::none;
    std::chrono::steady_clock::time_point hold_since_;
    relaxed_counter burst_holds_;  // read by the metrics' thread
    relaxed_counter burst_hold_overruns_;
    bool recheck_armed_ = false;  // a timer looks at the handlers' congestion again
    event_loop::timer_id recheck_ =
        0;                  // a partial batch waits for the dispatcher to take its backlog
    bool removed_ = false;  // some stream ended this turn
    bool tap_lines_ = false;
    relaxed_counter tap_lines_dropped_;
    std::unique_ptr<char[]> buf_;
};

}  // namespace telecap
