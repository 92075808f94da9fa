#pragma once
// One StreamTelemetry call served by `-o grpc`, as a state machine without gRPC in it: its
// selection (call metadata), its gates (the controls it sent), its bounded queue and the one
// write in flight. The gRPC reactor (grpc_output.cpp) feeds it what happens (an event offered,
// a write done, the call cancelled, the output finishing) and does what it answers, outside
// the lock: start a write, finish the call. So the rules live here, tested without a network
// (tests/grpc/stream_state_test.cpp):
// - at most one write in flight; at most `capacity` events wait behind it; an event that finds
//   no room is dropped and counted (`queue_full`), never waited for (under back-pressure it
//   may be held first, below);
// - the writer (gRPC's write completions) takes everything queued at once, under one lock, and
//   writes it one message after the other without the lock: the offering thread and the writer
//   meet on the lock once per batch, not once per event (per event, each blocked the other
//   behind a futex). The batch still counts against `capacity` until each event is written;
// - the call is finished once, and only when no write is in flight (gRPC forbids the rest);
//   after a failed write or a cancel (the client left, its deadline passed) what was queued is
//   counted as `closed`;
// - an idle stream (no write in flight) is started by the offer that makes `start_at` events
//   wait, or by kick() (the output's flush, at the end of each turn of the thread that runs the
//   outputs): a burst goes to gRPC in batches, not as one write started (and one gRPC thread
//   woken) per event whenever the writer has caught up;
// - finishing (telecap stops) takes no new event, sends what is queued, then finishes OK;
// - back-pressure (`run --overflow block`): behind() says when the output should ask its
//   producer to pause (half the queue waits and the client still reads), and what the producer
//   gave past a full queue before it paused is held (`offer(..., hold)`): with them, at most
//   twice `capacity` events wait, and the held ones go to the writer after the queue, in order.
//   Nothing waits on any thread. A stream whose writes made no progress for `stall` (its client
//   stopped reading), or whose held events have waited that long, holds no more: its events are
//   dropped as without back-pressure until the writer has taken what it held.
// Thread-safe: the thread that runs the outputs offers, gRPC's threads report (the metadata and
// write completions one at a time, a cancel at any moment).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "bridge/snakepit_bridge.pb.h"
#include "bridge/stream_info.hpp"
#include "control/gates.hpp"

namespace telecap::bridge {

// One event as the bytes of a serialized TelemetryEvent (bridge/event_wire.hpp), shared by
// every stream that sends it.
using message = std::shared_ptr<const std::string>;

// A TelemetryControl as the update it makes, with Snakepit's semantics (a toggle at proto3
// defaults means off, a sampling rate clamped to [0, 1]) and checked (a NaN rate, a bad glob,
// none of the three: the problem, and `out` is not to be used).
std::optional<std::string> to_update(const ::snakepit::bridge::TelemetryControl& c,
                                     control::controls& out);

class stream_state {
public:
    using clock = control::gate::clock;
    enum class finish_status : std::uint8_t { none, ok, cancelled };
    // What the caller does next, outside the lock: write `write` (with gRPC's buffer hint when
    // more is queued behind it), then finish the call when `finish` says so.
    struct action {
        message write;
        bool more = false;
        finish_status finish = finish_status::none;
    };

    // An idle stream's writer starts once this many events wait (or on kick()).
    static constexpr std::size_t default_start_at = 32;

    // `known_names`: the catalog's event count (the gate's index range). The stream starts
    // with its initial metadata in flight: nothing is written before on_metadata_sent().
    // `stall`: how long a stream may hold events past its queue before it holds no more.
    stream_state(std::uint64_t id, std::string peer, selection select, std::size_t capacity,
                 std::size_t known_names, std::size_t start_at = default_start_at,
                 clock::duration stall = std::chrono::milliseconds(500));

    bool selects(std::string_view worker, std::string_view pool) const noexcept;
    // Set once at construction: read without the lock.
    std::uint64_t id() const noexcept { return info_.id; }
    const selection& select() const noexcept { return info_.select; }

    // An event for this stream (selected already): gated, queued or dropped. `msg` is built by
    // `make` the first time a stream takes the event, and shared by the others.
    template <class Make>
    action offer(std::size_t known, std::string_view wire, clock::time_point now, message& msg,
                 Make&& make, bool hold = false);
    // Half the queue or more waits and the stream has not given up holding: a producer that
    // can pause should (handler::congested).
    bool behind(clock::time_point now) const;

