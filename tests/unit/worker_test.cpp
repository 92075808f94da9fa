// worker_fsm: the phases of one worker (idle, running, stopping, backoff, done), stop() in
// every phase, exited() under each restart policy, backoff growth and reset, giving up.
#include "supervise/worker.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace telecap {
namespace {

using namespace std::chrono_literals;
using spawn::restart_mode;
using spawn::restart_options;
using clk = worker_fsm::clock;

restart_options policy(restart_mode mode, int max_restarts = 5) {
    restart_options o;
    o.mode = mode;
    o.backoff_min = 100ms;
    o.backoff_max = 1000ms;
    o.healthy_after = 10s;
    o.restart_window = 60s;
    o.max_restarts = max_restarts;
    o.jitter = 0;  // exact delays
    return o;
}

const clk::time_point t0{std::chrono::hours(1)};

TEST(WorkerFsmTest, StartsIdle) {
    worker_fsm w(policy(restart_mode::always));
    EXPECT_EQ(w.phase(), worker_phase::idle);
    EXPECT_FALSE(w.live());
    EXPECT_EQ(w.pid(), 0);
    EXPECT_EQ(w.runs(), 0);
    EXPECT_EQ(w.restarts(), 0);
    EXPECT_FALSE(w.exit_code().has_value());
    EXPECT_TRUE(w.gave_up().empty());
}

// The control socket's start and restart: a done worker may run again; nothing else revives.
TEST(WorkerFsmTest, ReviveOnlyFromDone) {
    worker_fsm w(policy(restart_mode::always));
    EXPECT_FALSE(w.revive());  // idle
    w.started(10, t0);
    EXPECT_FALSE(w.revive());  // running
    EXPECT_TRUE(w.stop());
    EXPECT_FALSE(w.revive());  // stopping
    w.exited(143, t0 + 1s, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::done);
    EXPECT_TRUE(w.revive());
    EXPECT_EQ(w.phase(), worker_phase::idle);
    w.started(11, t0 + 2s);
    EXPECT_EQ(w.runs(), 2);  // the count goes on
    EXPECT_EQ(w.restarts(), 1);
    EXPECT_EQ(w.pid(), 11);
}

TEST(WorkerFsmTest, StartedRuns) {
    worker_fsm w(policy(restart_mode::never));
    w.started(42, t0);
    EXPECT_EQ(w.phase(), worker_phase::running);
    EXPECT_TRUE(w.live());
    EXPECT_EQ(w.pid(), 42);
    EXPECT_EQ(w.runs(), 1);
    EXPECT_EQ(w.restarts(), 0);
    EXPECT_EQ(w.started_at(), t0);
}

TEST(WorkerFsmTest, NeverRestartsEndsDone) {
    worker_fsm w(policy(restart_mode::never));
    w.started(42, t0);
    w.exited(3, t0 + 1s, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::done);
    EXPECT_FALSE(w.live());
    EXPECT_EQ(w.exit_code(), 3);
    EXPECT_TRUE(w.gave_up().empty());  // done by policy, not given up
}

TEST(WorkerFsmTest, OnFailureRestartsOnlyFailures) {
    worker_fsm clean(policy(restart_mode::on_failure));
    clean.started(1, t0);
    clean.exited(0, t0 + 1s, 0.5);
    EXPECT_EQ(clean.phase(), worker_phase::done);
    EXPECT_EQ(clean.exit_code(), 0);

    worker_fsm failed(policy(restart_mode::on_failure));
    failed.started(1, t0);
    failed.exited(1, t0 + 1s, 0.5);
    EXPECT_EQ(failed.phase(), worker_phase::backoff);
    EXPECT_FALSE(failed.live());
    EXPECT_EQ(failed.restart_at(), t0 + 1s + 100ms);

    worker_fsm signalled(policy(restart_mode::on_failure));
    signalled.started(1, t0);
    signalled.exited(128 + 9, t0 + 1s, 0.5);  // killed by SIGKILL: a failure
    EXPECT_EQ(signalled.phase(), worker_phase::backoff);
    EXPECT_EQ(signalled.exit_code(), 137);
}

TEST(WorkerFsmTest, AlwaysRestartsCleanExits) {
    worker_fsm w(policy(restart_mode::always));
    w.started(1, t0);
    w.exited(0, t0 + 1s, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::backoff);
    EXPECT_EQ(w.restart_at(), t0 + 1s + 100ms);
}

TEST(WorkerFsmTest, BackoffThenStartedRunsAgainAndCountsTheRestart) {
    worker_fsm w(policy(restart_mode::always));
    w.started(1, t0);
    w.exited(1, t0 + 1s, 0.5);
    ASSERT_EQ(w.phase(), worker_phase::backoff);
    w.started(2, w.restart_at());
    EXPECT_EQ(w.phase(), worker_phase::running);
    EXPECT_EQ(w.pid(), 2);
    EXPECT_EQ(w.runs(), 2);
    EXPECT_EQ(w.restarts(), 1);
    EXPECT_EQ(w.started_at(), t0 + 1s + 100ms);
}

TEST(WorkerFsmTest, BackoffDoublesUpToTheMaximumWhileCrashLooping) {
    worker_fsm w(policy(restart_mode::always, 100));
    auto now = t0;
    std::vector<long> delays;
    for (int i = 0; i < 6; ++i) {
        w.started(10 + i, now);
        now += 10ms;  // a short run: crash loop
        w.exited(1, now, 0.5);
        ASSERT_EQ(w.phase(), worker_phase::backoff);
        delays.push_back(static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(w.restart_at() - now).count()));
        now = w.restart_at();
    }
    EXPECT_EQ(delays, (std::vector<long>{100, 200, 400, 800, 1000, 1000}));
}

