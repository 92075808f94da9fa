#include "loop/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>

namespace telecap {

namespace {

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno, std::system_category(), what);
}

}  // namespace

event_loop::event_loop() {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) fail("epoll_create1");
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_) fail("eventfd");
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!timer_) fail("timerfd_create");
    for (int fd : {wake_.get(), timer_.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl");
    }
}

event_loop::~event_loop() = default;

void event_loop::watch(int fd, std::function<void()> fn) { add_watch(fd, EPOLLIN, std::move(fn)); }

void event_loop::watch_writable(int fd, std::function<void()> fn) {
    add_watch(fd, EPOLLOUT, std::move(fn));
}

void event_loop::add_watch(int fd, std::uint32_t events, std::function<void()> fn) {
    auto e = std::make_shared<watch_entry>();
    e->fd = fd;
    e->fn = std::move(fn);
    e->events = events;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    const bool known = watches_.count(fd) > 0 && watches_[fd]->reading;
    if (watches_.count(fd)) watches_[fd]->alive = false;
    if (::epoll_ctl(epoll_.get(), known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("epoll_ctl(watch)");
    watches_[fd] = std::move(e);
}

void event_loop::unwatch(int fd) {
    auto it = watches_.find(fd);
    if (it == watches_.end()) return;
    it->second->alive = false;
    if (it->second->reading)  // a closed fd has left the set already: this fails harmlessly
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    watches_.erase(it);
}

void event_loop::set_reading(int fd, bool on) {
    auto it = watches_.find(fd);
    if (it == watches_.end() || it->second->reading == on) return;
    it->second->reading = on;
    // Out of the set while paused: a hang-up would otherwise wake the loop again and again.
    epoll_event ev{};
    ev.events = it->second->events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, on ? &ev : nullptr);
}

event_loop::timer_id event_loop::at(clock::time_point when, std::function<void()> fn) {
    const timer_id id = next_timer_++;
    timers_.emplace(when, std::pair{id, std::move(fn)});
    timer_index_[id] = when;
    return id;
}

void event_loop::cancel(timer_id id) {
    auto it = timer_index_.find(id);
    if (it == timer_index_.end()) return;
    auto [lo, hi] = timers_.equal_range(it->second);
    for (auto t = lo; t != hi; ++t)
        if (t->second.first == id) {
            timers_.erase(t);
            break;
        }
    timer_index_.erase(it);
}

void event_loop::on_signals(const sigset_t& set, std::function<void(int)> fn) {
    on_signal_ = std::move(fn);
    const int fd = ::signalfd(signals_ ? signals_.get() : -1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) fail("signalfd");
    if (!signals_) {
        signals_.reset(fd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl");
    }
}

void event_loop::post(std::function<void()> fn) {
    bool first;
    {
        std::lock_guard lock(post_mu_);
        first = posted_.empty();
        posted_.push_back(std::move(fn));
    }
    if (first) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
    }
}

void event_loop::arm_timer() {
    std::optional<clock::time_point> next;
    if (!timers_.empty()) next = timers_.begin()->first;
    if (next == armed_) return;  // unchanged: spare the syscall
    armed_ = next;
    itimerspec spec{};
    if (next) {
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(next->time_since_epoch()).count();
        spec.it_value.tv_sec = std::max<std::int64_t>(ns / 1000000000, 0);
        spec.it_value.tv_nsec = std::max<std::int64_t>(ns % 1000000000, 0);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void event_loop::run_timers() {
    std::uint64_t ticks;
    while (::read(timer_.get(), &ticks, sizeof ticks) > 0) {
    }
    armed_.reset();
    const auto now = clock::now();
    // Timers added by a callback for "now" run at the next turn, so a timer that re-arms
    // itself cannot starve the loop.
    // Due timers stay in timer_index_ until they run: a callback may cancel() a later one of
    // the same batch (a deadline made moot), and then it must not run. (They used to leave the
    // index here, so such a cancel found nothing and the cancelled timer ran anyway.)
    std::vector<std::pair<timer_id, std::function<void()>>> due;
    while (!timers_.empty() && timers_.begin()->first <= now) {
        auto node = timers_.extract(timers_.begin());
        due.push_back(std::move(node.mapped()));
    }
    for (auto& [id, fn] : due)
        if (timer_index_.erase(id) > 0) fn();  // 0: cancelled by an earlier one of the batch
}

void event_loop::run_posted() {
    std::uint64_t n;
    while (::read(wake_.get(), &n, sizeof n) > 0) {
    }
    std::vector<std::function<void()>> fns;
    {
        std::lock_guard lock(post_mu_);
        fns.swap(posted_);
    }
    for (auto& fn : fns) fn();
}

void event_loop::read_signals() {
    signalfd_siginfo info;
    while (::read(signals_.get(), &info, sizeof info) == sizeof info)
        if (on_signal_) on_signal_(static_cast<int>(info.ssi_signo));
}

bool event_loop::run_once(std::chrono::milliseconds timeout) {
    if (stopped_) return false;
    ++turns_;
    if (linger_.count() > 0) {
        auto until = clock::now() + linger_;
        if (!timers_.empty()) until = std::min(until, timers_.begin()->first);
        linger_ = std::chrono::microseconds(0);
        lingers_.fetch_add(1, std::memory_order_relaxed);
        std::this_thread::sleep_until(until);
    }
    arm_timer();
    int wait_ms = static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30));
    if (!timers_.empty() && timers_.begin()->first <= clock::now()) wait_ms = 0;
    epoll_event ready[64];
    const int n = ::epoll_wait(epoll_.get(), ready, 64, wait_ms < 0 ? -1 : wait_ms);
    if (n < 0 && errno != EINTR) fail("epoll_wait");
    // Signals, posted work and timers first: they are what must never wait behind a flood.
    bool timers_due = !timers_.empty() && timers_.begin()->first <= clock::now();
    for (int i = 0; i < n; ++i) {
        const int fd = ready[i].data.fd;
        if (signals_ && fd == signals_.get())
            read_signals();
        else if (fd == wake_.get())
            run_posted();
        else if (fd == timer_.get())
            timers_due = true;
    }
    if (timers_due) run_timers();
    for (int i = 0; i < n && !stopped_; ++i) {
        const int fd = ready[i].data.fd;
        if (fd == wake_.get() || fd == timer_.get() || (signals_ && fd == signals_.get())) continue;
        auto it = watches_.find(fd);
        if (it == watches_.end()) continue;
        auto entry = it->second;  // keeps the callback alive if it unwatches itself
        if (entry->alive && entry->reading) entry->fn();
    }
    return !stopped_;
}

void event_loop::run() {
    while (run_once()) {
    }
}

}  // namespace telecap
