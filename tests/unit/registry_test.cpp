// metrics::registry: series by name and sorted labels, counters and gauges, collectors,
// sorted snapshots, and concurrent writers with a reader taking snapshots meanwhile.
#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/unit_helpers.hpp"

namespace telecap::metrics {
namespace {

TEST(RegistryTest, CounterIsCreatedOnFirstUseAndKeptByReference) {
    registry r;
    counter& a = r.get_counter("telecap_events_total");
    EXPECT_EQ(&a, &r.get_counter("telecap_events_total"));
    a.inc();
    a.inc(4);
    EXPECT_EQ(a.value(), 5u);
    const auto s = r.snapshot();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].name, "telecap_events_total");
    EXPECT_EQ(s[0].type, kind::counter);
    EXPECT_EQ(s[0].value, 5);
    EXPECT_TRUE(s[0].labels.empty());
}

TEST(RegistryTest, LabelOrderDoesNotMakeANewSeries) {
    registry r;
    counter& a = r.get_counter("c", {{"worker", "1"}, {"pool", "p"}});
    counter& b = r.get_counter("c", {{"pool", "p"}, {"worker", "1"}});
    EXPECT_EQ(&a, &b);
    a.inc();
    b.inc();
    const auto s = r.snapshot();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].labels, (label_set{{"pool", "p"}, {"worker", "1"}}));  // kept sorted
    EXPECT_EQ(s[0].value, 2);
    EXPECT_EQ(registry::find(s, "c", {{"worker", "1"}, {"pool", "p"}}), 2);
}

TEST(RegistryTest, DifferentLabelsAreDifferentSeries) {
    registry r;
    r.get_counter("c", {{"worker", "1"}}).inc(1);
    r.get_counter("c", {{"worker", "2"}}).inc(2);
    r.get_counter("c").inc(3);
    const auto s = r.snapshot();
    EXPECT_EQ(s.size(), 3u);
    EXPECT_EQ(registry::find(s, "c", {{"worker", "1"}}), 1);
    EXPECT_EQ(registry::find(s, "c", {{"worker", "2"}}), 2);
    EXPECT_EQ(registry::find(s, "c"), 3);
    EXPECT_EQ(registry::find(s, "c", {{"worker", "3"}}), -1);
    EXPECT_EQ(registry::find(s, "nope"), -1);
}

TEST(RegistryTest, GaugesSetAndAddBothWays) {
    registry r;
    gauge& g = r.get_gauge("telecap_queue_depth", {{"pool", "p"}});
    EXPECT_EQ(&g, &r.get_gauge("telecap_queue_depth", {{"pool", "p"}}));
    g.set(10);
    g.add(-15);
    EXPECT_EQ(g.value(), -5);
    const auto s = r.snapshot();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].type, kind::gauge);
    EXPECT_EQ(s[0].value, -5);
}

TEST(RegistryTest, RemovedGaugeLeavesTheSnapshotAndStartsAfresh) {
    registry r;
    r.get_gauge("g", {{"worker", "1"}, {"pool", "p"}}).set(7);
    r.get_gauge("g", {{"worker", "2"}}).set(8);
    r.remove_gauge("g", {{"pool", "p"}, {"worker", "1"}});  // any label order
    auto s = r.snapshot();
    EXPECT_EQ(registry::find(s, "g", {{"worker", "1"}, {"pool", "p"}}), -1);
    EXPECT_EQ(registry::find(s, "g", {{"worker", "2"}}), 8);
    r.remove_gauge("g", {{"worker", "9"}});  // absent: harmless
    EXPECT_EQ(r.get_gauge("g", {{"worker", "1"}, {"pool", "p"}}).value(), 0);
}

TEST(RegistryTest, CountersAndGaugesOfOneNameAreSeparate) {
    registry r;
    r.get_counter("x").inc(2);
    r.get_gauge("x").set(-1);
    const auto s = r.snapshot();
    ASSERT_EQ(s.size(), 2u);
    int counters = 0, gauges = 0;
    for (const auto& x : s) (x.type == kind::counter ? counters : gauges) += 1;
    EXPECT_EQ(counters, 1);
    EXPECT_EQ(gauges, 1);
}

