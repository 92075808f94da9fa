// control/held_controls: what a `-o grpc?control=workers` stream set goes back when it ends;
// another live stream's word, or the operator's, stays.
#include "control/held_controls.hpp"

#include <gtest/gtest.h>

namespace telecap::control {
namespace {

controls off() {
    controls c;
    c.enabled = false;
    return c;
}

controls on() {
    controls c;
    c.enabled = true;
    return c;
}

controls sample(double rate) {
    controls c;
    c.sample = sampling{rate, {}};
    return c;
}

// As supervisor::hold_controls does: note, then merge.
void hold(held_controls& h, control_table& t, std::uint64_t holder, const scope& where,
          const controls& update) {
    controls& target = scope_controls(t, where);
    h.note(holder, where, target, update);
    merge(target, update);
}

// As supervisor::set_controls (`telecap ctl`) does.
void operator_sets(held_controls& h, control_table& t, const scope& where, const controls& update) {
    h.overridden(where, update);
    merge(scope_controls(t, where), update);
}

TEST(HeldControls, WithdrawRestoresWhatTheScopeHadBefore) {
    control_table t;
    t.global = sample(0.5);  // the config's
    held_controls h;
    const scope global;
    hold(h, t, 1, global, off());
    hold(h, t, 1, global, sample(0.1));
    hold(h, t, 1, global, sample(0.2));  // the value from before the holder is kept
    EXPECT_EQ(t.resolve("p", "w").enabled, false);
    EXPECT_TRUE(h.withdraw(1, t));
    EXPECT_FALSE(t.global.enabled.has_value());
    EXPECT_EQ(t.global.sample, sampling({0.5, {}}));
    EXPECT_EQ(h.scopes(), 0u);
    EXPECT_FALSE(h.withdraw(1, t));  // once
}

TEST(HeldControls, AWorkerOverrideMadeByTheHolderGoesAway) {
    control_table t;
    held_controls h;
    const scope w{scope_kind::worker, "w1"};
    hold(h, t, 7, w, off());
    EXPECT_FALSE(t.resolve("p", "w1").enabled);
    EXPECT_TRUE(t.resolve("p", "w2").enabled);
    EXPECT_TRUE(h.withdraw(7, t));
    EXPECT_TRUE(t.workers.empty());
    EXPECT_TRUE(t.resolve("p", "w1").enabled);
}

TEST(HeldControls, TheOperatorsChangeSinceIsLeftAlone) {
    control_table t;
    held_controls h;
    const scope pool{scope_kind::pool, "p"};
    hold(h, t, 1, pool, off());
    hold(h, t, 1, pool, sample(0.1));
    operator_sets(h, t, pool, sample(0.3));  // `telecap ctl --pool p sample 0.3`
    EXPECT_TRUE(h.withdraw(1, t));
    EXPECT_FALSE(t.pools["p"].enabled.has_value());       // the holder's: withdrawn
    EXPECT_EQ(t.pools["p"].sample, sampling({0.3, {}}));  // the operator's: kept
}

TEST(HeldControls, AResetOrAReloadLeavesNothingHeld) {
    control_table t;
    held_controls h;
    const scope global;
    hold(h, t, 1, global, off());
    h.reset(global);
    t.global = {};  // what reset_controls puts back
    EXPECT_FALSE(h.withdraw(1, t));
    hold(h, t, 2, global, off());
    h.clear();
    t.global = on();  // the reloaded config's
    EXPECT_FALSE(h.withdraw(2, t));
    EXPECT_EQ(t.global, on());
}

TEST(HeldControls, TwoHoldersOfTheSameKindTheLatestLiveWordWins) {
    control_table t;
    held_controls h;
    const scope global;
    hold(h, t, 1, global, off());
    hold(h, t, 2, global, off());
    EXPECT_FALSE(h.withdraw(1, t));  // 2 still holds it off
    EXPECT_EQ(t.global.enabled, false);
    EXPECT_TRUE(h.withdraw(2, t));  // back to before both
    EXPECT_EQ(t.global, controls{});

    hold(h, t, 1, global, off());
    hold(h, t, 2, global, on());
    EXPECT_TRUE(h.withdraw(2, t));  // 1's word again
    EXPECT_EQ(t.global.enabled, false);
    EXPECT_TRUE(h.withdraw(1, t));
    EXPECT_EQ(t.global, controls{});
}

TEST(HeldControls, TwoHoldersOfDifferentKindsEachWithdrawTheirOwn) {
    control_table t;
    held_controls h;
    const scope global;
    hold(h, t, 1, global, off());
    hold(h, t, 2, global, sample(0.25));
    EXPECT_TRUE(h.withdraw(2, t));
    EXPECT_EQ(t.global.enabled, false);
    EXPECT_FALSE(t.global.sample.has_value());
    EXPECT_TRUE(h.withdraw(1, t));
    EXPECT_EQ(t.global, controls{});
}

TEST(HeldControls, AHolderThatChangedNothingChangesNothing) {
    control_table t;
    t.global = off();
    held_controls h;
    EXPECT_FALSE(h.withdraw(3, t));
    EXPECT_EQ(t.global, off());
}

}  // namespace
}  // namespace telecap::control
