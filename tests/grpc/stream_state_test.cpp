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
#include <vector>

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

// Back-pressure (`--overflow block`): past a full queue, up to another queue of events is held
// and written after it.
struct held_fixture : fixture {
    stream_state::action offer_held(
        stream_state::clock::time_point now = stream_state::clock::now()) {
        message msg;
        return s.offer(
            std::string_view::npos, "python.call.start", now, msg,
            [&] {
                ++made;
                return std::make_shared<const std::string>();
            },
            true);
    }
    std::uint64_t dropped(stream_drop d) const {
        return s.info().dropped[static_cast<std::size_t>(d)];
    }
    void fill() {
        s.on_metadata_sent(true);
        ASSERT_TRUE(offer().write);
        for (int i = 0; i < 4; ++i) offer();  // the queue of 4 behind the write in flight
    }
};

TEST(StreamState, PastAFullQueueAnotherQueueIsHeldAndWrittenAfterIt) {
    held_fixture f;
    f.fill();
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(f.offer_held().write);
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 0u);
    EXPECT_EQ(f.s.info().held, 4u);
    EXPECT_EQ(f.s.info().queued, 8u);
    f.offer_held();  // past the held ones too: dropped and counted
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 1u);
    // Every event queued or held is written: 1 in flight, then 4, then the 4 held.
    int writes = 0;
    for (auto a = f.s.on_write_done(true); a.write; a = f.s.on_write_done(true)) ++writes;
    EXPECT_EQ(writes, 8);
    EXPECT_EQ(f.s.info().sent, 9u);
    EXPECT_EQ(f.s.info().queued, 0u);
}

TEST(StreamState, HeldBehindABatchThatTookTheQueueTheyFollowIt) {
    held_fixture f;
    f.fill();
    ASSERT_TRUE(f.s.on_write_done(true).write);  // the writer takes the 4 as its batch
    f.offer_held();  // queued: the batch's 3 left and this one fill the queue
    f.offer_held();  // the batch still counts against the queue: held, not queued
    EXPECT_EQ(f.s.info().held, 1u);
    int writes = 0;
    for (auto a = f.s.on_write_done(true); a.write; a = f.s.on_write_done(true)) ++writes;
    EXPECT_EQ(writes, 5);  // the batch's other 3, the queued one, then the held one
    EXPECT_EQ(f.s.info().queued, 0u);
}

TEST(StreamState, EventsKeepTheirOrderAcrossHolding) {
    // The writer frees places in the queue one write at a time, before the held events move
    // in: an event offered then goes behind the held ones, not ahead of them.
    stream_state s{1, "", {}, 4, 0, 1};
    s.on_metadata_sent(true);
    const auto now = stream_state::clock::now();
    int next = 0;
    std::vector<std::string> written;
    const auto offer = [&] {
        message msg;
        const auto a = s.offer(
            std::string_view::npos, "a", now, msg,
            [&] { return std::make_shared<const std::string>(std::to_string(next)); }, true);
        ++next;
        if (a.write) written.push_back(*a.write);
    };
    const auto done = [&] {
        const auto a = s.on_write_done(true);
        if (a.write) written.push_back(*a.write);
        return static_cast<bool>(a.write);
    };
    for (int i = 0; i < 5; ++i) offer();  // 0 in flight, 1-4 queued
    offer();                              // 5 held
    ASSERT_TRUE(done());                  // 1 written; 2-4 the batch, 5 now queued
    offer();                              // 6: three places waiting behind 5
    offer();                              // 7: full, held
    ASSERT_TRUE(done());                  // 2 written: a place frees in the queue
    offer();                              // 8 must not pass 7
    while (done()) {
    }
    std::vector<std::string> expected;
    for (int i = 0; i < next; ++i) expected.push_back(std::to_string(i));
    EXPECT_EQ(written, expected);
    EXPECT_EQ(s.info().dropped[static_cast<std::size_t>(stream_drop::queue_full)], 0u);
}