TEST(WorkerFsmTest, AHealthyRunResetsTheBackoff) {
    worker_fsm w(policy(restart_mode::always, 100));
    auto now = t0;
    for (int i = 0; i < 3; ++i) {  // 100, 200, 400
        w.started(1, now);
        w.exited(1, now + 10ms, 0.5);
        now = w.restart_at();
    }
    w.started(2, now);
    w.exited(1, now + 11s, 0.5);  // ran longer than healthy_after
    EXPECT_EQ(w.restart_at(), now + 11s + 100ms);
}

TEST(WorkerFsmTest, JitterScalesTheDelay) {
    auto o = policy(restart_mode::always);
    o.backoff_min = 100ms;
    o.jitter = 0.2;
    worker_fsm high(o);
    high.started(1, t0);
    high.exited(1, t0 + 1s, 1.0);  // factor 1.2
    EXPECT_EQ(high.restart_at(), t0 + 1s + 120ms);
    worker_fsm low(o);
    low.started(1, t0);
    low.exited(1, t0 + 1s, 0.0);  // factor 0.8, clamped up to backoff_min
    EXPECT_EQ(low.restart_at(), t0 + 1s + 100ms);
}

TEST(WorkerFsmTest, GivesUpPastMaxRestartsInTheWindow) {
    worker_fsm w(policy(restart_mode::always, 2));
    auto now = t0;
    for (int i = 0; i < 2; ++i) {
        w.started(1, now);
        w.exited(1, now + 10ms, 0.5);
        ASSERT_EQ(w.phase(), worker_phase::backoff) << i;
        now = w.restart_at();
    }
    w.started(1, now);
    w.exited(1, now + 10ms, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::done);
    EXPECT_FALSE(w.gave_up().empty());
    EXPECT_NE(w.gave_up().find("giving up"), std::string::npos) << w.gave_up();
    EXPECT_EQ(w.runs(), 3);
    EXPECT_EQ(w.restarts(), 2);
}

TEST(WorkerFsmTest, MaxRestartsZeroGivesUpOnTheFirstExit) {
    worker_fsm w(policy(restart_mode::always, 0));
    w.started(1, t0);
    w.exited(0, t0 + 1s, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::done);
    EXPECT_FALSE(w.gave_up().empty());
}