TEST(RegistryTest, SnapshotIsSortedByNameThenLabels) {
    registry r;
    r.get_gauge("b", {{"k", "2"}});
    r.get_counter("c");
    r.get_counter("b", {{"k", "1"}});
    r.add_collector([](std::vector<sample>& out) { out.push_back({"a", {}, kind::counter, 1}); });
    const auto s = r.snapshot();
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(s[0].name, "a");
    EXPECT_EQ(s[1].name, "b");
    EXPECT_EQ(s[1].labels, (label_set{{"k", "1"}}));
    EXPECT_EQ(s[2].name, "b");
    EXPECT_EQ(s[2].labels, (label_set{{"k", "2"}}));
    EXPECT_EQ(s[3].name, "c");
}

TEST(RegistryTest, CollectorsAddSamplesUntilRemoved) {
    registry r;
    std::atomic<std::uint64_t> external{41};
    std::thread::id called_on;
    const auto id = r.add_collector([&](std::vector<sample>& out) {
        called_on = std::this_thread::get_id();
        out.push_back({"telecap_lines_total",
                       {{"worker", "w1"}, {"pool", "p"}},
                       kind::counter,
                       static_cast<double>(external.load())});
    });
    external.fetch_add(1);
    auto s = r.snapshot();
    EXPECT_EQ(called_on, std::this_thread::get_id());  // on the snapshot's thread
    EXPECT_EQ(registry::find(s, "telecap_lines_total", {{"pool", "p"}, {"worker", "w1"}}), 42);
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].labels, (label_set{{"pool", "p"}, {"worker", "w1"}}));  // sorted for it
    r.remove_collector(id);
    r.remove_collector(id);  // twice: harmless
    EXPECT_TRUE(r.snapshot().empty());
}

TEST(RegistryTest, CollectorIdsAreDistinct) {
    registry r;
    const auto a = r.add_collector([](std::vector<sample>& out) {
        out.push_back({"a", {}, kind::gauge, 0});
    });
    const auto b = r.add_collector([](std::vector<sample>& out) {
        out.push_back({"b", {}, kind::gauge, 0});
    });
    EXPECT_NE(a, b);
    r.remove_collector(a);
    const auto s = r.snapshot();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].name, "b");
}

TEST(RegistryTest, ConcurrentWritersAndReadersLoseNothing) {
    registry r;
    constexpr int threads = 4, each = 20000;
    std::atomic<bool> stop{false};
    std::atomic<int> snapshots{0};
    std::atomic<bool> went_down{false};
    test::gate reading;  // the writers start once the reader is taking snapshots
    std::thread reader([&] {
        double last = 0;
        do {
            const auto s = r.snapshot();
            const double v = registry::find(s, "shared");
            if (v >= 0) {
                if (v < last) went_down = true;  // counters never go back
                last = v;
            }
            if (++snapshots == 1) reading.open();
        } while (!stop.load());
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            const std::string me = std::to_string(t);
            reading.wait();
            for (int i = 0; i < each; ++i) {
                // Lookup and creation race with the other writers and the snapshots.
                r.get_counter("shared").inc();
                if (i % 100 == 0) r.get_counter("per_thread", {{"thread", me}}).inc(100);
                r.get_gauge("level").add(1);
            }
        });
    for (auto& w : writers) w.join();
    stop = true;
    reader.join();
    const auto s = r.snapshot();
    EXPECT_EQ(registry::find(s, "shared"), threads * each);
    EXPECT_EQ(registry::find(s, "level"), threads * each);
    for (int t = 0; t < threads; ++t)
        EXPECT_EQ(registry::find(s, "per_thread", {{"thread", std::to_string(t)}}), each);
    EXPECT_FALSE(went_down.load());
    EXPECT_GT(snapshots.load(), 0);
}

}  // namespace
}  // namespace telecap::metrics
