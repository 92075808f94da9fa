// One stream of `-o grpc` without a network (bridge/stream_state.hpp): the queue bound and its
// drops, one write in flight, finishing once, and the controls of the request stream.

#include "bridge/stream_state.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace telecap::bridge {
namespace {

namespace pb = ::snakepit::bridge;
using fs = stream_state::finish_status;

struct fixture {
    // Started by the first event waiting, as the tests below expect: the threshold has its own.
    stream_state s{1, "ipv4:127.0.0.1:1", {}, 4, 0, 1};
    int made = 0;

    stream_state::action offer(std::string_view wire = "python.call.start") {
        message msg;
        return s.offer(std::string_view::npos, wire, stream_state::clock::now(), msg, [&] {
            ++made;
            return std::make_shared<const std::string>();
        });
    }
};

pb::TelemetryControl toggle(bool on) {
    pb::TelemetryControl c;
    c.mutable_toggle()->set_enabled(on);
    return c;
}

TEST(StreamState, NothingIsWrittenBeforeTheInitialMetadata) {
    fixture f;
    EXPECT_FALSE(f.offer().write);
    const auto a = f.s.on_metadata_sent(true);
    ASSERT_TRUE(a.write);  // the queued event goes once the metadata is out
    EXPECT_FALSE(a.more);
}

TEST(StreamState, OneWriteInFlightAndTheQueueBehindIt) {
    fixture f;
    f.s.on_metadata_sent(true);
    ASSERT_TRUE(f.offer().write);  // the slot was free: written at once
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(f.offer().write);  // queued behind it
    EXPECT_FALSE(f.offer().write);                              // the 5th behind: full
    auto info = f.s.info();
    EXPECT_EQ(info.queued, 4u);
    EXPECT_EQ(info.dropped[static_cast<std::size_t>(stream_drop::queue_full)], 1u);
    auto a = f.s.on_write_done(true);
    ASSERT_TRUE(a.write);
    EXPECT_TRUE(a.more);  // three more behind it: gRPC may coalesce
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.s.on_write_done(true).write);
    a = f.s.on_write_done(true);
    EXPECT_FALSE(a.write);
    EXPECT_EQ(a.finish, fs::none);
    info = f.s.info();
    EXPECT_EQ(info.sent, 5u);
    EXPECT_EQ(info.queued, 0u);
    EXPECT_EQ(f.made, 5);  // the dropped event was never converted
}

TEST(StreamState, TheWritersBatchStillCountsAgainstTheBound) {
    fixture f;  // capacity 4
    f.s.on_metadata_sent(true);
    ASSERT_TRUE(f.offer().write);
    for (int i = 0; i < 4; ++i) f.offer();
    ASSERT_TRUE(f.s.on_write_done(true).write);  // takes the four queued: one out, three left
    EXPECT_EQ(f.s.info().queued, 3u);
    EXPECT_FALSE(f.offer().write);  // room for one more, behind the batch
    f.offer();                      // none: the batch is not room
    auto info = f.s.info();
    EXPECT_EQ(info.queued, 4u);
    EXPECT_EQ(info.dropped[static_cast<std::size_t>(stream_drop::queue_full)], 1u);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.s.on_write_done(true).write);
    const auto a = f.s.on_write_done(true);  // the batch is out: the one queued behind it
    ASSERT_TRUE(a.write);
    EXPECT_FALSE(a.more);
    EXPECT_FALSE(f.s.on_write_done(true).write);
    info = f.s.info();
    EXPECT_EQ(info.sent, 6u);
    EXPECT_EQ(info.queued, 0u);
}

TEST(StreamState, ACancelDuringABatchCountsItsRestAsClosed) {
    fixture f;
    f.s.on_metadata_sent(true);
    f.offer();
    for (int i = 0; i < 3; ++i) f.offer();
    ASSERT_TRUE(f.s.on_write_done(true).write);   // a batch of three: one out, two left
    f.offer();                                    // queued behind the batch
    EXPECT_EQ(f.s.on_cancel().finish, fs::none);  // the write in flight ends first
    // That write made it; the rest of the batch is not written to a cancelled call.
    const auto a = f.s.on_write_done(true);
    EXPECT_FALSE(a.write);
    EXPECT_EQ(a.finish, fs::cancelled);
    f.s.on_done();
    const auto info = f.s.info();
    EXPECT_EQ(info.sent, 2u);
    EXPECT_EQ(info.queued, 0u);
    EXPECT_EQ(info.dropped[static_cast<std::size_t>(stream_drop::closed)], 3u);
}