TEST(StreamState, AtMostTwoQueuesWaitInAll) {
    held_fixture f;
    f.fill();                                    // 1 in flight, 4 queued
    ASSERT_TRUE(f.s.on_write_done(true).write);  // the batch of 4 taken: 3 left
    for (int i = 0; i < 5; ++i) f.offer_held();  // 1 queued, then held up to 8 waiting
    EXPECT_EQ(f.s.info().queued, 8u);
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 0u);
    f.offer_held();
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 1u);
    EXPECT_EQ(f.s.info().queued, 8u);
}

TEST(StreamState, WithoutBackPressureAFullQueueHoldsNothing) {
    held_fixture f;
    f.fill();
    f.offer();
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 1u);
    EXPECT_EQ(f.s.info().held, 0u);
}

TEST(StreamState, AStreamWhoseWritesStalledHoldsNothingAndIsNotBehind) {
    held_fixture f;
    const auto begin = stream_state::clock::now();
    f.fill();
    EXPECT_TRUE(f.s.behind(begin));
    // No write completed for longer than the stall (500 ms): the client stopped reading.
    const auto later = begin + std::chrono::seconds(2);
    EXPECT_FALSE(f.s.behind(later));
    f.offer_held(later);
    EXPECT_EQ(f.s.info().held, 0u);
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 1u);
}

TEST(StreamState, AStreamThatHeldEventsTooLongHoldsNoMoreUntilItWroteThem) {
    held_fixture f;
    f.fill();
    ASSERT_TRUE(f.s.on_write_done(true).write);  // its writes progress: the batch of 4 taken
    const auto now = stream_state::clock::now();
    f.offer_held(now);  // 1 queued behind the batch's 3 left: full
    EXPECT_EQ(f.s.info().held, 0u);
    f.offer_held(now - std::chrono::seconds(2));  // held, as if 2 s ago
    EXPECT_EQ(f.s.info().held, 1u);
    EXPECT_TRUE(f.s.behind(now - std::chrono::seconds(2)));
    // Not stalled (a write completed just now), but it has held an event past the stall.
    EXPECT_FALSE(f.s.behind(now));
    f.offer_held(now);
    EXPECT_EQ(f.dropped(stream_drop::queue_full), 1u);
    EXPECT_EQ(f.s.info().held, 1u);
}

TEST(StreamState, BehindIsHalfTheQueueWaitingWhileTheClientReads) {
    held_fixture f;
    f.s.on_metadata_sent(true);
    const auto now = stream_state::clock::now();
    ASSERT_TRUE(f.offer().write);  // in flight: not waiting
    f.offer();
    EXPECT_FALSE(f.s.behind(now));  // 1 of 4
    f.offer();
    EXPECT_TRUE(f.s.behind(now));  // 2 of 4
    f.s.finish();
    EXPECT_FALSE(f.s.behind(now));  // finishing: nothing more to pause for
}

TEST(StreamState, HeldEventsCountAsClosedWhenTheCallEnds) {
    held_fixture f;
    f.fill();
    for (int i = 0; i < 3; ++i) f.offer_held();
    f.s.on_cancel();  // the 4 queued and the 3 held will never arrive
    EXPECT_EQ(f.dropped(stream_drop::closed), 7u);
    f.s.on_write_done(false);  // and the one in flight
    EXPECT_EQ(f.dropped(stream_drop::closed), 8u);
    EXPECT_EQ(f.s.info().queued, 0u);
}

TEST(StreamState, AFullQueueThatWaitsForTheFlushStartsWhenAnEventIsHeld) {
    stream_state s{1, "", {}, 2, 0};  // the default threshold, 32, above the queue
    s.on_metadata_sent(true);
    message msg;
    const auto make = [] { return std::make_shared<const std::string>("x"); };
    const auto now = stream_state::clock::now();
    EXPECT_FALSE(s.offer(std::string_view::npos, "a", now, msg, make).write);
    msg = {};
    EXPECT_FALSE(s.offer(std::string_view::npos, "a", now, msg, make).write);
    msg = {};
    const auto a = s.offer(std::string_view::npos, "a", now, msg, make, true);
    ASSERT_TRUE(a.write);
    EXPECT_TRUE(a.more);
    EXPECT_EQ(s.info().held, 1u);
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
