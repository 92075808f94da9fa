// dispatcher: the bounded queue in items and bytes, submit/submit_wait, the caller's overflow
// policies (drop-newest, block), when_room, post, throwing handlers, finish() with a deadline.
#include "dispatch/dispatcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;

event make_event(int seq, std::size_t payload = 0) {
    event ev;
    ev.name = {"test", "event"};
    ev.timestamp_ns = seq;
    if (payload) ev.measurements.emplace_back("blob", std::string(payload, 'x'));
    return ev;
}

std::vector<event> batch_of(int from, int n, std::size_t payload = 0) {
    std::vector<event> out;
    for (int i = 0; i < n; ++i) out.push_back(make_event(from + i, payload));
    return out;
}

// Records what it receives (timestamps); optionally waits at a gate inside each call.
struct recorder {
    std::mutex mu;
    std::vector<std::int64_t> seen;
    std::thread::id thread;
    test::gate* hold = nullptr;

    void attach(handler_bus& bus, const std::string& id = "rec") {
        bus.attach(id, {"test"}, [this](const event& ev) {
            if (hold) hold->wait();
            std::lock_guard lock(mu);
            thread = std::this_thread::get_id();
            seen.push_back(ev.timestamp_ns);
        });
    }
    std::vector<std::int64_t> get() {
        std::lock_guard lock(mu);
        return seen;
    }
};

std::vector<std::int64_t> iota(int from, int n) {
    std::vector<std::int64_t> v;
    for (int i = 0; i < n; ++i) v.push_back(from + i);
    return v;
}

TEST(DispatcherTest, DispatchesEverythingInOrderOnItsThread) {
    handler_bus bus;
    recorder rec;
    rec.attach(bus);
    dispatcher d(bus, {});
    auto b = batch_of(0, 100);
    EXPECT_EQ(d.submit(b), 100u);
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get(), iota(0, 100));
    EXPECT_EQ(d.dispatched(), 100u);
    EXPECT_EQ(d.depth(), 0u);
    EXPECT_NE(rec.thread, std::this_thread::get_id());
}

TEST(DispatcherTest, SubmitFromTakesTheRestOfABatch) {
    handler_bus bus;
    recorder rec;
    rec.attach(bus);
    dispatcher d(bus, {});
    auto b = batch_of(0, 10);
    EXPECT_EQ(d.submit(b, 4), 10u);
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get(), iota(4, 6));
}

TEST(DispatcherTest, SubmitNeverWaitsAndTakesWhatFitsDropNewest) {
    handler_bus bus;
    test::gate hold;
    recorder rec;
    rec.hold = &hold;
    rec.attach(bus);
    dispatcher d(bus, {.queue = 4});
    auto first = batch_of(0, 1);
    EXPECT_EQ(d.submit(first), 1u);
    ASSERT_TRUE(hold.wait_arrived(1));  // the handler holds event 0: it still counts
    auto more = batch_of(1, 10);
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t taken = d.submit(more);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // never waits for room
    EXPECT_EQ(taken, 3u);
    EXPECT_EQ(d.depth(), 4u);
    // drop-newest: the caller drops (and counts) more[taken..]; the oldest are kept.
    const std::size_t dropped = more.size() - taken;
    EXPECT_EQ(dropped, 7u);
    hold.open();
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get(), iota(0, 4));
    EXPECT_EQ(d.dispatched(), 4u);
}

TEST(DispatcherTest, QueueIsBoundedInBytes) {
    handler_bus bus;
    test::gate hold;
    recorder rec;
    rec.hold = &hold;
    rec.attach(bus);
    const std::size_t one = make_event(0, 1000).approximate_size();
    dispatcher d(bus, {.queue = 1000, .queue_bytes = 2 * one + 1});
    auto first = batch_of(0, 1, 1000);
    EXPECT_EQ(d.submit(first), 1u);
    ASSERT_TRUE(hold.wait_arrived(1));
    auto more = batch_of(1, 10, 1000);
    EXPECT_EQ(d.submit(more), 2u);  // 2 * one < limit: a third fits, then the bytes are full
    hold.open();
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get().size(), 3u);
}

