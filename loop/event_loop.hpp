#pragma once
// The event loop: the only user of epoll in telecap. One thread runs it; it watches readable
// fds, runs timers, reads signals from a signalfd, and runs functions that other threads
// post() to it. Callbacks run on the loop thread, one at a time, and must not block.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "telecap/core/unique_fd.hpp"

namespace telecap {

class event_loop {
public:
    using clock = std::chrono::steady_clock;
    using timer_id = std::uint64_t;

    // Throws std::system_error when epoll, the eventfd or the timerfd cannot be created.
    event_loop();
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    // Calls fn when fd is readable (or hung up, or in error: fn reads and finds out).
    // Level-triggered. The fd stays the caller's. Replaces an earlier watch of the same fd.
    void watch(int fd, std::function<void()> fn);
    // Calls fn when fd is writable (or in error), level-triggered, until unwatch(fd): for a
    // non-blocking writer with bytes pending. Same rules as watch() otherwise.
    void watch_writable(int fd, std::function<void()> fn);
    void unwatch(int fd);
    // Stops (false) or resumes (true) calling fn for fd, keeping the watch: back-pressure.
    void set_reading(int fd, bool on);

    // Runs fn once at `when` (or at the next turn if that has passed). Returns an id for cancel.
    timer_id at(clock::time_point when, std::function<void()> fn);
    timer_id after(std::chrono::nanoseconds d, std::function<void()> fn) {
        return at(clock::now() + d, std::move(fn));
    }
    void cancel(timer_id id);

    // Reads `set` from a signalfd and calls fn for each signal received. The signals must be
    // blocked in every thread of the process (spawn::block_signals before threads start).
    void on_signals(const sigset_t& set, std::function<void(int sig)> fn);

    // Thread-safe: runs fn on the loop thread, at its next turn, in post order.
    void post(std::function<void()> fn);

    // Runs until stop(). run_once() waits at most `timeout` (negative: until something
    // happens) and handles what is ready; returns false once stopped.
    void run();
    bool run_once(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
    void stop() noexcept { stopped_ = true; }  // from the loop thread; others: post(stop)
    bool stopped() const noexcept { return stopped_; }

    // Turns of the loop so far (for tests and metrics).
    std::uint64_t turns() const noexcept { return turns_; }

    // Asks the next turn to wait `d` (at most until the next timer is due) before it looks at
    // the fds, so that what trickles in meanwhile is read in one go: read coalescing, for a
    // caller that sees its reads come back small and often (intake/read_linger.hpp).
    // Signals and posted work are then up to `d` late. Loop thread.
    void linger(std::chrono::microseconds d) noexcept { linger_ = d; }
    // Turns that lingered so far. Any thread.
    std::uint64_t lingers() const noexcept { return lingers_.load(std::memory_order_relaxed); }

private:
    struct watch_entry {
        int fd;
        bool reading = true;
        bool alive = true;
        std::uint32_t events = 0;  // EPOLLIN or EPOLLOUT
        std::function<void()> fn;
    };
    void add_watch(int fd, std::uint32_t events, std::function<void()> fn);
    void arm_timer();
    void run_timers();
    void run_posted();
    void read_signals();

    unique_fd epoll_, wake_, timer_, signals_;
    std::map<int, std::shared_ptr<watch_entry>> watches_;
    std::multimap<clock::time_point, std::pair<timer_id, std::function<void()>>> timers_;
    std::map<timer_id, clock::time_point> timer_index_;
    timer_id next_timer_ = 1;
    std::optional<clock::time_point> armed_;
    std::function<void(int)> on_signal_;
    std::mutex post_mu_;
    std::vector<std::function<void()>> posted_;
    bool stopped_ = false;
    std::uint64_t turns_ = 0;
    std::chrono::microseconds linger_{0};
    std::atomic<std::uint64_t> lingers_{0};
};

}  // namespace telecap
