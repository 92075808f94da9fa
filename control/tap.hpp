#pragma once
// Taps (docs/control.md, "Tap"): `telecap ctl tap` streams the events that pass the handler
// bus, after the gates, to a control client. A tap is one more bounded output:
// - tap_handler sits on the bus. It filters first (the scope, the wire-name globs: a result
//   kept per event name), so a tap that matches nothing costs a lookup per event; it renders
//   what matches (the jsonl output's writer, or the log output's formatter) into a batch of
//   its own and hands the batch over at each flush and every 256 KiB: one lock per batch.
// - tap_buffer is the hand-off to the control server on the loop thread. It holds at most
//   max_bytes; a batch that does not fit is dropped whole, counted, and the client is told
//   with a marker line where the gap is. It never waits, so a client that reads slowly or not
//   at all costs capture and the other outputs nothing but its own losses. It wakes the
//   server only when it goes from empty to not empty (one post per batch at most, none while
//   the client is behind).
// - tap_hub opens and closes taps for the control server and keeps their counters.
// The handler runs on the thread that drives the bus (the loop thread, or the dispatch
// thread); the buffer's consumer side and the hub run on the loop thread; the counters may be
// read from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/event_json.hpp"
#include "telecap/capture/handler.hpp"
#include "telecap/control/controls.hpp"
#include "telecap/control/server.hpp"
#include "telecap/core/flat_map.hpp"

namespace telecap::control {

enum class tap_format : std::uint8_t { jsonl, log };

// {"cmd":"tap","format":"jsonl"|"log","limit":N,"patterns":[..],"pool"|"worker":..,
//  "passthrough":true|false}
struct tap_request {
    scope where;                        // a pool, a worker, or every worker
    std::vector<std::string> patterns;  // wire-name globs; empty: every event
    tap_format format = tap_format::jsonl;
    std::uint64_t limit = 0;  // events, then the stream ends; 0: no limit
    // The workers' pass-through lines too, in their places among the events (scoped like
    // them; the patterns are for events only; --limit counts events only).
    bool passthrough = false;
};

// The marker told to a tap client where events were dropped, with its newline:
// {"telecap_tap":{"dropped":N}} (jsonl) or "# N events dropped" (log; "events or lines" for a
// tap that carries pass-through lines, `lines`).
std::string drop_marker(tap_format f, std::uint64_t dropped, bool lines = false);

class tap_buffer final : public stream_source {
public:
    // `lines`: the tap carries pass-through lines too (ctl tap --passthrough), which its drop
    // counts and markers include.
    tap_buffer(std::size_t max_bytes, tap_format f, bool lines = false)
        : max_bytes_(max_bytes), format_(f), lines_(lines) {}

    // Producer side (the bus's thread).
    enum class offered : std::uint8_t { taken, dropped, closed };
    // Takes `events` events rendered as `lines` when they fit (or the buffer is empty: a batch
    // larger than the bound goes alone), else drops them and counts them. `lines` is left
    // empty or holding an old buffer's storage: the caller clears it.
    offered offer(std::string& lines, std::uint64_t events);
    // No more events will come (the limit was reached): the stream ends once drained.
    void finish();
    // Bytes taken but never written to the client (it went, or telecap stopped): the events
    // and lines they held count as dropped, not sent (marker lines aside).
    void unsent(std::string_view rest);
    // `n` lines lost before reaching the buffer (pass-through lines the intake could not
    // carry): counted and told with the next marker, as a dropped batch is.
    void count_dropped(std::uint64_t n);
    bool closed() const noexcept { return closed_.load(std::memory_order_relaxed); }

    // Consumer side (stream_source, the loop thread).
    void set_waker(std::function<void()> fn) override;
    bool take(std::string& out) override;
    void close() override;

    std::uint64_t sent() const noexcept { return sent_.load(std::memory_order_relaxed); }
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

private:
    const std::size_t max_bytes_;
    const tap_format format_;
    const bool lines_;
    std::mutex mu_;
    std::string pending_;
    std::uint64_t pending_events_ = 0;
    std::uint64_t unreported_ = 0;  // dropped since the last marker
    bool wake_pending_ = false;     // the consumer was woken and has not found it empty since
    bool finished_ = false;
    std::shared_ptr<const std::function<void()>> waker_;  // copied under the lock, called outside
    std::atomic<bool> closed_{false};
    std::atomic<std::uint64_t> sent_{0};  // taken by the consumer
    std::atomic<std::uint64_t> dropped_{0};
};

class tap_handler final : public handler {
public:
    // The wire name of an event (what the gates match): asked once per event name.
    using wire_name_fn = std::function<std::string(const event&)>;
    // Appends one event as a log line, with its newline.
    using render_fn = std::function<void(std::string& out, const event&)>;
    // Appends one pass-through line as a log line, with its newline.
    using render_line_fn = std::function<void(std::string& out, const passthrough_line&)>;
    // Bytes batched before a hand-over between two flushes (as the jsonl output does: fewer
    // hand-overs, and fewer copies into a buffer the server has not taken yet).
    static constexpr std::size_t batch_bytes = 256 * 1024;