TEST(DispatcherTest, EmptyQueueTakesOneEventHoweverLarge) {
    handler_bus bus;
    recorder rec;
    rec.attach(bus);
    dispatcher d(bus, {.queue = 10, .queue_bytes = 16});
    auto big = batch_of(0, 1, 100000);
    EXPECT_EQ(d.submit_wait(big, 0, test::patience), 1u);
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get().size(), 1u);
}

TEST(DispatcherTest, SubmitWaitGivesUpAtTheDeadline) {
    handler_bus bus;
    test::gate hold;
    recorder rec;
    rec.hold = &hold;
    rec.attach(bus);
    dispatcher d(bus, {.queue = 2});
    auto b = batch_of(0, 2);
    EXPECT_EQ(d.submit(b), 2u);
    ASSERT_TRUE(hold.wait_arrived(1));
    auto more = batch_of(2, 3);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(d.submit_wait(more, 0, 50ms), 0u);  // full the whole time
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 45ms);
    EXPECT_LT(waited, test::patience);
    hold.open();
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get(), iota(0, 2));
}

TEST(DispatcherTest, SubmitWaitBlocksUntilEverythingFits) {
    handler_bus bus;
    test::gate hold;
    recorder rec;
    rec.hold = &hold;
    rec.attach(bus);
    dispatcher d(bus, {.queue = 2});
    auto b = batch_of(0, 2);
    EXPECT_EQ(d.submit(b), 2u);
    ASSERT_TRUE(hold.wait_arrived(1));
    std::thread opener([&] { hold.open(); });
    auto more = batch_of(2, 20);  // 10 times the queue: takes many rounds of room
    EXPECT_EQ(d.submit_wait(more, 0, test::patience), 20u);
    opener.join();
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(rec.get(), iota(0, 22));  // block policy: nothing lost, order kept
}

TEST(DispatcherTest, WhenRoomRunsOnceRoomIsBack) {
    handler_bus bus;
    test::gate hold;
    recorder rec;
    rec.hold = &hold;
    rec.attach(bus);
    dispatcher d(bus, {.queue = 2});
    auto b = batch_of(0, 5);
    EXPECT_EQ(d.submit(b), 2u);
    ASSERT_TRUE(hold.wait_arrived(1));
    std::atomic<int> calls{0};
    std::promise<std::thread::id> room;
    d.when_room([&] {
        if (calls++ == 0) room.set_value(std::this_thread::get_id());
    });
    auto fut = room.get_future();
    EXPECT_EQ(fut.wait_for(20ms), std::future_status::timeout);  // still full
    hold.open();
    ASSERT_EQ(fut.wait_for(test::patience), std::future_status::ready);
    EXPECT_NE(fut.get(), std::this_thread::get_id());  // on the dispatch thread
    // The producer resumes: the rest fits now.
    EXPECT_EQ(d.submit_wait(b, 2, test::patience), 5u);
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(calls.load(), 1);  // once, not each time there is room
    EXPECT_EQ(rec.get(), iota(0, 5));
}

TEST(DispatcherTest, WhenRoomWithRoomAlreadyRunsPromptly) {
    handler_bus bus;
    dispatcher d(bus, {});
    std::promise<void> room;
    d.when_room([&] { room.set_value(); });
    EXPECT_EQ(room.get_future().wait_for(test::patience), std::future_status::ready);
    EXPECT_TRUE(d.finish(test::deadline_in()));
}

TEST(DispatcherTest, PostRunsOnTheDispatchThreadAfterEarlierEvents) {
    handler_bus bus;
    recorder rec;
    rec.attach(bus);
    dispatcher d(bus, {});
    auto b = batch_of(0, 50);
    EXPECT_EQ(d.submit(b), 50u);
    std::promise<std::pair<std::thread::id, std::size_t>> ran;
    d.post([&] { ran.set_value({std::this_thread::get_id(), rec.get().size()}); });
    auto fut = ran.get_future();
    ASSERT_EQ(fut.wait_for(test::patience), std::future_status::ready);
    const auto [thread, seen] = fut.get();
    EXPECT_NE(thread, std::this_thread::get_id());
    EXPECT_EQ(seen, 50u);  // between batches: the events submitted before it went first
    EXPECT_TRUE(d.finish(test::deadline_in()));
}

