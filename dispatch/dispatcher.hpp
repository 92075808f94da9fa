#pragma once
// The dispatcher: the one thread that hands events to the handler bus, and the bounded queue
// of event batches in front of it. The producer (the run loop's intake) fills a batch, submits
// it whole, and gets a recycled one back: one lock per batch, and a wake-up only when the
// dispatch thread is asleep, so at most one per batch, never one per event. The dispatch
// thread takes every queued batch at once, hands their events to the bus, and returns the
// batches for reuse. Producers never wait here unless they ask to (submit_wait): submit()
// says whether the batch was taken, and the caller applies its overflow policy (drop and
// count, or stop reading and wait for the room callback). A handler stuck for good cannot
// hang shutdown: finish() has a deadline.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "telecap/capture/bus.hpp"
#include "telecap/capture/event.hpp"
#include "telecap/dispatch/event_batch.hpp"

namespace telecap {

// Where the handlers run.
// - thread: on the dispatch thread, behind the bounded queue. Handlers get a core of their own
//   (pipelining), and a handler that is slow in CPU costs the producers queue room, not reads.
// - caller: on the producer's thread, inside submit(): no queue, no hand-off between threads,
//   and each event is handled while it is still in the producer's cache (the events a batch
//   carries are written and read by the same core). The handlers must never block (every
//   output of the run command only appends to its own bounded buffers); the producer asks
//   congested() instead of waiting on a full queue.
enum class dispatch_mode { thread, caller };

struct dispatcher_options {
    // Events queued at most (queued or being dispatched), and their memory. A batch is taken
    // whole when it fits, or when the queue is empty (so a batch larger than the bounds still
    // goes, alone).
    std::size_t queue = 65536;
    std::size_t queue_bytes = std::size_t{16} << 20;
    dispatch_mode mode = dispatch_mode::thread;
    // Thread mode: while a handler is behind (handler::congested: an output that cannot wait
    // on its own, -o grpc's streams), the dispatch thread waits before its next 64 events,
    // looking again every 2 ms, so the queue fills and the producers apply their overflow
    // policy (with block they stop reading). run sets it with --overflow block. Posted work
    // waits too (it runs after the events before it), 500 ms at most: then the rest of the
    // batch goes to the handlers (what is past their bounds is dropped, counted) and it runs.
    // finish() lets it wait up to three quarters of its time, then the rest goes the same way.
    bool wait_for_handlers = false;
    // Thread mode without wait_for_handlers (run's default, drop-newest): while a handler is
    // about to drop (handler::about_to_drop: a -o grpc stream's queue half full), the dispatch
    // thread waits before its next 64 events, for burst_hold at most and once per congestion,
    // so a burst waits in this queue instead of being dropped by the handler, while the queue
    // is less than half full (its other half stays for the producers). Posted work and
    // finish() end a hold as they end wait_for_handlers' wait. 0: never.
    std::chrono::milliseconds burst_hold{0};
};

class dispatcher {
public:
    // The bus must outlive the dispatcher; only the dispatch thread drives it once started.
    dispatcher(handler_bus& bus, dispatcher_options o);
    ~dispatcher();  // finish() with a short deadline if it was not called
    dispatcher(const dispatcher&) = delete;
    dispatcher& operator=(const dispatcher&) = delete;

    // An empty batch to fill: a recycled one when there is one (its storage reused).
    std::unique_ptr<event_batch> take_batch();
    // Queues `b` whole when there is room, and puts an empty (recycled) batch in its place;
    // never waits. False (b untouched) when the queue is full or closed.
    bool submit(std::unique_ptr<event_batch>& b);
    // Like submit, waiting up to `timeout` for room.
    bool submit_wait(std::unique_ptr<event_batch>& b, std::chrono::milliseconds timeout);

    // For producers of a few events (tests, hosts): moves batch[from..] into the queue while
    // there is room, event by event; never waits. Returns the index of the first event not
    // moved (batch.size() when all were).
    std::size_t submit(std::vector<event>& batch, std::size_t from = 0);
    // Like submit, waiting up to `timeout` for room.
    std::size_t submit_wait(std::vector<event>& batch, std::size_t from,
                            std::chrono::milliseconds timeout);

    // fn runs once (on the dispatch thread) as soon as the queue has room again for `events`
    // events. For a producer that stopped reading after a submit that was refused.
    void when_room(std::function<void()> fn, std::size_t events = 1);
    // Runs fn on the dispatch thread between batches (control, reconfiguration, flush).
    void post(std::function<void()> fn);
    // Batches are queued that the dispatch thread has not taken yet: a producer's partial batch
    // would only wait behind them, so it may keep filling it. Any thread.
    bool backlogged() const noexcept { return backlog_.load(std::memory_order_relaxed); }
    // fn runs once (on the dispatch thread) when it next takes the queued batches: the moment
    // a producer that kept filling its batch should hand it over.
    void when_taken(std::function<void()> fn);

    // No more events; waits until the queue is dispatched and the handlers flushed, or the
    // deadline. False when a handler is still busy then; the caller may free what the handler
    // waits for and call finish() again, or give up(): then the thread is left behind and the
    // caller should end the process without running destructors of what it uses.
    bool finish(std::chrono::steady_clock::time_point deadline);
    void give_up();

