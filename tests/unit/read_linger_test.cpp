// read_linger: when the loop waits for small, frequent reads to pile up, and when it does not.
#include "intake/read_linger.hpp"

#include <gtest/gtest.h>

namespace telecap {
namespace {

using namespace std::chrono_literals;
using clock = read_linger::clock;

TEST(ReadLingerTest, LingersOnlyWhileReadsAreSmallAndFrequent) {
    read_linger l(100us);
    const auto t = clock::time_point{} + 1h;
    EXPECT_EQ(l.after_turn(200, t), 0us);            // the first read: nothing to say it is busy
    EXPECT_EQ(l.after_turn(200, t + 300us), 100us);  // again soon, small: wait
    EXPECT_EQ(l.after_turn(40000, t + 600us), 0us);  // a big read: behind, read on
    EXPECT_EQ(l.after_turn(0, t + 700us), 0us);      // nothing read (a timer, a signal)
    EXPECT_EQ(l.after_turn(200, t + 800us), 100us);  // still busy
    EXPECT_EQ(l.after_turn(200, t + 50ms), 0us);     // a line now and then: at once
    EXPECT_EQ(l.after_turn(200, t + 100ms), 0us);
}

TEST(ReadLingerTest, DoublesWhileLingeredTurnsStillReadLittleAndResetsOnABigRead) {
    read_linger l(100us, 800us);
    auto t = clock::time_point{} + 1h;
    EXPECT_EQ(l.after_turn(200, t), 0us);
    const std::chrono::microseconds expect[] = {100us, 200us, 400us, 800us, 800us};
    for (auto e : expect) {
        t += 500us;
        EXPECT_EQ(l.after_turn(300, t), e);
    }
    EXPECT_EQ(l.after_turn(64 * 1024, t + 10us), 0us);  // a full read: no wait
    EXPECT_EQ(l.after_turn(300, t + 20us), 100us);      // and the next wait starts over
    // A turn that read a fair amount after waiting keeps the wait as it is.
    EXPECT_EQ(l.after_turn(16 * 1024, t + 200us), 100us);
}

TEST(ReadLingerTest, ZeroNeverLingers) {
    read_linger l(0us);
    EXPECT_FALSE(l.enabled());
    const auto t = clock::time_point{} + 1h;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(l.after_turn(10, t + i * 10us), 0us);
}

}  // namespace
}  // namespace telecap