TEST(DispatcherTest, PostsRunInOrderAndBeforeFinishReturns) {
    handler_bus bus;
    dispatcher d(bus, {});
    std::vector<int> order;  // only the dispatch thread touches it until finish()
    for (int i = 0; i < 10; ++i) d.post([&, i] { order.push_back(i); });
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(DispatcherTest, ThrowingHandlerIsCountedAndOthersKeepGettingEvents) {
    test::log_capture log;
    handler_bus bus;
    std::atomic<int> thrown{0};
    bus.attach("bad", {}, [&](const event&) {
        ++thrown;
        throw std::runtime_error("boom");
    });
    recorder rec;
    rec.attach(bus, "good");
    std::atomic<int> announced{0};
    bus.attach("watcher", handler_bus::failure_event_name(), [&](const event&) { ++announced; });
    dispatcher d(bus, {});
    for (int i = 0; i < 5; ++i) {
        auto b = batch_of(i * 10, 10);
        EXPECT_EQ(d.submit_wait(b, 0, test::patience), 10u);
    }
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(thrown.load(), 1);  // detached after its first failure
    EXPECT_EQ(bus.failures(), 1u);
    EXPECT_EQ(rec.get(), iota(0, 50));
    EXPECT_EQ(announced.load(), 1);  // the failure event reached the handlers still attached
    EXPECT_EQ(d.dispatched(), 50u);
    EXPECT_TRUE(log.contains("boom")) << log.text();
}

TEST(DispatcherTest, FinishWaitsForASlowHandler) {
    handler_bus bus;
    test::gate hold;
    recorder rec;
    rec.hold = &hold;
    rec.attach(bus);
    dispatcher d(bus, {});
    auto b = batch_of(0, 3);
    EXPECT_EQ(d.submit(b), 3u);
    ASSERT_TRUE(hold.wait_arrived(1));
    std::thread opener([&] { hold.open(); });
    EXPECT_TRUE(d.finish(test::deadline_in()));
    opener.join();
    EXPECT_EQ(rec.get(), iota(0, 3));
    EXPECT_TRUE(d.finish(test::deadline_in()));  // idempotent
}

TEST(DispatcherTest, SubmitAfterFinishTakesNothing) {
    handler_bus bus;
    recorder rec;
    rec.attach(bus);
    dispatcher d(bus, {});
    EXPECT_TRUE(d.finish(test::deadline_in()));
    auto b = batch_of(0, 3);
    EXPECT_EQ(d.submit(b), 0u);
    EXPECT_EQ(d.submit_wait(b, 0, 10ms), 0u);
    EXPECT_TRUE(rec.get().empty());
}

TEST(DispatcherTest, StuckHandlerCannotHangFinish) {
    // The documented contract: finish() gives up at the deadline and leaves the dispatch thread
    // behind, so nothing it uses may be destroyed. This test keeps them (reachable from
    // statics, so a leak checker does not flag them) and lets the thread end afterwards.
    struct flush_probe final : handler {
        explicit flush_probe(test::gate& g, std::promise<void>& f) : hold(g), flushed(f) {}
        void handle(const event&) override { hold.wait(); }
        void flush() override {
            if (!done.exchange(true)) flushed.set_value();
        }
        test::gate& hold;
        std::promise<void>& flushed;
        std::atomic<bool> done{false};
    };
    struct kept {
        handler_bus bus;
        test::gate hold;
        std::promise<void> flushed;
        std::unique_ptr<dispatcher> d;
    };
    // Never destroyed (static destructors run before the leak check), so it stays reachable.
    static auto* left_behind = new std::vector<kept*>;
    auto* k = new kept;
    left_behind->push_back(k);
    k->bus.attach("stuck", {}, std::make_shared<flush_probe>(k->hold, k->flushed));
    k->d = std::make_unique<dispatcher>(k->bus, dispatcher_options{});
    dispatcher* d = k->d.get();
    auto b = batch_of(0, 3);
    EXPECT_EQ(d->submit(b), 3u);
    ASSERT_TRUE(k->hold.wait_arrived(1));
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(d->finish(t0 + 50ms));
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 45ms);
    EXPECT_LT(took, test::patience);
    d->give_up();
    EXPECT_FALSE(d->finish(t0 + 50ms)) << "a call after give_up says the thread was left behind";
    k->hold.open();  // the handler comes back: the thread left behind drains, flushes, ends
    EXPECT_EQ(k->flushed.get_future().wait_for(test::patience), std::future_status::ready);
    EXPECT_EQ(d->dispatched(), 3u);
}

}  // namespace
// finish() that times out leaves the thread joinable: once the caller frees what the handler
// waited for, a second finish() joins it and everything was dispatched.
TEST(DispatcherTest, FinishCanWaitAgainAfterATimeout) {
    struct held final : handler {
        explicit held(test::gate& g) : hold(g) {}
        void handle(const event&) override { hold.wait(); }
        test::gate& hold;
    };
    handler_bus bus;
    test::gate hold;
    bus.attach("held", {}, std::make_shared<held>(hold));
    dispatcher d(bus, dispatcher_options{});
    auto b = batch_of(0, 2);
    EXPECT_EQ(d.submit(b), 2u);
    ASSERT_TRUE(hold.wait_arrived(1));
    EXPECT_FALSE(d.finish(std::chrono::steady_clock::now() + 20ms));
    hold.open();
    EXPECT_TRUE(d.finish(test::deadline_in()));
    EXPECT_EQ(d.dispatched(), 2u);
    EXPECT_TRUE(d.finish(test::deadline_in())) << "joined: a further call says so";
}

}  // namespace telecap

