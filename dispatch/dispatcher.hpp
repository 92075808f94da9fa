#pragma once
// The dispatcher: a bounded queue of events and the one thread that hands them to the handler
// bus. Producers (the run loop) never wait here: submit() takes what fits and says how much;
// the caller applies its overflow policy (drop and count, or stop reading and wait for the
// room callback). A handler stuck for good cannot hang shutdown: finish() has a deadline.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "telecap/capture/bus.hpp"
#include "telecap/capture/event.hpp"
#include "telecap/core/bounded_queue.hpp"

namespace telecap {

struct dispatcher_options {
    std::size_t queue = 65536;                        // events queued at most
    std::size_t queue_bytes = std::size_t{16} << 20;  // their memory at most
    // Once an event is queued, the dispatch thread waits up to `linger` for `linger_events`
    // more before it runs the handlers: one wake-up per batch, not per event, when events
    // come one at a time. 0: at once.
    std::chrono::microseconds linger{200};
    std::size_t linger_events = 256;
};

class dispatcher {
public:
    // The bus must outlive the dispatcher; only the dispatch thread drives it once started.
    dispatcher(handler_bus& bus, dispatcher_options o);
    ~dispatcher();  // finish() with a short deadline if it was not called
    dispatcher(const dispatcher&) = delete;
    dispatcher& operator=(const dispatcher&) = delete;

    // Moves batch[from..] into the queue while there is room; never waits. Returns the index
    // of the first event not moved (batch.size() when all were).
    std::size_t submit(std::vector<event>& batch, std::size_t from = 0);
    // Like submit, waiting up to `timeout` for room.
    std::size_t submit_wait(std::vector<event>& batch, std::size_t from,
                            std::chrono::milliseconds timeout);
    // fn runs once (on the dispatch thread) as soon as the queue has room again. For a
    // producer that stopped reading after a submit that did not take everything.
    void when_room(std::function<void()> fn);
    // Runs fn on the dispatch thread between batches (control, reconfiguration, flush).
    void post(std::function<void()> fn);

    // No more events; waits until the queue is dispatched and the handlers flushed, or the
    // deadline. False when a handler is still busy then; the caller may free what the handler
    // waits for and call finish() again, or give up(): then the thread is left behind and the
    // caller should end the process without running destructors of what it uses.
    bool finish(std::chrono::steady_clock::time_point deadline);
    void give_up();

    std::size_t depth() const { return queue_.size(); }
    std::uint64_t dispatched() const noexcept { return dispatched_.load(std::memory_order_relaxed); }

private:
    void run();

    handler_bus& bus_;
    bounded_queue<event> queue_;
    std::mutex mu_;
    std::vector<std::function<void()>> posted_;
    std::function<void()> room_fn_;
    std::atomic<std::uint64_t> dispatched_{0};
    std::promise<void> done_;
    std::future<void> done_future_;
    std::thread thread_;
    bool finished_ = false;
    bool joined_ = false;
    bool abandoned_ = false;  // give_up() left a stuck dispatch thread behind
};

}  // namespace telecap
