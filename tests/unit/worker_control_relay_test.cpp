// control/worker_control_relay: controls from other threads reach the target on the loop
// thread, in order; before attach() they wait, after detach() they are refused.
#include "control/worker_control_relay.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/unit_helpers.hpp"

namespace telecap::control {
namespace {

using namespace std::chrono_literals;

// Records each call with the thread it ran on; refuses the worker "nope".
struct fake_target final : held_target {
    std::vector<std::string> calls;
    std::vector<std::thread::id> threads;
    std::optional<std::string> hold_controls(std::uint64_t holder, std::string_view worker,
                                             std::string_view pool, controls update) override {
        threads.push_back(std::this_thread::get_id());
        calls.push_back("hold " + std::to_string(holder) + " " + std::string(worker) + "/" +
                        std::string(pool) + (update.enabled && !*update.enabled ? " off" : ""));
        if (worker == "nope") return "no worker \"nope\"";
        return std::nullopt;
    }
    void release_controls(std::uint64_t holder) override {
        threads.push_back(std::this_thread::get_id());
        calls.push_back("release " + std::to_string(holder));
    }
};

controls off() {
    controls c;
    c.enabled = false;
    return c;
}

bool run_until(event_loop& loop, const std::function<bool()>& pred) {
    const auto end = test::deadline_in();
    while (!pred() && std::chrono::steady_clock::now() < end) loop.run_once(100ms);
    return pred();
}

TEST(WorkerControlRelay, FromAnotherThreadToTheLoopThreadInOrderWithTheAnswer) {
    event_loop loop;
    fake_target t;
    worker_control_relay relay;
    relay.attach(loop, t);
    std::vector<std::optional<std::string>> answers;
    std::thread grpc([&] {
        relay.apply(1, "w1", "", off(), [&](auto p) { answers.push_back(p); });
        relay.apply(1, "nope", "", off(), [&](auto p) { answers.push_back(p); });
        relay.release(1);
    });
    grpc.join();
    EXPECT_TRUE(t.calls.empty());  // nothing runs off the loop thread
    ASSERT_TRUE(run_until(loop, [&] { return t.calls.size() == 3; }));
    EXPECT_EQ(t.calls,
              (std::vector<std::string>{"hold 1 w1/ off", "hold 1 nope/ off", "release 1"}));
    for (auto id : t.threads) EXPECT_EQ(id, std::this_thread::get_id());
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(answers[0], std::nullopt);
    EXPECT_EQ(answers[1], "no worker \"nope\"");
}

TEST(WorkerControlRelay, WhatArrivesBeforeAttachWaitsForIt) {
    event_loop loop;
    fake_target t;
    worker_control_relay relay;
    int answered = 0;
    relay.apply(7, "", "p", off(), [&](auto) { ++answered; });
    relay.release(7);
    loop.run_once(0ms);
    EXPECT_TRUE(t.calls.empty());
    relay.attach(loop, t);
    ASSERT_TRUE(run_until(loop, [&] { return t.calls.size() == 2; }));
    EXPECT_EQ(t.calls, (std::vector<std::string>{"hold 7 /p off", "release 7"}));
    EXPECT_EQ(answered, 1);
}

TEST(WorkerControlRelay, AfterDetachControlsAreRefusedAtOnce) {
    event_loop loop;
    fake_target t;
    worker_control_relay relay;
    relay.attach(loop, t);
    relay.detach();
    std::optional<std::string> answer;
    relay.apply(1, "w1", "", off(), [&](auto p) { answer = p; });
    relay.release(1);
    EXPECT_EQ(answer, "telecap is stopping");
    loop.run_once(0ms);
    EXPECT_TRUE(t.calls.empty());
}

TEST(WorkerControlRelay, OwnersAreDistinct) {
    worker_control_relay relay;
    const auto a = relay.next_owner();
    EXPECT_NE(a, relay.next_owner());
}

}  // namespace
}  // namespace telecap::control