    tap_handler(tap_request r, std::shared_ptr<tap_buffer> out, wire_name_fn wire,
                render_fn render_log, render_line_fn render_log_line = {});

    // name_id alone identifies an event's name (tap_hooks::name_ids_unique).
    void trust_name_ids() noexcept {
        trust_name_ids_ = true;
        json_.trust_name_ids();
    }
    // Every event's keys_id names its keys (event_json_writer::trust_keys_ids).
    void trust_keys_ids() noexcept { json_.trust_keys_ids(); }
    void handle(const event& ev) override;
    void flush() override;
    // With r.passthrough: the line in its place, as {"passthrough":{"worker":..,"pool":..,
    // "stream":..,"line":..}} (and "truncated":true for the head of a longer line) in jsonl,
    // as render_log_line writes it in log format.
    void passthrough(const passthrough_line& line) override;
    // Not an output of the run: a tap's losses are its own (ctl stats, telecap_tap_*), not
    // data lost (events_dropped() stays 0, the exit status is not 3 for them).

    // Events filtered in so far (handed over or batched); for tests.
    std::uint64_t matched() const noexcept { return matched_; }

private:
    bool wanted(const event& ev);
    bool name_matches(const event& ev);
    void hand_over();
    // `text` (items: events and lines, `events` of them events) to the buffer.
    void offer(std::string& text, std::uint64_t items, std::uint64_t events);

    struct name_entry {
        std::vector<std::string> name;  // checked on each use: a reused id never misleads
        bool match = false;
    };

    tap_request r_;
    std::shared_ptr<tap_buffer> out_;
    wire_name_fn wire_;
    render_fn render_log_;
    render_line_fn render_log_line_;
    flat_map<const void*, name_entry> names_{64};
    event_json_writer json_;
    std::string text_;     // the log batch
    std::string handing_;  // a batch on its way to the buffer (storage reused)
    std::uint64_t batched_ = 0;
    // jsonl: pass-through lines wait here, older than anything in json_ (a line hands over the
    // events before it first); log: they are in text_ with the events, in order.
    std::string lines_;
    std::uint64_t batched_lines_ = 0;
    std::uint64_t accepted_ = 0;  // taken by the buffer
    std::uint64_t matched_ = 0;
    bool done_ = false;            // the limit reached, or the client gone
    bool trust_name_ids_ = false;  // tap_hooks::name_ids_unique
};

// What the run gives the hub: how to attach and detach a handler (on the bus, between two
// batches; called on the loop thread), and the wire names and the log lines.
struct tap_hooks {
    std::function<void(const std::string& id, std::shared_ptr<handler>)> attach;
    std::function<void(const std::string& id)> detach;
    tap_handler::wire_name_fn wire_name;
    tap_handler::render_fn render_log;
    tap_handler::render_line_fn render_log_line;
    // Optional: whether some open tap wants pass-through lines (called on the loop thread when
    // that changes; the run starts or stops carrying them: intake::tap_passthrough).
    std::function<void(bool)> want_passthrough;
    std::size_t buffer_bytes = std::size_t{1} << 20;  // per tap
    std::size_t max_taps = 8;
    // The run never frees a catalog before exit, so an event's name_id is never reused for
    // another name: a tap keys its glob results by it without comparing names (a lookup, not
    // four string compares, per event).
    bool name_ids_unique = false;
};

class tap_hub {
public:
    explicit tap_hub(tap_hooks h);
    ~tap_hub();  // closes the taps still open (their handlers detached)
    tap_hub(const tap_hub&) = delete;
    tap_hub& operator=(const tap_hub&) = delete;

    // For server_options::open_stream (loop thread): nullopt when `line` is not a tap request;
    // else the reply ({"ok":true,"tap":ID} and the stream, or an error without one).
    std::optional<stream_reply> open(std::string_view line);

    struct tap_counters {
        std::uint64_t id, sent, dropped;
    };
    // Any thread.
    std::vector<tap_counters> open_taps() const;
    std::uint64_t opened() const noexcept { return opened_.load(std::memory_order_relaxed); }
    // Over every tap, closed ones included.
    std::uint64_t sent_total() const;
    std::uint64_t dropped_total() const;

private:
    struct tap;
    void closed(std::uint64_t id);
    // Loop thread: a tap that wants pass-through lines opened (on) or closed (off).
    void want_lines(std::uint64_t id, bool on);

    tap_hooks h_;
    mutable std::mutex mu_;
    std::map<std::uint64_t, std::shared_ptr<tap_buffer>> taps_;
    std::set<std::uint64_t> passthrough_;  // loop thread: the open taps that want lines
    std::uint64_t next_id_ = 1;
    std::uint64_t closed_sent_ = 0, closed_dropped_ = 0;
    std::atomic<std::uint64_t> opened_{0};
    std::shared_ptr<tap_hub*> self_;  // the closers' way back; reset when the hub goes
};

// {"cmd":"tap",...} parsed; the problem, or nothing. Pure.
std::optional<std::string> parse_tap_request(std::string_view line, tap_request& out);

}  // namespace telecap::control