TEST(StreamState, AnOfferingThreadAndAWriterLoseNothingAndKeepTheBound) {
    // The writer runs its batches without the lock: every event offered is sent or counted,
    // and what waits never passes the capacity.
    stream_state s{1, "", {}, 64, 0, 1};
    s.on_metadata_sent(true);
    constexpr int offered = 200000;
    std::atomic<bool> over_bound{false};
    std::mutex slot_mu;
    std::condition_variable slot_cv;
    std::deque<stream_state::action> slot;  // writes started, for the writer to complete
    std::thread writer([&] {
        for (;;) {
            std::unique_lock lock(slot_mu);
            slot_cv.wait(lock, [&] { return !slot.empty(); });
            auto a = std::move(slot.front());
            slot.pop_front();
            lock.unlock();
            if (!a.write) return;  // the end
            for (;;) {
                if (s.info().queued > 64) over_bound = true;
                a = s.on_write_done(true);
                if (!a.write) break;
            }
        }
    });
    const auto start = [&](stream_state::action a) {
        if (!a.write) return;
        std::lock_guard lock(slot_mu);
        slot.push_back(std::move(a));
        slot_cv.notify_one();
    };
    for (int i = 0; i < offered; ++i) {
        message msg;
        start(s.offer(std::string_view::npos, "python.call.start", stream_state::clock::now(), msg,
                      [] { return std::make_shared<const std::string>("x"); }));
    }
    // Wait until the writer is idle, then end it.
    while (s.info().queued != 0) std::this_thread::yield();
    {
        std::lock_guard lock(slot_mu);
        slot.emplace_back();
        slot_cv.notify_one();
    }
    writer.join();
    const auto info = s.info();
    EXPECT_FALSE(over_bound);
    EXPECT_EQ(info.sent + info.dropped[static_cast<std::size_t>(stream_drop::queue_full)],
              static_cast<std::uint64_t>(offered));
    EXPECT_GT(info.sent, 0u);
}

TEST(StreamState, AnIdleStreamStartsOnAFullBatchOrTheOutputsFlush) {
    stream_state s{1, "", {}, 1024, 0};  // the default threshold, 32
    s.on_metadata_sent(true);
    const auto offer = [&] {
        message msg;
        return s.offer(std::string_view::npos, "python.call.start", stream_state::clock::now(), msg,
                       [] { return std::make_shared<const std::string>("x"); });
    };
    // Each event of a burst does not start its own write: they wait for the turn's flush.
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(offer().write);
    auto a = s.kick();
    ASSERT_TRUE(a.write);
    EXPECT_TRUE(a.more);           // the three go as one batch
    EXPECT_FALSE(s.kick().write);  // writing: the batch's completions go on
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(s.on_write_done(true).write);
    EXPECT_FALSE(s.on_write_done(true).write);  // idle again
    EXPECT_FALSE(s.kick().write);               // nothing waits
    // 32 waiting start the writer without waiting for the flush.
    for (std::size_t i = 1; i < stream_state::default_start_at; ++i) EXPECT_FALSE(offer().write);
    a = offer();
    ASSERT_TRUE(a.write);
    EXPECT_TRUE(a.more);
    EXPECT_EQ(s.info().queued, stream_state::default_start_at - 1);
}

TEST(StreamState, FinishingSendsWhatIsQueuedThenFinishesOkOnce) {
    fixture f;
    f.s.on_metadata_sent(true);
    f.offer();
    f.offer();
    EXPECT_EQ(f.s.finish().finish, fs::none);  // a write is in flight
    EXPECT_FALSE(f.offer().write);             // no new event once finishing
    ASSERT_TRUE(f.s.on_write_done(true).write);
    const auto a = f.s.on_write_done(true);
    EXPECT_EQ(a.finish, fs::ok);
    EXPECT_EQ(f.s.on_cancel().finish, fs::none);  // finished already
    EXPECT_EQ(f.s.info().sent, 2u);
}

TEST(StreamState, FinishWithNothingInFlightFinishesAtOnce) {
    fixture f;
    f.s.on_metadata_sent(true);
    EXPECT_EQ(f.s.finish().finish, fs::ok);
}

