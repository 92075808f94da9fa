// A pool's own output (agent/pool_filter.hpp): its pool's events only, and the rest of the
// handler's answers passed on.

#include "agent/pool_filter.hpp"

#include <gtest/gtest.h>

#include "support/unit_helpers.hpp"

namespace telecap::agent {
namespace {

event in_pool(const std::string& pool) {
    event ev;
    ev.name = {"snakepit", "python", "call", "start"};
    ev.metadata.emplace_back("pool_name", pool);
    return ev;
}

TEST(PoolFilter, PassesItsPoolsEventsOnly) {
    auto inner = std::make_shared<test::behind_output>();
    pool_filter f("a", inner);
    f.deliver(in_pool("a"));
    f.deliver(in_pool("b"));
    f.deliver(event{});  // no pool at all
    EXPECT_EQ(inner->events, 1u);
    f.flush();
    EXPECT_EQ(inner->flushes, 1);
}

TEST(PoolFilter, AnOutputThatIsBehindSaysSoThroughTheFilter) {
    // Without it, a pool's output never paused the run loop in block mode.
    auto inner = std::make_shared<test::behind_output>();
    pool_filter f("a", inner);
    EXPECT_FALSE(f.congested());
    inner->behind = true;
    EXPECT_TRUE(f.congested());
}

}  // namespace
}  // namespace telecap::agent