    // The handlers flush: in caller mode now (the producer's turn is over); in thread mode
    // the dispatch thread does it whenever it runs dry, so this does nothing.
    void flush();
    // Caller mode: a handler's output is behind (handler::congested): a producer that can wait
    // should stop producing until it is not. Always false in thread mode (the queue says it).
    bool congested() const;
    // Caller mode: a handler is about to drop (handler::about_to_drop). False in thread mode.
    bool about_to_drop() const;
    dispatch_mode mode() const noexcept { return o_.mode; }

    // Events queued or being dispatched.
    std::size_t depth() const;
    // The bound in events (dispatcher_options::queue): a producer's batches should not be larger.
    std::size_t capacity() const noexcept { return o_.queue; }
    std::uint64_t dispatched() const noexcept {
        return dispatched_.load(std::memory_order_relaxed);
    }
    // Times the dispatch thread was woken from sleep for work (batches, posts): at most one per
    // submitted batch.
    std::uint64_t wakeups() const noexcept { return wakeups_.load(std::memory_order_relaxed); }
    // Times the dispatch thread found a handler behind and waited (wait_for_handlers).
    std::uint64_t handler_waits() const noexcept {
        return handler_waits_.load(std::memory_order_relaxed);
    }
    // Thread mode, burst_hold: the holds begun, and those that ended before the handler caught
    // up (their time spent, or the queue half full; a post or finish() ending one is not
    // counted). Any thread.
    std::uint64_t burst_holds() const noexcept {
        return burst_holds_.load(std::memory_order_relaxed);
    }
    std::uint64_t burst_hold_overruns() const noexcept {
        return burst_hold_overruns_.load(std::memory_order_relaxed);
    }

private:
    using batch_ptr = std::unique_ptr<event_batch>;
    void run();
    // Caller mode: the events of b to the bus, here and now.
    void dispatch_here(const event_batch& b);
    // The batch's events to the bus, with the pass-through lines it carries in their places.
    void deliver(const event_batch& b);
    // Thread mode with wait_for_handlers: returns once no handler is behind, once work posted
    // has waited 500 ms, or once finish() has used three quarters of its time.
    void wait_for_handlers();
    // Thread mode with burst_hold: returns once no handler is about to drop, once the hold is
    // spent (then not again until the handlers caught up), or as wait_for_handlers does for
    // posts and finish().
    void hold_for_handlers();
    // Waits while `behind()` (asked without mu_), looking again every congestion_recheck,
    // until it is not (caught_up), `enough()` (asked with mu_ held) says so, or posted work or
    // finish() cut it (waited_enough).
    enum class wait_end { caught_up, enough, cut };
    wait_end wait_while(const std::function<bool()>& behind, const std::function<bool()>& enough);
    // Whether a wait for the handlers should end for posted work or finish(). mu_ held.
    bool waited_enough(std::chrono::steady_clock::time_point now,
                       std::optional<std::chrono::steady_clock::time_point>& posts_since) const;
    // Room for one more event; an empty queue always has room. mu_ held.
    bool room() const noexcept {
        return count_ == 0 || (count_ < o_.queue && bytes_ < o_.queue_bytes);
    }
    // Room for what room_fn_ waits for. mu_ held.
    bool room_for_fn() const noexcept {
        return count_ == 0 || (count_ + room_need_ <= o_.queue && bytes_ < o_.queue_bytes);
    }
    // Room for the whole batch b. mu_ held.
    bool fits(const event_batch& b) const noexcept {
        return count_ == 0 ||
               (count_ + b.size() <= o_.queue && bytes_ + b.bytes() <= o_.queue_bytes);
    }
    // Queues b (mu_ held); returns whether the dispatch thread must be woken.
    bool enqueue(batch_ptr b);
    batch_ptr recycled();  // mu_ held: a free batch, or null

    handler_bus& bus_;
    const dispatcher_options o_;
    mutable std::mutex mu_;
    std::condition_variable work_;  // the dispatch thread waits for batches or side work
    std::condition_variable room_;  // submit_wait waits for room
    std::vector<batch_ptr> queued_;
    std::vector<batch_ptr> free_;
    std::size_t count_ = 0;  // events queued + being dispatched
    std::size_t bytes_ = 0;  // their estimated memory
    bool sleeping_ = false;  // the dispatch thread waits on work_
    int room_waiters_ = 0;   // submit_wait callers waiting on room_
    bool closed_ = false;
    std::chrono::steady_clock::time_point
        wait_until_{};  // finish(): handlers waited for until then
    std::vector<std::function<void()>> posted_;
    std::function<void()> room_fn_;
    std::size_t room_need_ = 1;  // the events room_fn_ waits room for
    std::function<void()> taken_fn_;
    std::atomic<bool> backlog_{false};  // queued_ is not empty
    std::atomic<std::uint64_t> dispatched_{0};
    std::atomic<std::uint64_t> wakeups_{0};
    std::atomic<std::uint64_t> handler_waits_{0};
    std::atomic<std::uint64_t> burst_holds_{0};
    std::atomic<std::uint64_t> burst_hold_overruns_{0};
    bool hold_spent_ = false;  // the dispatch thread's hold ended before the handlers caught up
    std::promise<void> done_;
    std::future<void> done_future_;
    std::thread thread_;
    bool finished_ = false;
    bool joined_ = false;
    bool abandoned_ = false;  // give_up() left a stuck dispatch thread behind
};

}  // namespace telecap
