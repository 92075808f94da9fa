#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

#include "spawn/restart_policy.hpp"

namespace ts = telecap::spawn;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using time_point = ts::restart_tracker::clock::time_point;

namespace {

ts::restart_options options_for(ts::restart_mode mode) {
    ts::restart_options o;
    o.mode = mode;
    o.max_restarts = 1000;  // keep the intensity limit out of the way
    return o;
}

// Feeds `count` short-lived failures, 1 s apart, with no jitter; returns the delays.
std::vector<long> crash_loop(ts::restart_tracker& tracker, int count, time_point& now) {
    std::vector<long> delays;
    for (int i = 0; i < count; ++i) {
        now += 1s;
        const auto d = tracker.on_exit(true, now - 10ms, now, 0.5);
        EXPECT_TRUE(d.restart);
        delays.push_back(d.delay.count());
    }
    return delays;
}

}  // namespace

TEST(restart_mode, parses_and_prints) {
    EXPECT_EQ(ts::parse_restart_mode("never"), ts::restart_mode::never);
    EXPECT_EQ(ts::parse_restart_mode("no"), ts::restart_mode::never);
    EXPECT_EQ(ts::parse_restart_mode("on-failure"), ts::restart_mode::on_failure);
    EXPECT_EQ(ts::parse_restart_mode("on_failure"), ts::restart_mode::on_failure);
    EXPECT_EQ(ts::parse_restart_mode("always"), ts::restart_mode::always);
    EXPECT_EQ(ts::parse_restart_mode("Always"), std::nullopt);
    EXPECT_EQ(ts::parse_restart_mode(""), std::nullopt);
    for (auto mode :
         {ts::restart_mode::never, ts::restart_mode::on_failure, ts::restart_mode::always}) {
        EXPECT_EQ(ts::parse_restart_mode(ts::to_string(mode)), mode);
    }
    EXPECT_STREQ(ts::to_string(ts::restart_mode::on_failure), "on-failure");
}

TEST(restart_tracker, never_does_not_restart) {
    ts::restart_tracker tracker(options_for(ts::restart_mode::never));
    const time_point now{100s};
    for (bool failed : {true, false}) {
        const auto d = tracker.on_exit(failed, now - 1s, now, 0.5);
        EXPECT_FALSE(d.restart);
        EXPECT_FALSE(d.give_up);
        EXPECT_EQ(d.delay, 0ms);
        EXPECT_FALSE(d.reason.empty());
    }
}

TEST(restart_tracker, on_failure_restarts_only_failures) {
    ts::restart_tracker tracker(options_for(ts::restart_mode::on_failure));
    const time_point now{100s};
    const auto clean = tracker.on_exit(false, now - 1s, now, 0.5);
    EXPECT_FALSE(clean.restart);
    EXPECT_FALSE(clean.give_up);
    const auto failed = tracker.on_exit(true, now - 1s, now, 0.5);
    EXPECT_TRUE(failed.restart);
    EXPECT_FALSE(failed.give_up);
    EXPECT_EQ(failed.delay, 100ms);
}

TEST(restart_tracker, always_restarts_clean_exits_too) {
    ts::restart_tracker tracker(options_for(ts::restart_mode::always));
    const time_point now{100s};
    EXPECT_TRUE(tracker.on_exit(false, now - 1s, now, 0.5).restart);
    EXPECT_TRUE(tracker.on_exit(true, now - 1s, now, 0.5).restart);
}

TEST(restart_tracker, backoff_doubles_up_to_the_cap) {
    ts::restart_tracker tracker(options_for(ts::restart_mode::always));
    time_point now{};
    const std::vector<long> expected{100,  200,   400,   800,   1600,  3200,
                                     6400, 12800, 25600, 30000, 30000, 30000};
    EXPECT_EQ(crash_loop(tracker, 12, now), expected);
    EXPECT_EQ(tracker.next_backoff(), 30000ms);
}

TEST(restart_tracker, jitter_scales_within_bounds_and_clamps) {
    auto second_delay = [](double random01) {
        ts::restart_tracker tracker(options_for(ts::restart_mode::always));
        const time_point now{10s};
        const auto first = tracker.on_exit(true, now - 10ms, now, random01);
        EXPECT_GE(first.delay, 100ms) << "clamped up to backoff_min";
        EXPECT_LE(first.delay, 120ms);
        return tracker.on_exit(true, now, now + 1s, random01).delay;  // base 200ms
    };
    EXPECT_EQ(second_delay(0.0), 160ms);
    EXPECT_EQ(second_delay(0.25), 180ms);
    EXPECT_EQ(second_delay(0.5), 200ms);
    EXPECT_EQ(second_delay(1.0), 240ms);
    EXPECT_EQ(second_delay(7.0), 240ms) << "random01 is clamped to [0, 1]";
    EXPECT_EQ(second_delay(std::nan("")), 200ms);

    // At the cap, jitter may only lower the delay.
    ts::restart_tracker capped(options_for(ts::restart_mode::always));
    time_point now{};
    crash_loop(capped, 10, now);
    EXPECT_EQ(capped.on_exit(true, now, now + 1s, 1.0).delay, 30000ms);
    EXPECT_EQ(capped.on_exit(true, now, now + 2s, 0.0).delay, 24000ms);
}