    // The output flushes: an idle stream starts writing what waits.
    action kick();
    action on_metadata_sent(bool ok);
    action on_write_done(bool ok);
    action on_cancel();
    // telecap stops: take no more events, send what is queued, then finish OK.
    action finish();
    // The reactor is gone (gRPC's OnDone): the stream is closed for good.
    void on_done();

    // A TelemetryControl from the request stream, with Snakepit's semantics (docs/grpc.md); a
    // bad one changes nothing and is counted. The problem, or nothing.
    std::optional<std::string> apply(const ::snakepit::bridge::TelemetryControl& c);
    // A request that is not a TelemetryControl at all: counted as a refused control; `why`
    // comes back.
    std::optional<std::string> refuse(std::string why);
    // A control applied elsewhere (`control=workers`: to the workers' gates), counted here.
    void applied();

    bool done() const;
    stream_info info() const;

private:
    action next_locked();                // the write slot is free: start the next write or finish
    action take_from_batch();            // the writer's next message, from batch_
    std::size_t waiting_locked() const;  // queued, held, and the batch's unwritten rest
    bool stalled_locked(clock::time_point now) const;  // no write progressed for stall_
    bool holding_too_long_locked(clock::time_point now) const;
    void drop_queued_locked();  // queue_ and held_ count as closed

    mutable std::mutex mu_;
    stream_info info_;  // guarded by mu_ (but `sent`: sent_)
    std::size_t capacity_;
    std::size_t known_names_;
    std::size_t start_at_;
    clock::duration stall_;
    control::effective_controls controls_;
    control::gate gate_;
    std::deque<message> queue_;
    // Back-pressure: what came past a full queue (at most `capacity` more), queued behind it
    // when the writer takes the queue; held_since_ is when the first of them came (while any
    // are held).
    std::deque<message> held_;
    clock::time_point held_since_{};
    // Taken from queue_ by the writer, written one by one without the lock. Only the writer
    // (the metadata and write completions, which gRPC runs one at a time) touches it, and
    // on_done; it is empty whenever no write is in flight.
    std::deque<message> batch_;
    // batch_.size(), for offer's bound: set under mu_ when a batch is taken, lowered without it
    // as the writer takes each message, so a stale value only overstates what waits.
    std::atomic<std::size_t> batch_left_{0};
    std::atomic<std::uint64_t> sent_{0};
    bool writing_ = true;  // the initial metadata is in flight
    bool finishing_ = false;
    bool finished_ = false;  // Finish asked of gRPC (once)
    // A write failed or the call was cancelled: set under mu_, read by the writer without it.
    std::atomic<bool> broken_{false};
    // When the writes last progressed (a write started from idle, one completed, the initial
    // metadata sent): how a client that stopped reading is told from one that is behind.
    std::atomic<clock::rep> progress_{0};
    bool done_ = false;
};

template <class Make>
stream_state::action stream_state::offer(std::size_t known, std::string_view wire,
                                         clock::time_point now, message& msg, Make&& make,
                                         bool hold) {
    std::lock_guard lock(mu_);
    action a;
    if (finishing_ || broken_ || finished_) return a;
    switch (gate_.decide(known, wire, now)) {
        case control::verdict::pass:
            break;
        case control::verdict::disabled:
            ++info_.disabled;
            return a;
        case control::verdict::sampled:
            ++info_.sampled;
            return a;
        default:
            ++info_.filtered;
            return a;
    }
    const std::size_t waiting = queue_.size() + batch_left_.load(std::memory_order_relaxed);
    // While anything is held, later events go behind it too (the writer's progress frees
    // places in the queue before the held ones move in: queueing there would reorder them).
    if (waiting >= capacity_ || !held_.empty()) {
        // At most two queues' worth waits in all; a stream that stalled or held too long
        // takes no more.
        if (!hold || waiting + held_.size() >= 2 * capacity_ || stalled_locked(now) ||
            holding_too_long_locked(now)) {
            ++info_.dropped[static_cast<std::size_t>(stream_drop::queue_full)];
            return a;
        }
        if (!msg) msg = make();
        if (held_.empty()) held_since_ = now;
        held_.push_back(msg);
        ++info_.held;
        return writing_ ? a : next_locked();  // a full queue waiting for the flush starts now
    }
    if (!msg) msg = make();
    queue_.push_back(msg);
    if (!writing_ && queue_.size() >= start_at_) return next_locked();
    return a;
}

}  // namespace telecap::bridge
