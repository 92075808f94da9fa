// event_loop: fd watches (level-triggered, replace, unwatch, pause), timers (order, cancel,
// no starvation), signals through a signalfd, and post() from other threads.
#include "loop/event_loop.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;
using test::make_pipe;

void put(int fd, const std::string& s = "x") {
    ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

// Runs turns until pred() holds or the patience runs out.
bool run_until(event_loop& loop, const std::function<bool()>& pred) {
    const auto end = test::deadline_in();
    while (!pred() && std::chrono::steady_clock::now() < end) loop.run_once(100ms);
    return pred();
}

TEST(EventLoopTest, WatchCallsWhenReadable) {
    event_loop loop;
    auto p = make_pipe();
    std::string got;
    loop.watch(p.read.get(), [&] { got += test::read_available(p.read.get()); });
    EXPECT_TRUE(loop.run_once(0ms));
    EXPECT_EQ(got, "");  // nothing to read yet: not called
    put(p.write.get(), "abc");
    EXPECT_TRUE(loop.run_once(test::patience));
    EXPECT_EQ(got, "abc");
}

TEST(EventLoopTest, WatchIsLevelTriggered) {
    event_loop loop;
    auto p = make_pipe();
    int calls = 0;
    loop.watch(p.read.get(), [&] { ++calls; });  // never reads: stays readable
    put(p.write.get());
    for (int i = 0; i < 3; ++i) loop.run_once(0ms);
    EXPECT_EQ(calls, 3);
}

TEST(EventLoopTest, WatchReplacesEarlierWatchOfSameFd) {
    event_loop loop;
    auto p = make_pipe();
    int first = 0, second = 0;
    loop.watch(p.read.get(), [&] { ++first; });
    loop.watch(p.read.get(), [&] { ++second; });
    put(p.write.get());
    loop.run_once(0ms);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, 1);
}

TEST(EventLoopTest, UnwatchStopsCallbacks) {
    event_loop loop;
    auto p = make_pipe();
    int calls = 0;
    loop.watch(p.read.get(), [&] { ++calls; });
    put(p.write.get());
    loop.run_once(0ms);
    loop.unwatch(p.read.get());
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
    loop.unwatch(p.read.get());  // unknown now: harmless
    loop.unwatch(12345);
}

TEST(EventLoopTest, CallbackMayUnwatchItself) {
    event_loop loop;
    auto p = make_pipe();
    int calls = 0;
    std::string seen;
    loop.watch(p.read.get(), [&] {
        ++calls;
        loop.unwatch(p.read.get());
        seen = "alive";  // the callback's own state is still valid after unwatch
    });
    put(p.write.get());
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(seen, "alive");
}

TEST(EventLoopTest, CallbackThatUnwatchesAnotherReadyFdPreventsItsCall) {
    event_loop loop;
    auto a = make_pipe();
    auto b = make_pipe();
    int calls = 0;
    loop.watch(a.read.get(), [&] {
        ++calls;
        loop.unwatch(b.read.get());
    });
    loop.watch(b.read.get(), [&] {
        ++calls;
        loop.unwatch(a.read.get());
    });
    put(a.write.get());
    put(b.write.get());
    loop.run_once(0ms);  // both ready in the same turn: whichever runs first removes the other
    EXPECT_EQ(calls, 1);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 2);  // the survivor stays watched (and readable)
}

TEST(EventLoopTest, SetReadingPausesAndResumes) {
    event_loop loop;
    auto p = make_pipe();
    int calls = 0;
    loop.watch(p.read.get(), [&] { ++calls; });
    put(p.write.get());
    loop.set_reading(p.read.get(), false);
    loop.set_reading(p.read.get(), false);  // twice: no change
    loop.run_once(0ms);
    EXPECT_EQ(calls, 0);
    loop.set_reading(p.read.get(), true);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
    loop.set_reading(12345, false);  // unknown fd: ignored
}

TEST(EventLoopTest, PausedHangUpDoesNotWakeTheLoop) {
    event_loop loop;
    auto p = make_pipe();
    int calls = 0;
    loop.watch(p.read.get(), [&] { ++calls; });
    loop.set_reading(p.read.get(), false);
    p.write.reset();  // hang-up: would be readable for ever
    const auto t0 = std::chrono::steady_clock::now();
    loop.run_once(30ms);  // nothing to do: waits the whole timeout
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 25ms);
    EXPECT_EQ(calls, 0);
    loop.set_reading(p.read.get(), true);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
}

TEST(EventLoopTest, WatchAgainWhilePausedReplacesAndResumes) {
    event_loop loop;
    auto p = make_pipe();
    int first = 0, second = 0;
    loop.watch(p.read.get(), [&] { ++first; });
    loop.set_reading(p.read.get(), false);
    loop.watch(p.read.get(), [&] { ++second; });
    put(p.write.get());
    loop.run_once(0ms);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, 1);
}

