// control/: the controls' checks and scopes, the gates in Snakepit's order on wire names
// (glob tables with Snakepit's examples), sampling statistics with a seeded draw, and the
// token bucket on an injected clock.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "control/controls.hpp"
#include "control/gates.hpp"
#include "control/token_bucket.hpp"

namespace telecap::control {
namespace {

using clock = token_bucket::clock;
using std::chrono::milliseconds;
constexpr auto npos = std::string_view::npos;

verdict run(gate& g, std::string_view wire, clock::time_point now = clock::time_point{}) {
    return g.decide(npos, wire, now);
}

gate make(effective_controls c, std::uint64_t seed = 42) {
    gate g(seed);
    g.configure(c, 0);
    return g;
}

TEST(TokenBucket, StartsFullAndRefillsAtTheRate) {
    const auto t0 = clock::time_point{} + std::chrono::seconds(100);
    token_bucket b(10, 3, t0);  // 10/s, burst 3
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_FALSE(b.take(t0));                     // burst used up
    EXPECT_FALSE(b.take(t0 + milliseconds(50)));  // half a token
    EXPECT_TRUE(b.take(t0 + milliseconds(100)));  // one token after 100 ms
    EXPECT_FALSE(b.take(t0 + milliseconds(100)));
    // Idle for long: never more than the burst.
    const auto later = t0 + std::chrono::seconds(60);
    int n = 0;
    while (b.take(later)) ++n;
    EXPECT_EQ(n, 3);
    // Time going backwards refills nothing.
    EXPECT_FALSE(b.take(t0));
}

TEST(TokenBucket, DefaultIsUnlimited) {
    token_bucket b;
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.take(clock::time_point{}));
}

TEST(Controls, SamplingRateIsClampedAndNanRefused) {
    sampling s{2.5, {}};
    EXPECT_FALSE(check(s));
    EXPECT_EQ(s.rate, 1.0);
    s.rate = -1;
    EXPECT_FALSE(check(s));
    EXPECT_EQ(s.rate, 0.0);
    s.rate = std::numeric_limits<double>::quiet_NaN();
    ASSERT_TRUE(check(s));
    EXPECT_NE(check(s)->find("NaN"), std::string::npos);
}

TEST(Controls, BadGlobsAreRefused) {
    sampling s{0.5, {"python.[call"}};
    ASSERT_TRUE(check(s));
    EXPECT_NE(check(s)->find("unclosed '['"), std::string::npos) << *check(s);
    EXPECT_TRUE(check(filter{{"ok.*"}, {""}}));  // an empty pattern
    EXPECT_TRUE(check(filter{{"[x"}, {}}));
    EXPECT_FALSE(check(filter{{"a.*", "b.?"}, {"[!x]y"}}));
}

TEST(Controls, RateLimitChecksAndBurstDefault) {
    rate_limit r{100, 0};
    EXPECT_FALSE(check(r));
    EXPECT_EQ(r.burst, 100);
    r = {0.5, 0};
    EXPECT_FALSE(check(r));
    EXPECT_EQ(r.burst, 1);
    r = {10, 0.5};
    EXPECT_TRUE(check(r));
    r = {-1, 0};
    EXPECT_TRUE(check(r));
    r = {std::numeric_limits<double>::quiet_NaN(), 0};
    EXPECT_TRUE(check(r));
    r = {std::numeric_limits<double>::infinity(), 0};
    EXPECT_TRUE(check(r));
    rate_limit p;
    EXPECT_FALSE(parse_rate_limit("100/20", p));
    EXPECT_EQ(p, (rate_limit{100, 20}));
    EXPECT_FALSE(parse_rate_limit("5", p));
    EXPECT_EQ(p, (rate_limit{5, 5}));
    EXPECT_TRUE(parse_rate_limit("x", p));
    EXPECT_TRUE(parse_rate_limit("10/", p));
    EXPECT_TRUE(parse_rate_limit("10/0.5", p));
    EXPECT_TRUE(parse_rate_limit("10/0", p));  // 0 would silently mean the default
    EXPECT_EQ(p, (rate_limit{5, 5}));          // a refused value changes nothing
}

TEST(Controls, WorkerOverridesPoolOverridesGlobalPerKind) {
    control_table t;
    t.global.enabled = false;
    t.global.sample = sampling{0.5, {}};
    t.pools["p"].sample = sampling{0.25, {}};
    t.pools["p"].filt = filter{{"a.*"}, {}};
    t.workers["p-1"].enabled = true;
    auto e = t.resolve("p", "p-1");
    EXPECT_TRUE(e.enabled);
    EXPECT_EQ(e.sample.rate, 0.25);
    EXPECT_EQ(e.filt.allow, std::vector<std::string>{"a.*"});
    e = t.resolve("p", "p-0");
    EXPECT_FALSE(e.enabled);
    e = t.resolve("q", "q-0");
    EXPECT_EQ(e.sample.rate, 0.5);
    EXPECT_TRUE(e.filt.allow.empty());
    EXPECT_TRUE(control_table{}.resolve("x", "y").open());
}

TEST(Controls, MergeReplacesOnlyTheKindsGiven) {
    controls base;
    base.enabled = false;
    base.sample = sampling{0.1, {"x"}};
    controls up;
    up.filt = filter{{}, {"y"}};
    merge(base, up);
    EXPECT_EQ(base.enabled, false);
    EXPECT_EQ(base.sample->rate, 0.1);
    EXPECT_EQ(base.filt->deny, std::vector<std::string>{"y"});
}

TEST(Gates, OpenByDefault) {
    gate g;
    g.configure({}, 0);
    EXPECT_TRUE(g.open());
    EXPECT_EQ(run(g, "anything"), verdict::pass);
}

TEST(Gates, ToggleOffDropsEverythingAsDisabled) {
    effective_controls c;
    c.enabled = false;
    c.filt.deny = {"*"};
    auto g = make(c);
    EXPECT_EQ(run(g, "tool.execution.start"), verdict::disabled);  // enabled comes first
}

// Snakepit's filter: deny first and wins; an empty allow allows everything; else one allow
// pattern must match. Globs on the whole wire name; `*` crosses dots.
TEST(Gates, FilterTable) {
    struct row {
        std::vector<std::string> allow, deny;
        const char* name;
        bool pass;
    };
    const row rows[] = {
        {{}, {}, "python.call.start", true},
        {{"python.call.*"}, {}, "python.call.start", true},
        {{"python.call.*"}, {}, "tool.execution.start", false},
        {{"python.*"}, {}, "python.call.exception", true},  // * crosses dots
        {{"*.start"}, {}, "tool.execution.start", true},
        {{"python.call.start"}, {}, "python.call.stop", false},  // exact name
        {{}, {"python.memory.*"}, "python.memory.sampled", false},
        {{}, {"python.memory.*"}, "python.cpu.sampled", true},
        {{"python.*"}, {"python.gc.*"}, "python.gc.completed", false},  // deny wins
        {{"python.*"}, {"*"}, "python.call.start", false},
        {{"python.c??.*"}, {}, "python.cpu.sampled", true},
        {{"python.c??.*"}, {}, "python.call.start", false},  // ? is one character
        {{"tool.[a-f]*"}, {}, "tool.execution.start", true},
        {{"tool.[!e]*"}, {}, "tool.execution.start", false},
        {{"Python.*"}, {}, "python.call.start", false},           // case-sensitive
        {{"snakepit.python.*"}, {}, "python.call.start", false},  // the wire name, not the host's
        {{"*exception"}, {}, "tool.execution.exception", true},
    };
    for (const auto& r : rows) {
        effective_controls c;
        c.filt = {r.allow, r.deny};
        auto g = make(c);
        EXPECT_EQ(run(g, r.name) == verdict::pass, r.pass)
            << r.name << " allow=" << (r.allow.empty() ? "" : r.allow[0])
            << " deny=" << (r.deny.empty() ? "" : r.deny[0]);
        EXPECT_EQ(run(g, r.name) == verdict::pass, r.pass) << "cached: " << r.name;
        if (!r.pass) {
            EXPECT_EQ(run(g, r.name), verdict::filtered);
        }
    }
}

TEST(Gates, KnownIndexesCacheTheGlobResultPerName) {
    effective_controls c;
    c.filt.allow = {"python.*"};
    gate g(1);
    g.configure(c, 2);
    EXPECT_EQ(g.decide(0, "python.call.start", {}), verdict::pass);
    EXPECT_EQ(g.decide(1, "tool.execution.start", {}), verdict::filtered);
    // Index 0 was decided for its name once; the cached result stands.
    EXPECT_EQ(g.decide(0, "", {}), verdict::pass);
    EXPECT_EQ(g.decide(1, "", {}), verdict::filtered);
    // New controls forget the cache.
    c.filt.allow = {"tool.*"};
    g.configure(c, 2);
    EXPECT_EQ(g.decide(0, "python.call.start", {}), verdict::filtered);
}

TEST(Gates, ManyUnknownNamesStillDecideCorrectlyPastTheCacheCap) {
    effective_controls c;
    c.filt.deny = {"*.odd"};
    auto g = make(c);
    for (std::size_t i = 0; i < gate::max_other_names + 100; ++i) {
        const std::string name = "n" + std::to_string(i) + (i % 2 ? ".odd" : ".even");
        ASSERT_EQ(run(g, name), i % 2 ? verdict::filtered : verdict::pass) << name;
    }
}

double sampled_fraction(gate& g, std::string_view name, int n) {
    int kept = 0;
    for (int i = 0; i < n; ++i) kept += run(g, name) == verdict::pass;
    return static_cast<double>(kept) / n;
}

// Rate 0.1 over 100,000 independent draws: within 4 sigma of 0.1.
TEST(Gates, SamplingKeepsTheRateWithinFourSigma) {
    constexpr int n = 100000;
    for (std::uint64_t seed : {1u, 2u, 12345u}) {
        effective_controls c;
        c.sample.rate = 0.1;
        auto g = make(c, seed);
        const double sigma = std::sqrt(0.1 * 0.9 / n);
        EXPECT_NEAR(sampled_fraction(g, "python.call.start", n), 0.1, 4 * sigma) << seed;
    }
}

TEST(Gates, SamplingRateOneKeepsAllAndZeroDropsAll) {
    effective_controls c;
    c.sample.rate = 0;
    auto g = make(c);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(run(g, "x"), verdict::sampled);
    c.sample.rate = 1;
    c.filt.deny = {"never"};  // not open, so the draw path runs
    g = make(c);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(run(g, "x"), verdict::pass);
}

// Snakepit's gap: its worker ignored the patterns. Here only matching events are sampled.
TEST(Gates, SamplingPatternsRestrictWhatIsSampled) {
    constexpr int n = 100000;
    effective_controls c;
    c.sample = {0.25, {"python.call.*"}};
    auto g = make(c, 7);
    const double sigma = std::sqrt(0.25 * 0.75 / n);
    EXPECT_NEAR(sampled_fraction(g, "python.call.start", n), 0.25, 4 * sigma);
    EXPECT_EQ(sampled_fraction(g, "tool.execution.start", 1000), 1.0);  // not sampled: passes
}

TEST(Gates, SamplingComesBeforeTheFilter) {
    effective_controls c;
    c.sample.rate = 0;
    c.filt.deny = {"*"};
    auto g = make(c);
    EXPECT_EQ(run(g, "x"), verdict::sampled);
}

TEST(Gates, RateLimitIsPerEventNameAndComesLast) {
    effective_controls c;
    c.limit = {10, 2};
    c.filt.deny = {"denied"};
    auto g = make(c);
    const auto t0 = clock::time_point{} + std::chrono::seconds(5);
    EXPECT_EQ(run(g, "a", t0), verdict::pass);
    EXPECT_EQ(run(g, "a", t0), verdict::pass);
    EXPECT_EQ(run(g, "a", t0), verdict::rate_limited);
    EXPECT_EQ(run(g, "b", t0), verdict::pass);  // its own bucket: a flood of "a" costs b nothing
    EXPECT_EQ(run(g, "denied", t0), verdict::filtered);  // filtered before it takes a token
    EXPECT_EQ(run(g, "a", t0 + milliseconds(100)), verdict::pass);
    EXPECT_EQ(run(g, "a", t0 + milliseconds(100)), verdict::rate_limited);
}

TEST(Gates, ADisabledGateNeedsNoName) {
    effective_controls c;
    c.enabled = false;
    auto g = make(c);
    EXPECT_FALSE(g.needs_name());
    c = {};
    c.sample.rate = 0.5;
    g = make(c);
    EXPECT_FALSE(g.needs_name());
    c.sample.patterns = {"x"};
    g = make(c);
    EXPECT_TRUE(g.needs_name());
}

}  // namespace
}  // namespace telecap::control