namespace telecap {
namespace {

// An output that cannot wait on its own (-o grpc) and says when it is behind; with
// `until_flushed`, it catches up only once flushed (an idle stream starts writing at its kick).
struct behind_handler final : handler {
    std::atomic<bool> behind{true};
    std::atomic<std::size_t> events{0};
    bool until_flushed = false;
    void handle(const event&) override { events.fetch_add(1); }
    void flush() override {
        if (until_flushed) behind = false;
    }
    bool congested() const override { return behind.load(); }
};

// A dispatcher with wait_for_handlers (run --overflow block) and a behind_handler on its bus.
struct waiting_dispatcher {
    handler_bus bus;
    std::shared_ptr<behind_handler> h = std::make_shared<behind_handler>();
    std::optional<dispatcher> d;
    // `more`: other handlers, attached before the dispatch thread starts.
    explicit waiting_dispatcher(std::size_t queue = dispatcher_options{}.queue,
                                const std::function<void(handler_bus&)>& more = {}) {
        EXPECT_FALSE(bus.attach("grpc", {}, h));
        if (more) more(bus);
        dispatcher_options o;
        o.queue = queue;
        o.wait_for_handlers = true;
        d.emplace(bus, o);
    }
    // Submits events 0..n-1; true once the dispatch thread waits for the handler.
    bool submit_and_wait(int n) {
        auto b = batch_of(0, n);
        EXPECT_EQ(d->submit(b), static_cast<std::size_t>(n));
        return test::eventually([&] { return d->handler_waits() == 1; });
    }
};

// With wait_for_handlers the dispatch thread does not hand events to the handlers while one
// is behind: its queue fills, so the producers stop (submit refused), and work posted after
// those events waits for them. Once the handler has room, everything goes, in order.
TEST(DispatcherTest, WaitsWhileAHandlerIsBehindSoTheQueueFills) {
    recorder rec;
    waiting_dispatcher f(100, [&](handler_bus& bus) { rec.attach(bus); });
    ASSERT_TRUE(f.submit_and_wait(100));
    std::promise<std::size_t> ran;
    f.d->post([&] { ran.set_value(f.h->events.load()); });
    auto more = batch_of(100, 10);
    EXPECT_EQ(f.d->submit(more), 0u) << "the queue stays full while the handler is behind";
    auto fut = ran.get_future();
    EXPECT_EQ(fut.wait_for(100ms), std::future_status::timeout) << "the post waits its turn";
    EXPECT_EQ(f.h->events.load(), 0u);
    EXPECT_EQ(rec.get().size(), 0u);

    f.h->behind = false;
    ASSERT_EQ(fut.wait_for(test::patience), std::future_status::ready);
    EXPECT_EQ(fut.get(), 100u);
    EXPECT_EQ(f.d->submit(more), 10u);
    EXPECT_TRUE(f.d->finish(test::deadline_in()));
    EXPECT_EQ(rec.get(), iota(0, 110));
}

// The handlers are flushed before the wait: one that only writes at its flush would otherwise
// stay behind for good while the dispatch thread waits mid-batch.
TEST(DispatcherTest, AWaitForAHandlerFlushesTheHandlersFirst) {
    waiting_dispatcher f;
    f.h->until_flushed = true;
    auto b = batch_of(0, 100);
    EXPECT_EQ(f.d->submit(b), 100u);
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 100u; }));
    EXPECT_EQ(f.d->handler_waits(), 1u);
    EXPECT_TRUE(f.d->finish(test::deadline_in()));
}