TEST(EventLoopTest, TimerRunsOnceWhenDue) {
    event_loop loop;
    int calls = 0;
    const auto t0 = event_loop::clock::now();
    event_loop::clock::time_point ran_at{};
    loop.after(20ms, [&] {
        ++calls;
        ran_at = event_loop::clock::now();
    });
    EXPECT_TRUE(run_until(loop, [&] { return calls > 0; }));
    EXPECT_GE(ran_at - t0, 20ms);  // never early
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
}

TEST(EventLoopTest, BlockedRunOnceWakesForTimer) {
    event_loop loop;
    bool ran = false;
    loop.after(10ms, [&] { ran = true; });
    const auto t0 = std::chrono::steady_clock::now();
    loop.run_once();  // no timeout: only the timer can end the wait
    EXPECT_TRUE(ran);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, test::patience);
}

TEST(EventLoopTest, TimersRunInTimeOrderThenInInsertionOrder) {
    event_loop loop;
    std::vector<int> order;
    const auto now = event_loop::clock::now();
    loop.at(now - 1ms, [&] { order.push_back(3); });
    loop.at(now - 3ms, [&] { order.push_back(1); });
    loop.at(now - 2ms, [&] { order.push_back(2); });
    loop.at(now - 1ms, [&] { order.push_back(4); });  // same time as 3: after it
    loop.run_once(0ms);                               // all due: one turn runs them
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

TEST(EventLoopTest, FutureTimersRunInDeadlineOrder) {
    event_loop loop;
    std::vector<int> order;
    loop.after(30ms, [&] { order.push_back(3); });
    loop.after(10ms, [&] { order.push_back(1); });
    loop.after(20ms, [&] { order.push_back(2); });
    EXPECT_TRUE(run_until(loop, [&] { return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoopTest, CancelledTimerNeverRuns) {
    event_loop loop;
    std::vector<int> ran;
    const auto now = event_loop::clock::now();
    const auto a = loop.at(now, [&] { ran.push_back(1); });
    const auto b = loop.at(now, [&] { ran.push_back(2); });  // same time point as a
    EXPECT_NE(a, b);
    loop.cancel(a);
    loop.cancel(a);       // twice: harmless
    loop.cancel(999999);  // unknown: harmless
    loop.run_once(0ms);
    EXPECT_EQ(ran, (std::vector<int>{2}));
}

TEST(EventLoopTest, TimerCancelledByAnEarlierTimerOfTheSameTurnDoesNotRun) {
    event_loop loop;
    std::vector<int> ran;
    const auto now = event_loop::clock::now();
    event_loop::timer_id second = 0;
    loop.at(now - 2ms, [&] {
        ran.push_back(1);
        loop.cancel(second);  // e.g. a deadline made moot by what the first timer did
    });
    second = loop.at(now - 1ms, [&] { ran.push_back(2); });
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(ran, (std::vector<int>{1}));
}

TEST(EventLoopTest, TimerArmedForNowFromATimerRunsNextTurn) {
    event_loop loop;
    int calls = 0;
    std::function<void()> again = [&] {
        ++calls;
        loop.after(0ms, again);  // re-arms itself: must not starve the loop
    };
    loop.after(0ms, again);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 2);
}

TEST(EventLoopTest, PostedWorkRunsInPostOrderOnTheLoop) {
    event_loop loop;
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) loop.post([&, i] { order.push_back(i); });
    loop.run_once(0ms);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(EventLoopTest, WorkPostedFromPostedWorkRunsNextTurn) {
    event_loop loop;
    int stage = 0;
    loop.post([&] {
        stage = 1;
        loop.post([&] { stage = 2; });
    });
    loop.run_once(0ms);
    EXPECT_EQ(stage, 1);
    loop.run_once(0ms);
    EXPECT_EQ(stage, 2);
}

TEST(EventLoopTest, PostFromAnotherThreadWakesABlockedRunOnce) {
    event_loop loop;
    std::atomic<bool> ran{false};
    std::thread::id ran_on;
    std::thread other([&] {
        loop.post([&] {
            ran_on = std::this_thread::get_id();
            ran = true;
        });
    });
    const auto t0 = std::chrono::steady_clock::now();
    loop.run_once(test::patience);  // posted before or during the wait: one turn runs it
    other.join();
    EXPECT_TRUE(ran);
    EXPECT_EQ(ran_on, std::this_thread::get_id());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, test::patience);
}

TEST(EventLoopTest, PostsFromManyThreadsKeepEachThreadsOrder) {
    event_loop loop;
    constexpr int threads = 4, each = 2000;
    std::vector<std::vector<int>> seen(threads);
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t)
        posters.emplace_back([&, t] {
            for (int i = 0; i < each; ++i) loop.post([&, t, i] { seen[t].push_back(i); });
        });
    std::size_t total = 0;
    EXPECT_TRUE(run_until(loop, [&] {
        total = 0;
        for (const auto& s : seen) total += s.size();
        return total == threads * each;
    }));
    for (auto& th : posters) th.join();
    for (int t = 0; t < threads; ++t) {
        ASSERT_EQ(seen[t].size(), static_cast<std::size_t>(each));
        for (int i = 0; i < each; ++i) ASSERT_EQ(seen[t][i], i);
    }
}

TEST(EventLoopTest, PostedStopEndsRun) {
    event_loop loop;
    int ticks = 0;
    loop.after(0ms, [&] { ++ticks; });
    std::thread other([&] { loop.post([&] { loop.stop(); }); });
    loop.run();  // returns once the posted stop ran
    other.join();
    EXPECT_TRUE(loop.stopped());
    EXPECT_FALSE(loop.run_once(0ms));
    EXPECT_EQ(ticks, 1);
}

TEST(EventLoopTest, StopInsideAWatchSkipsTheRestOfTheTurn) {
    event_loop loop;
    auto a = make_pipe();
    auto b = make_pipe();
    int calls = 0;
    loop.watch(a.read.get(), [&] {
        ++calls;
        loop.stop();
    });
    loop.watch(b.read.get(), [&] {
        ++calls;
        loop.stop();
    });
    put(a.write.get());
    put(b.write.get());
    EXPECT_FALSE(loop.run_once(0ms));
    EXPECT_EQ(calls, 1);
}

TEST(EventLoopTest, TurnsCountsEachRunOnce) {
    event_loop loop;
    EXPECT_EQ(loop.turns(), 0u);
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(loop.turns(), 2u);
}

// Blocks signals in this thread for the test (signalfd needs them blocked), and takes any
// that are still pending before putting the old mask back.
class blocked_signals {
public:
    explicit blocked_signals(std::initializer_list<int> sigs) {
        sigemptyset(&set_);
        for (int s : sigs) sigaddset(&set_, s);
        pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    ~blocked_signals() {
        timespec zero{};
        while (sigtimedwait(&set_, nullptr, &zero) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    const sigset_t& set() const { return set_; }

private:
    sigset_t set_{}, old_{};
};

TEST(EventLoopTest, SignalsArriveThroughTheSignalfd) {
    blocked_signals blocked{SIGUSR1, SIGUSR2};
    event_loop loop;
    std::vector<int> got;
    loop.on_signals(blocked.set(), [&](int sig) { got.push_back(sig); });
    ASSERT_EQ(::raise(SIGUSR1), 0);  // pending for this thread, which blocks it
    EXPECT_TRUE(run_until(loop, [&] { return !got.empty(); }));
    ASSERT_EQ(::raise(SIGUSR2), 0);
    EXPECT_TRUE(run_until(loop, [&] { return got.size() == 2; }));
    EXPECT_EQ(got, (std::vector<int>{SIGUSR1, SIGUSR2}));
}

TEST(EventLoopTest, OnSignalsAgainChangesTheSetAndTheCallback) {
    blocked_signals blocked{SIGUSR1, SIGUSR2};
    event_loop loop;
    sigset_t one, two;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    sigemptyset(&two);
    sigaddset(&two, SIGUSR2);
    std::vector<std::string> got;
    loop.on_signals(one, [&](int sig) { got.push_back("first " + std::to_string(sig)); });
    loop.on_signals(two, [&](int sig) { got.push_back("second " + std::to_string(sig)); });
    ASSERT_EQ(::raise(SIGUSR2), 0);
    EXPECT_TRUE(run_until(loop, [&] { return !got.empty(); }));
    EXPECT_EQ(got, (std::vector<std::string>{"second " + std::to_string(SIGUSR2)}));
}

TEST(EventLoopTest, SignalAndPostWakeABlockedLoop) {
    blocked_signals blocked{SIGUSR1};
    event_loop loop;
    int sig_seen = 0;
    loop.on_signals(blocked.set(), [&](int sig) { sig_seen = sig; });
    ASSERT_EQ(::raise(SIGUSR1), 0);
    loop.run_once();  // no timeout: the signal alone must end the wait
    EXPECT_EQ(sig_seen, SIGUSR1);
}

// A linger makes the next turn wait before it reads (what arrives meanwhile is read in that
// turn); it is used once; a timer due earlier cuts it short.
TEST(EventLoopTest, LingerWaitsOnceBeforeTheNextTurnReads) {
    event_loop loop;
    auto p = make_pipe();
    std::string got;
    loop.watch(p.read.get(), [&] { got += test::read_available(p.read.get()); });
    put(p.write.get(), "a");
    loop.linger(20ms);
    const auto t0 = std::chrono::steady_clock::now();
    put(p.write.get(), "b");
    ASSERT_TRUE(loop.run_once(0ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    EXPECT_EQ(got, "ab");  // both in one turn
    EXPECT_EQ(loop.lingers(), 1u);
    put(p.write.get(), "c");
    const auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(loop.run_once(0ms));  // no linger asked: at once
    EXPECT_LT(std::chrono::steady_clock::now() - t1, 20ms);
    EXPECT_EQ(loop.lingers(), 1u);

    bool fired = false;
    loop.after(1ms, [&] { fired = true; });
    loop.linger(std::chrono::seconds(30));
    const auto t2 = std::chrono::steady_clock::now();
    EXPECT_TRUE(run_until(loop, [&] { return fired; }));
    EXPECT_LT(std::chrono::steady_clock::now() - t2, std::chrono::seconds(5));
}

}  // namespace
}  // namespace telecap