TEST(restart_tracker, a_healthy_run_resets_the_backoff) {
    ts::restart_tracker tracker(options_for(ts::restart_mode::on_failure));
    time_point now{};
    crash_loop(tracker, 4, now);  // 100, 200, 400, 800
    EXPECT_EQ(tracker.next_backoff(), 1600ms);

    now += 20s;
    const auto just_short = tracker.on_exit(true, now - 9999ms, now, 0.5);
    EXPECT_EQ(just_short.delay, 1600ms) << "ran less than healthy_after";

    now += 20s;
    const auto healthy = tracker.on_exit(true, now - 10s, now, 0.5);
    EXPECT_TRUE(healthy.restart);
    EXPECT_EQ(healthy.delay, 100ms);
    EXPECT_EQ(tracker.next_backoff(), 200ms);
}

TEST(restart_tracker, gives_up_beyond_max_restarts_in_window) {
    ts::restart_options o = options_for(ts::restart_mode::always);
    o.max_restarts = 3;
    o.restart_window = 60s;
    ts::restart_tracker tracker(o);
    const time_point t0{1000s};

    for (int i = 0; i < 3; ++i) {
        const time_point now = t0 + i * 10s;
        const auto d = tracker.on_exit(true, now - 1s, now, 0.5);
        EXPECT_TRUE(d.restart) << i;
        EXPECT_FALSE(d.give_up) << i;
    }
    EXPECT_EQ(tracker.restarts_within_window(t0 + 20s), 3);

    const auto fourth = tracker.on_exit(true, t0 + 29s, t0 + 30s, 0.5);
    EXPECT_FALSE(fourth.restart);
    EXPECT_TRUE(fourth.give_up);
    EXPECT_NE(fourth.reason.find("giving up"), std::string::npos) << fourth.reason;

    // Exactly one window after the first restart, that restart no longer counts.
    EXPECT_EQ(tracker.restarts_within_window(t0 + 60s), 2);
    const auto later = tracker.on_exit(true, t0 + 59s, t0 + 60s, 0.5);
    EXPECT_TRUE(later.restart);
    EXPECT_FALSE(later.give_up);
    EXPECT_EQ(tracker.restarts_within_window(t0 + 60s), 3);
}

TEST(restart_tracker, zero_max_restarts_gives_up_at_once) {
    ts::restart_options o = options_for(ts::restart_mode::on_failure);
    o.max_restarts = 0;
    ts::restart_tracker tracker(o);
    const time_point now{5s};
    const auto d = tracker.on_exit(true, now - 1s, now, 0.5);
    EXPECT_FALSE(d.restart);
    EXPECT_TRUE(d.give_up);
    // A clean exit under on-failure is not a restart, so it cannot exceed the intensity.
    EXPECT_FALSE(tracker.on_exit(false, now - 1s, now, 0.5).give_up);
}

TEST(restart_tracker, clamps_inconsistent_options) {
    ts::restart_options o = options_for(ts::restart_mode::always);
    o.backoff_min = 500ms;
    o.backoff_max = 100ms;
    o.jitter = -3.0;
    o.max_restarts = -1;
    ts::restart_tracker tracker(o);
    EXPECT_EQ(tracker.options().backoff_max, 500ms);
    EXPECT_EQ(tracker.options().jitter, 0.0);
    EXPECT_EQ(tracker.options().max_restarts, 0);

    o.max_restarts = 100;
    ts::restart_tracker fixed(o);
    time_point now{};
    for (long delay : crash_loop(fixed, 5, now)) EXPECT_EQ(delay, 500);
}

TEST(restart_tracker, doubling_saturates_near_the_limit) {
    ts::restart_options o = options_for(ts::restart_mode::always);
    o.backoff_max = milliseconds::max();
    o.jitter = 1.0;
    ts::restart_tracker tracker(o);
    time_point now{};
    milliseconds previous{0};
    for (int i = 0; i < 80; ++i) {
        now += 1s;
        const auto d = tracker.on_exit(true, now - 1ms, now, 0.5);
        ASSERT_TRUE(d.restart);
        EXPECT_GE(d.delay, previous) << i;
        previous = d.delay;
    }
    EXPECT_EQ(tracker.next_backoff(), milliseconds::max());
    EXPECT_EQ(tracker.on_exit(true, now, now + 1s, 1.0).delay, milliseconds::max());
}