// An output about to drop (a -o grpc stream with half its queue waiting) while `dropping`.
struct dropping_handler final : handler {
    std::atomic<bool> dropping{true};
    std::atomic<std::size_t> events{0};
    std::atomic<int> flushes{0};
    void handle(const event&) override { events.fetch_add(1); }
    void flush() override { flushes.fetch_add(1); }
    bool about_to_drop() const override { return dropping.load(); }
};

struct holding_dispatcher {
    handler_bus bus;
    std::shared_ptr<dropping_handler> h = std::make_shared<dropping_handler>();
    std::optional<dispatcher> d;
    explicit holding_dispatcher(std::chrono::milliseconds hold,
                                std::size_t queue = dispatcher_options{}.queue) {
        EXPECT_FALSE(bus.attach("grpc", {}, h));
        dispatcher_options o;
        o.burst_hold = hold;
        o.queue = queue;
        d.emplace(bus, o);
    }
    void submit(int from, int n) {
        auto b = batch_of(from, n);
        EXPECT_EQ(d->submit(b), static_cast<std::size_t>(n));
    }
};

// run's default (drop-newest) with a dispatch thread: a burst waits in the dispatcher's queue
// while an output is about to drop, instead of going to it to be dropped; the producers go on
// (the queue takes what fits), and once the output caught up everything goes, in order.
TEST(DispatcherTest, ThreadModeHoldsABurstInItsQueueWhileAHandlerIsAboutToDrop) {
    holding_dispatcher f(10s);  // longer than any wait here
    f.submit(0, 100);
    ASSERT_TRUE(test::eventually([&] { return f.d->burst_holds() == 1u; }));
    EXPECT_EQ(f.h->events.load(), 0u) << "held before its first event";
    EXPECT_GE(f.h->flushes.load(), 1) << "flushed first: an idle stream starts at its flush";
    EXPECT_EQ(f.d->burst_hold_overruns(), 0u);
    f.submit(100, 10);  // the queue takes the burst meanwhile
    f.h->dropping = false;
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 110u; }));
    EXPECT_EQ(f.d->burst_hold_overruns(), 0u);
    EXPECT_EQ(f.d->handler_waits(), 0u) << "a hold is not block mode's wait";
    EXPECT_TRUE(f.d->finish(test::deadline_in()));
}

