#pragma once
// The handler interface: what receives normalized events. Apart from the bus so that an
// adapter (an output) depends on events only, not on how they are dispatched.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "telecap/capture/event.hpp"

namespace telecap {

// A worker's line that is not telemetry, as pass-through writes it (without its newline),
// for the handlers that take such lines (`ctl tap --passthrough`, docs/control.md "Tap").
struct passthrough_line {
    std::string worker, pool;
    std::string_view stream;  // "stderr", "stdout" or "telemetry" (a dedicated telemetry fd)
    std::string text;
    bool truncated = false;  // the head of a longer line only
    // Lines before this one that could not be carried (the batch's bound): a gap to tell.
    std::uint64_t dropped_before = 0;
};

class handler {
public:
    virtual ~handler() = default;
    // May throw: the bus then detaches this handler.
    virtual void handle(const event& ev) = 0;
    // False for a handler that reads nothing from the events themselves (a metrics exporter
    // serving a store that another handler records into): the bus then never calls handle().
    // Asked once, when the handler is attached.
    virtual bool takes_events() const { return true; }
    // Called when the dispatcher runs dry and at shutdown. May throw, like handle().
    virtual void flush() {}
    // A pass-through line, in its place among the events (only while a handler asked for them:
    // docs/control.md "Tap"). May throw, like handle(). Default: ignored.
    virtual void passthrough(const passthrough_line& /*line*/) {}
    // Called once at shutdown, after the last handle() and flush(): deliver what is still
    // pending (a network output's queued batches, a last metrics export) before `deadline`,
    // then give up on the rest (counted). May throw, like handle().
    virtual void finish(std::chrono::steady_clock::time_point /*deadline*/) {}
    // The handler's own counters as a JSON object ("{\"sent\":3}"), or "" when it keeps none.
    // Read once handling has stopped (--stats at exit), from the thread that drove the bus.
    virtual std::string counters_json() const { return {}; }
    // Its output is behind (a stream above its soft limit) and it would rather not be given
    // more now: a producer that may wait (overflow block) stops reading until it is not. Asked
    // by the thread that drives the bus, when the bus runs on the producer's thread.
    virtual bool congested() const { return false; }
    // What it is given next will soon be dropped (a gRPC stream's short queue is half full and
    // its client reads): by default (overflow drop-newest) `run` then lets the workers' pipes
    // hold a burst a while instead of reading it only for this handler to drop it
    // (intake_options::burst_hold). Asked as congested() is. An output whose own buffer
    // absorbs bursts (a jsonl stream's 16 MiB) says no: a hold would only add latency.
    virtual bool about_to_drop() const { return false; }
    // How soon whoever paused for congested() asks again: an output says when it has room to
    // its own writer, not to its producer.
    static constexpr std::chrono::milliseconds congestion_recheck{2};
    // Events this handler could not deliver (its stream full or dead): counted under
    // dropped.output. Any thread.
    virtual std::uint64_t events_dropped() const { return 0; }
    // Other data this handler could not deliver (an OTLP metrics export's points): data lost
    // (exit status 3) but not events, so not under dropped.output. Any thread.
    virtual std::uint64_t items_lost() const { return 0; }
    // Failures of its own delivery so far (failed writes, failed requests; not drops), and
    // the last one's words, "" when none (`ctl status`, `telecap top`). Any thread.
    virtual std::uint64_t errors() const { return 0; }
    virtual std::string last_error() const { return {}; }

    // handle(), counted: what the bus (and a wrapper passing events on) calls. May throw,
    // like handle().
    void deliver(const event& ev) {
        // One writer (the thread that drives the bus): a load and a store, no locked
        // instruction per event.
        handed_.store(handed_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        handle(ev);
    }
    // Events delivered to this handler so far. Any thread.
    std::uint64_t events_handed() const noexcept { return handed_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> handed_{0};
};

}  // namespace telecap
