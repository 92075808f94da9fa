// bounded_queue: bounds in items and bytes, taken items counted until release, batches,
// close, and a blocking push that keeps the consumer fed.
#include "core/bounded_queue.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace telecap {
namespace {

using namespace std::chrono_literals;

bounded_queue<std::string> make_queue(std::size_t items, std::size_t bytes) {
    return bounded_queue<std::string>(items, bytes, [](const std::string& s) { return s.size(); });
}

TEST(BoundedQueue, BoundInItems) {
    auto q = make_queue(3, 1000);
    std::vector<std::string> batch{"a", "b", "c", "d", "e"};
    EXPECT_EQ(q.push(batch, 0, 0ms), 3u);  // index of the first item not moved
    EXPECT_EQ(q.size(), 3u);
    EXPECT_EQ(q.push(batch, 3, 0ms), 3u);  // still full
}

TEST(BoundedQueue, BoundInBytes) {
    auto q = make_queue(100, 10);
    std::vector<std::string> batch{"12345", "12345", "x"};
    EXPECT_EQ(q.push(batch, 0, 0ms), 2u);  // 10 bytes queued: no room for more
}

TEST(BoundedQueue, AnEmptyQueueTakesOneItemHoweverLarge) {
    auto q = make_queue(4, 10);
    std::vector<std::string> batch{std::string(100, 'x'), "y"};
    EXPECT_EQ(q.push(batch, 0, 0ms), 1u);
}

TEST(BoundedQueue, TakenItemsCountUntilReleased) {
    auto q = make_queue(2, 1000);
    std::vector<std::string> batch{"a", "b", "c"};
    ASSERT_EQ(q.push(batch, 0, 0ms), 2u);
    std::deque<std::string> taken;
    ASSERT_TRUE(q.pop_all(taken));
    EXPECT_EQ(taken, (std::deque<std::string>{"a", "b"}));
    EXPECT_EQ(q.queued(), 0u);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.push(batch, 2, 0ms), 2u);  // the consumer still holds them: no room
    q.release();
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.push(batch, 2, 0ms), 3u);
}

TEST(BoundedQueue, CloseStopsPushesAndDrainsTheRest) {
    auto q = make_queue(10, 1000);
    std::vector<std::string> batch{"a", "b"};
    ASSERT_EQ(q.push(batch, 0, 0ms), 1u + 1u);
    q.close();
    std::vector<std::string> more{"c"};
    EXPECT_EQ(q.push(more, 0, 1s), 0u);  // closed: nothing moved, no wait
    std::deque<std::string> taken;
    ASSERT_TRUE(q.pop_all(taken));
    EXPECT_EQ(taken.size(), 2u);
    q.release();
    taken.clear();
    EXPECT_FALSE(q.pop_all(taken));  // closed and drained
}

TEST(BoundedQueue, BlockingPushOfABatchLargerThanTheQueueFeedsTheConsumer) {
    // The producer must wake the consumer for what it queued before it waits for room;
    // otherwise each queue-full of items waits out the whole timeout (found with telecap run
    // --overflow block --queue 64: 1,300 events a second).
    auto q = make_queue(4, 1000);
    std::vector<std::string> received;
    std::thread consumer([&] {
        std::deque<std::string> taken;
        while (q.pop_all(taken)) {
            for (auto& s : taken) received.push_back(std::move(s));
            taken.clear();
            q.release();
        }
    });
    std::vector<std::string> batch;
    for (int i = 0; i < 100; ++i) batch.push_back(std::to_string(i));
    // One call, with a timeout far longer than the test: it returns once all are moved.
    const std::size_t next = q.push(batch, 0, std::chrono::seconds(20));
    q.close();
    consumer.join();
    EXPECT_EQ(next, batch.size());
    ASSERT_EQ(received.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(received[static_cast<std::size_t>(i)], std::to_string(i));
}

// --- linger: the consumer gathers a batch ----------------------------------------------------

std::future<std::deque<std::string>> pop_async(bounded_queue<std::string>& q) {
    return std::async(std::launch::async, [&q] {
        std::deque<std::string> out;
        q.pop_all(out);
        return out;
    });
}

TEST(BoundedQueueLinger, TheConsumerWaitsForABatchOnceTheFirstItemIsThere) {
    auto q = make_queue(100, 1000);
    q.set_linger(std::chrono::seconds(30), 2);
    std::vector<std::string> one{"a"}, two{"b"};
    q.push(one, 0, 0ms);
    auto got = pop_async(q);
    // One item is not yet a batch: without the linger pop_all would return it at once.
    EXPECT_EQ(got.wait_for(100ms), std::future_status::timeout);
    q.push(two, 0, 0ms);  // the batch is complete: the consumer is woken
    ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(got.get(), (std::deque<std::string>{"a", "b"}));
}

TEST(BoundedQueueLinger, AFullQueueOrCloseEndsTheLingerAtOnce) {
    auto full = make_queue(2, 1000);
    full.set_linger(std::chrono::seconds(30), 100);
    std::vector<std::string> batch{"a", "b"};
    full.push(batch, 0, 0ms);  // no room left: a producer would wait for the consumer
    auto got = pop_async(full);
    ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(got.get().size(), 2u);

    auto closing = make_queue(100, 1000);
    closing.set_linger(std::chrono::seconds(30), 100);
    std::vector<std::string> one{"a"};
    closing.push(one, 0, 0ms);
    auto rest = pop_async(closing);
    closing.close();
    ASSERT_EQ(rest.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(rest.get().size(), 1u);
}

TEST(BoundedQueueLinger, TheLingerEndsAfterItsTimeWithWhatCame) {
    auto q = make_queue(100, 1000);
    q.set_linger(std::chrono::milliseconds(20), 100);
    std::vector<std::string> one{"a"};
    q.push(one, 0, 0ms);
    auto got = pop_async(q);
    ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(got.get().size(), 1u);
}

}  // namespace
}  // namespace telecap