TEST(StreamState, CancelCountsTheQueueAsClosedAndFinishesAfterTheWrite) {
    fixture f;
    f.s.on_metadata_sent(true);
    f.offer();
    f.offer();
    f.offer();
    EXPECT_EQ(f.s.on_cancel().finish, fs::none);  // the write in flight ends first
    const auto a = f.s.on_write_done(false);
    EXPECT_FALSE(a.write);
    EXPECT_EQ(a.finish, fs::cancelled);
    f.s.on_done();
    const auto info = f.s.info();
    EXPECT_FALSE(info.open);
    EXPECT_EQ(info.sent, 0u);
    EXPECT_EQ(info.dropped[static_cast<std::size_t>(stream_drop::closed)], 3u);
    EXPECT_FALSE(f.offer().write);
}

TEST(StreamState, ToggleOffStopsNewEventsButQueuedOnesStillGo) {
    fixture f;
    f.s.on_metadata_sent(true);
    f.offer();
    f.offer();  // queued
    EXPECT_FALSE(f.s.apply(toggle(false)));
    f.offer();
    ASSERT_TRUE(f.s.on_write_done(true).write);  // the queued one
    EXPECT_FALSE(f.s.on_write_done(true).write);
    auto info = f.s.info();
    EXPECT_EQ(info.sent, 2u);
    EXPECT_EQ(info.disabled, 1u);
    EXPECT_FALSE(f.s.apply(toggle(true)));
    EXPECT_TRUE(f.offer().write);
    // proto3: an empty toggle means enabled=false.
    pb::TelemetryControl empty_toggle;
    empty_toggle.mutable_toggle();
    EXPECT_FALSE(f.s.apply(empty_toggle));
    f.offer();
    EXPECT_EQ(f.s.info().disabled, 2u);
    EXPECT_EQ(f.s.info().controls_applied, 3u);
}

TEST(StreamState, SamplingHonoursItsPatterns) {
    fixture f;
    f.s.on_metadata_sent(true);
    pb::TelemetryControl c;
    c.mutable_sampling()->set_sampling_rate(0.0);
    c.mutable_sampling()->add_event_patterns("python.call.*");
    EXPECT_FALSE(f.s.apply(c));
    f.offer("python.call.start");                        // sampled out
    EXPECT_TRUE(f.offer("tool.execution.start").write);  // not matched: not sampled
    EXPECT_EQ(f.s.info().sampled, 1u);
}

TEST(StreamState, FilterDenyWinsAndEmptyAllowAllowsAll) {
    fixture f;
    f.s.on_metadata_sent(true);
    pb::TelemetryControl c;
    c.mutable_filter()->add_allow("python.*");
    c.mutable_filter()->add_deny("python.call.stop");
    EXPECT_FALSE(f.s.apply(c));
    f.offer("python.call.stop");      // denied
    f.offer("tool.execution.start");  // not allowed
    EXPECT_TRUE(f.offer("python.call.start").write);
    EXPECT_EQ(f.s.info().filtered, 2u);
}

TEST(StreamState, BadControlsChangeNothingAndAreCounted) {
    fixture f;
    f.s.on_metadata_sent(true);
    pb::TelemetryControl nan;
    nan.mutable_sampling()->set_sampling_rate(std::nan(""));
    EXPECT_TRUE(f.s.apply(nan));
    pb::TelemetryControl bad_glob;
    bad_glob.mutable_filter()->add_deny("[python");
    EXPECT_TRUE(f.s.apply(bad_glob));
    EXPECT_TRUE(f.s.apply(pb::TelemetryControl{}));  // none of the three
    EXPECT_TRUE(f.offer().write);                    // still open
    EXPECT_EQ(f.s.info().controls_rejected, 3u);
    EXPECT_EQ(f.s.info().controls_applied, 0u);
}

TEST(StreamState, SelectionByWorkerAndPool) {
    stream_state any(1, "", {}, 4, 0);
    stream_state worker(2, "", {"p-1", ""}, 4, 0);
    stream_state pool(3, "", {"", "p"}, 4, 0);
    EXPECT_TRUE(any.selects("p-0", "p"));
    EXPECT_TRUE(worker.selects("p-1", "p"));
    EXPECT_FALSE(worker.selects("p-0", "p"));
    EXPECT_TRUE(pool.selects("q-0", "p"));
    EXPECT_FALSE(pool.selects("p-0", "q"));
    EXPECT_FALSE(worker.selects("", ""));  // an event without a worker id
}

}  // namespace
}  // namespace telecap::bridge