TEST(DispatcherTest, ThreadModeBurstHoldIsSpentOncePerCongestion) {
    holding_dispatcher f(20ms);
    f.submit(0, 100);
    // Still about to drop after 20 ms: the hold is spent, everything goes (the output drops
    // what it cannot keep), and no second hold while it stays so.
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 100u; }));
    f.submit(100, 100);
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 200u; }));
    EXPECT_EQ(f.d->burst_holds(), 1u);
    EXPECT_EQ(f.d->burst_hold_overruns(), 1u);
    // Caught up, then about to drop again: a new congestion, a new hold.
    f.h->dropping = false;
    f.submit(200, 1);
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 201u; }));
    f.h->dropping = true;
    f.submit(201, 1);
    ASSERT_TRUE(test::eventually([&] { return f.d->burst_holds() == 2u; }));
    EXPECT_TRUE(f.d->finish(test::deadline_in()));
}

// Half the queue stays for the producers: a hold that filled it would make them drop whole
// batches while the handler still has room.
TEST(DispatcherTest, ABurstHoldEndsOnceTheQueueIsHalfFull) {
    holding_dispatcher f(10s, 200);
    f.submit(0, 60);
    ASSERT_TRUE(test::eventually([&] { return f.d->burst_holds() == 1u; }));
    f.submit(60, 60);  // 120 of 200: the hold ends, everything goes
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 120u; }));
    EXPECT_EQ(f.d->burst_hold_overruns(), 1u);
    // Caught up, then about to drop with the queue already half full: no hold at all.
    f.h->dropping = false;
    f.submit(120, 1);
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 121u; }));
    f.h->dropping = true;
    f.submit(121, 150);
    ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 271u; }));
    EXPECT_EQ(f.d->burst_holds(), 1u);
    EXPECT_TRUE(f.d->finish(test::deadline_in()));
}

TEST(DispatcherTest, APostOrFinishEndsABurstHold) {
    {
        holding_dispatcher f(10s);
        f.submit(0, 100);
        ASSERT_TRUE(test::eventually([&] { return f.d->burst_holds() == 1u; }));
        std::promise<void> ran;
        f.d->post([&] { ran.set_value(); });
        EXPECT_EQ(ran.get_future().wait_for(test::patience), std::future_status::ready)
            << "a post waits 500 ms at most";
        EXPECT_EQ(f.h->events.load(), 100u) << "after the events before it";
        EXPECT_TRUE(f.d->finish(test::deadline_in()));
    }
    {
        holding_dispatcher f(10s);
        f.submit(0, 100);
        ASSERT_TRUE(test::eventually([&] { return f.d->burst_holds() == 1u; }));
        EXPECT_TRUE(f.d->finish(test::deadline_in(400ms)));
        EXPECT_EQ(f.h->events.load(), 100u);
    }
    {
        // Without a hold nothing waits for it.
        holding_dispatcher f(0ms);
        f.submit(0, 100);
        ASSERT_TRUE(test::eventually([&] { return f.h->events.load() == 100u; }));
        EXPECT_EQ(f.d->burst_holds(), 0u);
        EXPECT_TRUE(f.d->finish(test::deadline_in()));
    }
}

// At shutdown a handler behind keeps its time, up to most of finish()'s deadline: one that
// catches up within it gets everything; one that does not holds finish() no longer than that
// (the rest goes to it, to drop and count). Without wait_for_handlers nothing waits.
TEST(DispatcherTest, FinishWaitsForAHandlerBehindWithinItsDeadline) {
    {
        waiting_dispatcher f;
        ASSERT_TRUE(f.submit_and_wait(200));
        auto finished =
            std::async(std::launch::async, [&] { return f.d->finish(test::deadline_in()); });
        EXPECT_EQ(finished.wait_for(100ms), std::future_status::timeout);
        EXPECT_EQ(f.h->events.load(), 0u) << "finish() began: the handler still gets its time";
        f.h->behind = false;
        EXPECT_TRUE(finished.get());
        EXPECT_EQ(f.h->events.load(), 200u);
    }
    {
        waiting_dispatcher f;  // behind for good
        ASSERT_TRUE(f.submit_and_wait(200));
        EXPECT_TRUE(f.d->finish(test::deadline_in(400ms)));
        EXPECT_EQ(f.h->events.load(), 200u);
    }
    handler_bus other;
    auto g = std::make_shared<behind_handler>();
    ASSERT_FALSE(other.attach("grpc", {}, g));
    dispatcher plain(other, {});
    auto c = batch_of(0, 50);
    EXPECT_EQ(plain.submit(c), 50u);
    ASSERT_TRUE(test::eventually([&] { return g->events.load() == 50u; }));
    EXPECT_EQ(plain.handler_waits(), 0u);
    EXPECT_TRUE(plain.finish(test::deadline_in()));
}

