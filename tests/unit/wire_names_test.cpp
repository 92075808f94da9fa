// wire_names: from a normalized event back to its wire name (`-o grpc`, `ctl tap`).
#include "capture/wire_names.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace telecap {
namespace {

event make_event(std::vector<std::string> name) {
    event ev;
    ev.name = std::move(name);
    return ev;
}

TEST(WireNames, CatalogEventsMapBackToTheirWireName) {
    const auto cat = catalog::builtin();
    const wire_names names(cat);
    wire_names::entry e;
    ASSERT_TRUE(names.find(make_event({"snakepit", "python", "tool", "execution", "start"}), e));
    EXPECT_EQ(e.wire, "tool.execution.start");
    EXPECT_LT(e.index, cat.event_count());
    EXPECT_EQ(cat.wire_name(e.index), "tool.execution.start");
    ASSERT_TRUE(names.find(make_event({"snakepit", "python", "call", "stop"}), e));
    EXPECT_EQ(e.wire, "python.call.stop");
    // Every wire event of the catalog round-trips.
    for (std::size_t i = 0; i < cat.event_count(); ++i) {
        ASSERT_TRUE(names.find(make_event(cat.find_event(cat.wire_name(i))->parts), e));
        EXPECT_EQ(e.wire, cat.wire_name(i));
    }
}

TEST(WireNames, HostEventsHaveNoWireName) {
    const auto cat = catalog::builtin();
    const wire_names names(cat);
    wire_names::entry e;
    EXPECT_FALSE(names.find(make_event({"snakepit", "pool", "worker", "spawned"}), e));
    EXPECT_FALSE(names.find(make_event({"telemetry", "handler", "failure"}), e));
    // The built-in catalog rejects unknown names: none is kept under the prefix.
    EXPECT_FALSE(names.find(make_event({"snakepit", "python", "my", "thing"}), e));
}

TEST(WireNames, KeptUnknownNamesLoseTheirPrefix) {
    auto cat = catalog::builtin();
    cat.policies().unknown_event = unknown_event_policy::keep;
    const wire_names names(cat);
    wire_names::entry e;
    ASSERT_TRUE(names.find(make_event({"snakepit", "python", "my", "thing"}), e));
    EXPECT_EQ(e.wire, "my.thing");
    EXPECT_EQ(e.index, std::string_view::npos);
    EXPECT_FALSE(names.find(make_event({"snakepit", "python"}), e));  // the prefix alone
    EXPECT_FALSE(names.find(make_event({"snakepit", "pool", "worker", "spawned"}), e));
}

// A reload adds its catalog: its names win, and the older catalog's other names stay.
TEST(WireNames, AReloadedCatalogsNamesWin) {
    const auto make = [](const char* events) {
        return catalog::from_json(std::string(R"({"wire_events": )") + events +
                                      R"(, "measurement_keys": ["count"], "metadata_keys": []})",
                                  "test.json");
    };
    const catalog first =
        make(R"({"a.b": {"event": ["x", "a", "b"]}, "c": {"event": ["x", "c"]}})");
    const catalog second = make(R"({"a.renamed": {"event": ["x", "a", "b"]}})");
    wire_names names(first);
    names.add(second);
    wire_names::entry e;
    ASSERT_TRUE(names.find(make_event({"x", "a", "b"}), e));
    EXPECT_EQ(e.wire, "a.renamed");
    EXPECT_EQ(e.index, 0u);
    ASSERT_TRUE(names.find(make_event({"x", "c"}), e));
    EXPECT_EQ(e.wire, "c");
}

// of(): the wire name, else the dotted name (lifecycle and telecap's own events as they are),
// even under a catalog that keeps unknown names under a prefix as short as "snakepit".
TEST(WireNames, OfFallsBackToTheDottedName) {
    auto cat = catalog::builtin();
    cat.policies().unknown_event = unknown_event_policy::keep;
    cat.policies().unknown_event_prefix = {"snakepit"};
    const wire_names names(cat);
    EXPECT_EQ(names.of(make_event({"snakepit", "python", "call", "stop"})), "python.call.stop");
    EXPECT_EQ(names.of(make_event({"snakepit", "pool", "worker", "spawned"})),
              "snakepit.pool.worker.spawned");
    EXPECT_EQ(names.of(make_event({"telemetry", "handler", "failure"})),
              "telemetry.handler.failure");
    EXPECT_EQ(names.of(make_event({"snakepit", "mine"})), "mine");
}

}  // namespace
}  // namespace telecap