TEST(WorkerFsmTest, RestartsOutsideTheWindowDoNotCount) {
    auto o = policy(restart_mode::always, 1);
    o.restart_window = 5s;
    worker_fsm w(o);
    w.started(1, t0);
    w.exited(1, t0 + 10ms, 0.5);
    ASSERT_EQ(w.phase(), worker_phase::backoff);
    w.started(2, w.restart_at());
    w.exited(1, t0 + 20s, 0.5);  // the earlier restart has left the window
    EXPECT_EQ(w.phase(), worker_phase::backoff);
    EXPECT_TRUE(w.gave_up().empty());
}

TEST(WorkerFsmTest, FailedStartIsFollowedByItsExit) {
    worker_fsm w(policy(restart_mode::on_failure));
    w.started(0, t0);  // exec failed: no process
    EXPECT_EQ(w.phase(), worker_phase::running);
    EXPECT_EQ(w.pid(), 0);
    EXPECT_EQ(w.runs(), 1);
    w.exited(127, t0, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::backoff);
    EXPECT_EQ(w.exit_code(), 127);
}

TEST(WorkerFsmTest, StopWhenIdleIsDoneWithoutSignal) {
    worker_fsm w(policy(restart_mode::always));
    EXPECT_FALSE(w.stop());
    EXPECT_EQ(w.phase(), worker_phase::done);
}

TEST(WorkerFsmTest, StopWhenRunningAsksForTheSignal) {
    worker_fsm w(policy(restart_mode::always));
    w.started(42, t0);
    EXPECT_TRUE(w.stop());
    EXPECT_EQ(w.phase(), worker_phase::stopping);
    EXPECT_TRUE(w.live());   // still has to exit
    EXPECT_FALSE(w.stop());  // already stopping: no second signal
    EXPECT_EQ(w.phase(), worker_phase::stopping);
}

TEST(WorkerFsmTest, StopWhenRunningWithoutAProcessSignalsNothing) {
    worker_fsm w(policy(restart_mode::always));
    w.started(0, t0);  // failed start, its exit not reported yet
    EXPECT_FALSE(w.stop());
    EXPECT_EQ(w.phase(), worker_phase::stopping);
    w.exited(127, t0, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::done);
}

TEST(WorkerFsmTest, StoppingWorkerThatExitsIsDoneWhateverThePolicy) {
    worker_fsm w(policy(restart_mode::always));
    w.started(42, t0);
    ASSERT_TRUE(w.stop());
    w.exited(128 + 15, t0 + 1s, 0.5);
    EXPECT_EQ(w.phase(), worker_phase::done);
    EXPECT_EQ(w.exit_code(), 143);
    EXPECT_TRUE(w.gave_up().empty());
    EXPECT_FALSE(w.live());
}

TEST(WorkerFsmTest, StopInBackoffIsDoneWithoutSignal) {
    worker_fsm w(policy(restart_mode::always));
    w.started(42, t0);
    w.exited(1, t0 + 1s, 0.5);
    ASSERT_EQ(w.phase(), worker_phase::backoff);
    EXPECT_FALSE(w.stop());
    EXPECT_EQ(w.phase(), worker_phase::done);
}

TEST(WorkerFsmTest, StopWhenDoneStaysDone) {
    worker_fsm w(policy(restart_mode::never));
    w.started(42, t0);
    w.exited(0, t0 + 1s, 0.5);
    ASSERT_EQ(w.phase(), worker_phase::done);
    EXPECT_FALSE(w.stop());
    EXPECT_EQ(w.phase(), worker_phase::done);
    w.exited(1, t0 + 2s, 0.5);  // a late report changes nothing but the code
    EXPECT_EQ(w.phase(), worker_phase::done);
}

TEST(WorkerFsmTest, PhaseNames) {
    EXPECT_STREQ(to_string(worker_phase::idle), "idle");
    EXPECT_STREQ(to_string(worker_phase::running), "running");
    EXPECT_STREQ(to_string(worker_phase::stopping), "stopping");
    EXPECT_STREQ(to_string(worker_phase::backoff), "backoff");
    EXPECT_STREQ(to_string(worker_phase::done), "done");
}

}  // namespace
}  // namespace telecap