// Work posted behind a handler that stays behind (a slow client) is not held for as long as
// the client takes: after 500 ms the rest of the batch goes and the post runs, after it.
TEST(DispatcherTest, APostWaitsAtMostHalfASecondForAHandlerBehind) {
    waiting_dispatcher f;
    ASSERT_TRUE(f.submit_and_wait(100));
    const auto posted = std::chrono::steady_clock::now();
    std::promise<std::size_t> ran;
    f.d->post([&] { ran.set_value(f.h->events.load()); });
    auto fut = ran.get_future();
    ASSERT_EQ(fut.wait_for(test::patience), std::future_status::ready);
    EXPECT_GE(std::chrono::steady_clock::now() - posted, 400ms);
    EXPECT_EQ(fut.get(), 100u) << "after the events submitted before it";
    EXPECT_TRUE(f.d->finish(test::deadline_in(400ms)));
}

dispatcher_options on_caller() {
    dispatcher_options o;
    o.mode = dispatch_mode::caller;
    return o;
}

TEST(DispatcherCallerMode, HandlesEachBatchInsideSubmitOnTheCallersThread) {
    handler_bus bus;
    recorder rec;
    rec.attach(bus);
    dispatcher d(bus, on_caller());
    auto events = batch_of(0, 10);
    EXPECT_EQ(d.submit(events), 10u);
    EXPECT_EQ(rec.get(), iota(0, 10));  // before submit returned: no queue, no thread
    EXPECT_EQ(rec.thread, std::this_thread::get_id());
    auto b = d.take_batch();
    event_batch* same = b.get();
    for (int i = 10; i < 20; ++i) b->push(make_event(i));
    EXPECT_TRUE(d.submit(b));
    EXPECT_EQ(b.get(), same) << "the same batch comes back, empty: its slots stay warm";
    EXPECT_TRUE(b->empty());
    EXPECT_EQ(rec.get(), iota(0, 20));
    EXPECT_EQ(d.depth(), 0u);
    EXPECT_EQ(d.dispatched(), 20u);
    bool posted = false;
    d.post([&] { posted = true; });
    EXPECT_TRUE(posted) << "between batches already: a post runs at once";
    EXPECT_TRUE(d.finish(test::deadline_in()));
    auto late = batch_of(20, 1);
    EXPECT_EQ(d.submit(late), 0u);
}

TEST(DispatcherCallerMode, FlushCongestionAndAboutToDropAreTheHandlers) {
    handler_bus bus;
    auto h = std::make_shared<test::behind_output>();
    ASSERT_FALSE(bus.attach("behind", {}, h));
    {
        dispatcher d(bus, on_caller());
        EXPECT_FALSE(d.congested());
        h->behind = true;
        EXPECT_TRUE(d.congested());
        EXPECT_FALSE(d.about_to_drop()) << "behind is not about to drop";
        h->dropping = true;
        EXPECT_TRUE(d.about_to_drop());
        d.flush();
        EXPECT_EQ(h->flushes, 1);
        EXPECT_TRUE(d.finish(test::deadline_in()));
        EXPECT_EQ(h->flushes, 2) << "finish flushes what the last turn left";
    }
    // With a dispatch thread the queue says when to wait; a handler's word is not asked.
    dispatcher t(bus, {});
    EXPECT_FALSE(t.congested());
    EXPECT_FALSE(t.about_to_drop());
    EXPECT_TRUE(t.finish(test::deadline_in()));
}

}  // namespace
}  // namespace telecap
