// metric_store: deriving counters, histograms and gauges from events, and the rules for what
// an event lacks (labels, measurements), cardinality, worker exits and concurrent collects.
#include "metrics/metric_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "metrics/metric_config.hpp"

namespace telecap::metrics {
namespace {

event make(const std::string& dotted, std::vector<std::pair<std::string, measurement_value>> m,
           std::vector<std::pair<std::string, metadata_value>> md = {}) {
    event ev;
    std::size_t from = 0;
    while (true) {
        const auto dot = dotted.find('.', from);
        ev.name.push_back(dotted.substr(from, dot - from));
        if (dot == std::string::npos) break;
        from = dot + 1;
    }
    ev.measurements = std::move(m);
    ev.metadata = std::move(md);
    return ev;
}

metrics_config config(const std::string& yaml) { return parse_metrics_config(yaml, "t.yaml"); }

family fam(const std::vector<family>& all, const std::string& name) {
    for (const auto& f : all)
        if (f.name == name) return f;
    family none;
    ADD_FAILURE() << "no family " << name;
    return none;
}

TEST(MetricStoreTest, CountersCountMatchingEventsByLabel) {
    metric_store s(config(R"(counters:
  - name: events
    event: "snakepit.python.*"
    labels: [$event, pool_name]
)"));
    s.record(
        make("snakepit.python.call.start", {{"count", std::int64_t{1}}}, {{"pool_name", "a"}}));
    s.record(make("snakepit.python.call.start", {}, {{"pool_name", "a"}}));
    s.record(make("snakepit.python.call.stop", {}, {{"pool_name", "b"}}));
    s.record(make("snakepit.pool.worker.spawned", {}, {{"pool_name", "a"}}));  // no match
    const auto all = s.collect();
    const family f = fam(all, "events");
    EXPECT_EQ(f.type, family_type::counter);
    ASSERT_EQ(f.points.size(), 2u);
    EXPECT_EQ(f.points[0].labels,
              (label_set{{"event", "snakepit.python.call.start"}, {"pool_name", "a"}}));
    EXPECT_EQ(f.points[0].value, 2);
    EXPECT_EQ(f.points[1].labels,
              (label_set{{"event", "snakepit.python.call.stop"}, {"pool_name", "b"}}));
    EXPECT_EQ(f.points[1].value, 1);
}

TEST(MetricStoreTest, CounterWithAMeasurementAddsItScaled) {
    metric_store s(
        config("counters:\n  - name: bytes\n    event: x\n    measurement: n\n"
               "    scale: 2\n"));
    s.record(make("x", {{"n", std::int64_t{5}}}));
    s.record(make("x", {{"n", 1.5}}));
    EXPECT_EQ(fam(s.collect(), "bytes").points.at(0).value, 13);
}

TEST(MetricStoreTest, HistogramBucketsAreUpperInclusive) {
    metric_store s(config(R"(histograms:
  - name: d
    event: x
    measurement: duration
    scale: 1e-9
    buckets: [0.001, 0.01, 0.1]
)"));
    for (std::int64_t ns : {500'000LL, 1'000'000LL, 5'000'000LL, 100'000'000LL, 2'000'000'000LL})
        s.record(make("x", {{"duration", ns}}));
    const point p = fam(s.collect(), "d").points.at(0);
    // (..0.001]: 0.0005, 0.001; (0.001..0.01]: 0.005; (0.01..0.1]: 0.1; (0.1..+Inf): 2
    EXPECT_EQ(p.bucket_counts, (std::vector<std::uint64_t>{2, 1, 1, 1}));
    EXPECT_EQ(p.count, 5u);
    EXPECT_NEAR(p.sum, 2.1065, 1e-12);
}

TEST(MetricStoreTest, GaugesKeepTheLastValue) {
    metric_store s(config("gauges:\n  - name: rss\n    event: m\n    measurement: rss\n"));
    s.record(make("m", {{"rss", std::int64_t{10}}}));
    s.record(make("m", {{"rss", std::int64_t{7}}}));
    EXPECT_EQ(fam(s.collect(), "rss").points.at(0).value, 7);
}

TEST(MetricStoreTest, AMissingLabelIsEmptyAndCounted) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [tool]\n"));
    s.record(make("x", {}, {{"tool", "t"}}));
    s.record(make("x", {}));
    s.record(make("x", {}, {{"tool", nullptr}}));
    const family f = fam(s.collect(), "c");
    ASSERT_EQ(f.points.size(), 2u);
    EXPECT_EQ(f.points[0].labels, (label_set{{"tool", ""}}));
    EXPECT_EQ(f.points[0].value, 2);
    EXPECT_EQ(s.missing_label("c", "tool"), 2u);
}

TEST(MetricStoreTest, MeasurementsThatCannotBeRecordedAreSkippedByReason) {
    metric_store s(config(R"(counters:
  - name: c
    event: x
    measurement: v
histograms:
  - name: h
    event: x
    measurement: v
    buckets: [1]
)"));
    s.record(make("x", {}));                          // missing
    s.record(make("x", {{"v", std::string("12")}}));  // a string
    s.record(make("x", {{"v", std::numeric_limits<double>::quiet_NaN()}}));
    s.record(make("x", {{"v", std::numeric_limits<double>::infinity()}}));
    s.record(make("x", {{"v", std::int64_t{-3}}}));  // counters never go down
    s.record(make("x", {{"v", std::int64_t{2}}}));
    EXPECT_EQ(s.skipped("c", skip_reason::missing_measurement), 1u);
    EXPECT_EQ(s.skipped("c", skip_reason::not_numeric), 1u);
    EXPECT_EQ(s.skipped("c", skip_reason::not_finite), 2u);
    EXPECT_EQ(s.skipped("c", skip_reason::negative), 1u);
    EXPECT_EQ(s.skipped("h", skip_reason::negative), 0u);  // a histogram takes -3
    const auto all = s.collect();
    EXPECT_EQ(fam(all, "c").points.at(0).value, 2);
    EXPECT_EQ(fam(all, "h").points.at(0).count, 2u);
}

TEST(MetricStoreTest, PastMaxSeriesMeasurementsGoToOneOverflowSeries) {
    metric_store s(
        config("counters:\n  - name: c\n    event: x\n    labels: [id]\n"
               "    max_series: 3\n"));
    for (int i = 0; i < 10; ++i) s.record(make("x", {}, {{"id", std::to_string(i)}}));
    s.record(make("x", {}, {{"id", "0"}}));  // a known series still counts as itself
    const family f = fam(s.collect(), "c");
    ASSERT_EQ(f.points.size(), 4u);
    double total = 0;
    for (const auto& p : f.points) total += p.value;
    EXPECT_EQ(total, 11);  // totals stay right
    const auto& overflow = f.points.back();
    EXPECT_EQ(overflow.labels, (label_set{{"otel_metric_overflow", "true"}}));
    EXPECT_EQ(overflow.value, 7);
    EXPECT_EQ(s.overflowed("c"), 7u);
    EXPECT_EQ(s.series("c"), 4u);
}

TEST(MetricStoreTest, InvalidUtf8LabelValuesBecomeOneValidSeries) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [k]\n"));
    s.record(make("x", {}, {{"k", std::string("a\xff")}}));
    s.record(make("x", {}, {{"k", std::string("a\xfe")}}));  // renders the same: same series
    const family f = fam(s.collect(), "c");
    ASSERT_EQ(f.points.size(), 1u);
    EXPECT_EQ(f.points[0].labels[0].second, "a\xEF\xBF\xBD");
    EXPECT_EQ(f.points[0].value, 2);
}

TEST(MetricStoreTest, LongLabelValuesAreCutOnAUtf8BoundaryAndCounted) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [k]\n"));
    // 1023 ASCII bytes then a 3-byte character across the 1024-byte mark, then more.
    const std::string prefix(1023, 'a');
    s.record(make("x", {}, {{"k", prefix + "\xE2\x82\xAC" + std::string(500000, 'b')}}));
    s.record(make("x", {}, {{"k", prefix + "\xE2\x82\xAC" + std::string(400000, 'c')}}));
    const family f = fam(s.collect(), "c");
    ASSERT_EQ(f.points.size(), 1u);  // both cut to the same value: one series
    EXPECT_EQ(f.points[0].labels[0].second, prefix);
    EXPECT_EQ(f.points[0].value, 2);
    EXPECT_EQ(s.cut_label("c", "k"), 2u);
    s.record(make("x", {}, {{"k", std::string(1024, 'd')}}));  // exactly the limit: kept whole
    EXPECT_EQ(s.cut_label("c", "k"), 2u);
}

TEST(MetricStoreTest, IntegerMetadataIsALabelToo) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [n]\n"));
    s.record(make("x", {}, {{"n", std::int64_t{-42}}}));
    EXPECT_EQ(fam(s.collect(), "c").points.at(0).labels, (label_set{{"n", "-42"}}));
}

TEST(MetricStoreTest, AWorkersGaugesGoWhenItTerminatesItsCountersStay) {
    metric_store s(config(R"(counters:
  - name: calls
    event: x
    labels: [worker_id]
gauges:
  - name: rss
    event: x
    measurement: rss
    labels: [worker_id]
  - name: renamed_rss
    event: x
    measurement: rss
    labels: [{worker: worker_id}]
  - name: pool_rss
    event: x
    measurement: rss
    labels: [pool_name]
)"));
    s.record(make("x", {{"rss", std::int64_t{1}}}, {{"worker_id", "w1"}, {"pool_name", "p"}}));
    s.record(make("x", {{"rss", std::int64_t{2}}}, {{"worker_id", "w2"}, {"pool_name", "p"}}));
    s.record(make("snakepit.pool.worker.terminated", {}, {{"worker_id", "w1"}}));
    const auto all = s.collect();
    const family rss = fam(all, "rss");
    ASSERT_EQ(rss.points.size(), 1u);
    EXPECT_EQ(rss.points[0].labels, (label_set{{"worker_id", "w2"}}));
    const family renamed = fam(all, "renamed_rss");  // the key decides, whatever the label's name
    ASSERT_EQ(renamed.points.size(), 1u);
    EXPECT_EQ(renamed.points[0].labels, (label_set{{"worker", "w2"}}));
    EXPECT_EQ(fam(all, "calls").points.size(), 2u);     // counters never expire
    EXPECT_EQ(fam(all, "pool_rss").points.size(), 1u);  // not a worker's series
    // The worker's next sample brings its gauge back.
    s.record(make("x", {{"rss", std::int64_t{3}}}, {{"worker_id", "w1"}}));
    EXPECT_EQ(fam(s.collect(), "rss").points.size(), 2u);
}

// Integer metadata names a series by its decimal text, so a worker whose id is an integer
// has gauges labelled "7": its terminated event (worker_id 7, an integer) must remove them.
TEST(MetricStoreTest, AWorkerWithAnIntegerIdLosesItsGaugesToo) {
    metric_store s(config(R"(gauges:
  - name: rss
    event: x
    measurement: rss
    labels: [worker_id]
)"));
    s.record(make("x", {{"rss", std::int64_t{1}}}, {{"worker_id", std::int64_t{7}}}));
    s.record(make("x", {{"rss", std::int64_t{2}}}, {{"worker_id", std::int64_t{8}}}));
    s.record(make("snakepit.pool.worker.terminated", {}, {{"worker_id", std::int64_t{7}}}));
    const family rss = fam(s.collect(), "rss");
    ASSERT_EQ(rss.points.size(), 1u);
    EXPECT_EQ(rss.points[0].labels, (label_set{{"worker_id", "8"}}));
    EXPECT_EQ(s.series("rss"), 1u);
}

TEST(MetricStoreTest, CaptureFalseIsANoOp) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    capture: false\n"));
    s.record(make("x", {}));
    EXPECT_TRUE(s.collect().empty());
}

TEST(MetricStoreTest, SeriesStartTimeIsWhenTheSeriesBegan) {
    std::int64_t now = 1000;
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [k]\n"),
                   [&] { return now; });
    s.record(make("x", {}, {{"k", "a"}}));
    now = 2000;
    s.record(make("x", {}, {{"k", "a"}}));
    s.record(make("x", {}, {{"k", "b"}}));
    const family f = fam(s.collect(), "c");
    EXPECT_EQ(f.points.at(0).start_ns, 1000);
    EXPECT_EQ(f.points.at(1).start_ns, 2000);
}

TEST(MetricStoreTest, OwnCountersAreSamples) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    measurement: v\n"));
    s.record(make("x", {}));
    std::vector<sample> out;
    s.own_samples(out);
    EXPECT_EQ(registry::find(out, "telecap_metrics_skipped_total",
                             {{"metric", "c"}, {"reason", "missing_measurement"}}),
              1);
    EXPECT_EQ(registry::find(out, "telecap_metrics_series", {{"metric", "c"}}), 0);
}

// The series cache: each metric keeps, per event name, the series the last events of that
// name went to, and reuses them while the label values stay the same. These tests give events
// a name_id, as the normalizer does, and check that no kept series outlives its values.

// A value as the catalog's entry would be: events with the same id share their name.
const int name_x = 0;
const int name_y = 0;

event named(const void* id, const std::string& dotted,
            std::vector<std::pair<std::string, measurement_value>> m,
            std::vector<std::pair<std::string, metadata_value>> md = {}) {
    event ev = make(dotted, std::move(m), std::move(md));
    ev.name_id = id;
    return ev;
}

double value_of(const family& f, const label_set& labels) {
    for (const auto& p : f.points)
        if (p.labels == labels) return p.value;
    ADD_FAILURE() << "no series";
    return -1;
}

TEST(MetricStoreCacheTest, AChangedLabelValueNeverReusesTheLastSeries) {
    metric_store s(config(R"(counters:
  - name: c
    event: x
    labels: [$event, pool_name, tool]
  - name: p
    event: x
    labels: [pool_name]
)"));
    // One event object, refilled as the normalizer refills its slots.
    event ev = named(&name_x, "x", {}, {{"tool", "a"}, {"pool_name", "p"}});
    const char* tools[] = {"a", "a", "b", "a", "c", "d", "e", "a", "e", "b", "b"};
    for (const char* t : tools) {
        ev.metadata[0].second = std::string(t);
        s.record(ev);
    }
    const auto all = s.collect();
    const family c = fam(all, "c");
    ASSERT_EQ(c.points.size(), 5u);
    const auto at = [&](const char* t) {
        return value_of(c, {{"event", "x"}, {"pool_name", "p"}, {"tool", t}});
    };
    EXPECT_EQ(at("a"), 4);
    EXPECT_EQ(at("b"), 3);
    EXPECT_EQ(at("c"), 1);
    EXPECT_EQ(at("d"), 1);
    EXPECT_EQ(at("e"), 2);
    EXPECT_EQ(value_of(fam(all, "p"), {{"pool_name", "p"}}), 11);  // its value never changed
}

TEST(MetricStoreCacheTest, IntegerValuesAreComparedByTheirText) {
    metric_store s(
        config("gauges:\n  - name: g\n    event: x\n    measurement: v\n"
               "    labels: [worker_id]\n"));
    for (std::int64_t w : {7, 7, 8, 7, 70})
        s.record(named(&name_x, "x", {{"v", w * 10}}, {{"worker_id", w}}));
    const family g = fam(s.collect(), "g");
    ASSERT_EQ(g.points.size(), 3u);
    EXPECT_EQ(value_of(g, {{"worker_id", "7"}}), 70);
    EXPECT_EQ(value_of(g, {{"worker_id", "8"}}), 80);
    EXPECT_EQ(value_of(g, {{"worker_id", "70"}}), 700);
}

// A metric that skipped an event (no measurement) saw its label values change without
// recording them: the next event must not go to the series before the skip.
TEST(MetricStoreCacheTest, ASkippedEventDoesNotLeaveAStaleSeries) {
    metric_store s(config(R"(counters:
  - name: events
    event: x
    labels: [pool_name]
histograms:
  - name: h
    event: x
    measurement: v
    buckets: [1]
    labels: [pool_name]
)"));
    s.record(named(&name_x, "x", {{"v", std::int64_t{1}}}, {{"pool_name", "a"}}));
    s.record(named(&name_x, "x", {}, {{"pool_name", "b"}}));  // h: missing_measurement
    s.record(named(&name_x, "x", {{"v", std::int64_t{1}}}, {{"pool_name", "b"}}));
    const auto all = s.collect();
    const family h = fam(all, "h");
    ASSERT_EQ(h.points.size(), 2u);
    EXPECT_EQ(h.points[0].labels, (label_set{{"pool_name", "a"}}));
    EXPECT_EQ(h.points[0].count, 1u);
    EXPECT_EQ(h.points[1].labels, (label_set{{"pool_name", "b"}}));
    EXPECT_EQ(h.points[1].count, 1u);
    EXPECT_EQ(s.skipped("h", skip_reason::missing_measurement), 1u);
    EXPECT_EQ(value_of(fam(all, "events"), {{"pool_name", "b"}}), 2);
}

// Past max_series, new values go to the overflow series, which is never kept: the next event
// with a known value goes to its own series, and one with the same unknown value overflows again.
TEST(MetricStoreCacheTest, TheOverflowSeriesIsNeverReusedForKnownValues) {
    metric_store s(
        config("counters:\n  - name: c\n    event: x\n    labels: [id]\n"
               "    max_series: 2\n"));
    for (const char* id : {"a", "b", "c", "c", "a", "c", "b", "b", "d", "a"})
        s.record(named(&name_x, "x", {}, {{"id", id}}));
    const family c = fam(s.collect(), "c");
    ASSERT_EQ(c.points.size(), 3u);
    EXPECT_EQ(value_of(c, {{"id", "a"}}), 3);
    EXPECT_EQ(value_of(c, {{"id", "b"}}), 3);
    EXPECT_EQ(value_of(c, {{"otel_metric_overflow", "true"}}), 4);  // c, c, c, d
    EXPECT_EQ(s.overflowed("c"), 4u);
}

// A worker's exit removes its gauges, which moves the others: kept series must not point at
// the wrong one, or past the end.
TEST(MetricStoreCacheTest, KeptSeriesSurviveAWorkersGaugesGoing) {
    metric_store s(
        config("gauges:\n  - name: rss\n    event: x\n    measurement: rss\n"
               "    labels: [worker_id]\n"));
    s.record(named(&name_x, "x", {{"rss", std::int64_t{1}}}, {{"worker_id", "w1"}}));
    s.record(named(&name_x, "x", {{"rss", std::int64_t{2}}}, {{"worker_id", "w2"}}));
    s.record(named(&name_y, "snakepit.pool.worker.terminated", {}, {{"worker_id", "w1"}}));
    s.record(named(&name_x, "x", {{"rss", std::int64_t{5}}}, {{"worker_id", "w2"}}));
    s.record(named(&name_x, "x", {{"rss", std::int64_t{3}}}, {{"worker_id", "w1"}}));
    s.record(named(&name_x, "x", {{"rss", std::int64_t{6}}}, {{"worker_id", "w2"}}));
    const family rss = fam(s.collect(), "rss");
    ASSERT_EQ(rss.points.size(), 2u);
    EXPECT_EQ(value_of(rss, {{"worker_id", "w1"}}), 3);
    EXPECT_EQ(value_of(rss, {{"worker_id", "w2"}}), 6);
}

TEST(MetricStoreCacheTest, MissingAndCutLabelsAreCountedOnEveryEvent) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [tool, k]\n"));
    const std::string long_value(2000, 'v');
    for (int i = 0; i < 3; ++i) s.record(named(&name_x, "x", {}, {{"k", long_value}}));
    EXPECT_EQ(s.missing_label("c", "tool"), 3u);
    EXPECT_EQ(s.cut_label("c", "k"), 3u);
    EXPECT_EQ(fam(s.collect(), "c").points.at(0).value, 3);
}

// A malformed value is kept as the series of its valid form; the same bytes again, and the
// valid form itself, still land there.
TEST(MetricStoreCacheTest, InvalidUtf8ValuesKeepTheirValidSeries) {
    metric_store s(config("counters:\n  - name: c\n    event: x\n    labels: [k]\n"));
    for (const char* k : {"a\xff", "a\xff", "b", "a\xEF\xBF\xBD", "a\xff"})
        s.record(named(&name_x, "x", {}, {{"k", std::string(k)}}));
    const family c = fam(s.collect(), "c");
    ASSERT_EQ(c.points.size(), 2u);
    EXPECT_EQ(value_of(c, {{"k", "a\xEF\xBF\xBD"}}), 4);
    EXPECT_EQ(value_of(c, {{"k", "b"}}), 1);
}

// The name cache trusts a name_id only with the same name: an id reused for another name
// (a catalog freed, another allocated where it was) is that other name.
TEST(MetricStoreCacheTest, AReusedNameIdWithAnotherNameIsThatName) {
    metric_store s(config("counters:\n  - name: c\n    event: \"*\"\n    labels: [$event]\n"));
    s.record(named(&name_x, "a.x", {}));
    s.record(named(&name_x, "b.y", {}));
    s.record(named(&name_x, "a.x", {}));
    const family c = fam(s.collect(), "c");
    EXPECT_EQ(value_of(c, {{"event", "a.x"}}), 2);
    EXPECT_EQ(value_of(c, {{"event", "b.y"}}), 1);
}

// Names that share metrics keep separate series caches.
TEST(MetricStoreCacheTest, EachEventNameKeepsItsOwnSeries) {
    metric_store s(config("counters:\n  - name: c\n    event: \"*\"\n    labels: [$event, k]\n"));
    for (int i = 0; i < 4; ++i) {
        s.record(named(&name_x, "x", {}, {{"k", "1"}}));
        s.record(named(&name_y, "y", {}, {{"k", i < 2 ? "1" : "2"}}));
    }
    const family c = fam(s.collect(), "c");
    ASSERT_EQ(c.points.size(), 3u);
    EXPECT_EQ(value_of(c, {{"event", "x"}, {"k", "1"}}), 4);
    EXPECT_EQ(value_of(c, {{"event", "y"}, {"k", "1"}}), 2);
    EXPECT_EQ(value_of(c, {{"event", "y"}, {"k", "2"}}), 2);
}

// The record lock under contention: waiters sleep and wake, no increment is lost.
TEST(RecordMutexTest, ExcludesUnderContention) {
    record_mutex mu;
    std::uint64_t n = 0;
    const auto work = [&] {
        for (int i = 0; i < 200000; ++i) {
            std::lock_guard lk(mu);
            ++n;
        }
    };
    std::thread a(work), b(work), c(work);
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(n, 600000u);
}

// A histogram is never seen half-updated: in every snapshot, count = sum of the buckets.
TEST(MetricStoreTest, CollectSeesWholeUpdatesWhileRecording) {
    metric_store s(
        config("histograms:\n  - name: h\n    event: x\n    measurement: v\n"
               "    buckets: [1, 2, 3]\n    labels: [k]\n"));
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (int i = 0; i < 20000; ++i)
            s.record(make("x", {{"v", std::int64_t{i % 5}}}, {{"k", std::to_string(i % 50)}}));
        done = true;
    });
    int checked = 0;
    while (!done || checked == 0) {
        for (const auto& f : s.collect())
            for (const auto& p : f.points) {
                std::uint64_t sum = 0;
                for (auto b : p.bucket_counts) sum += b;
                ASSERT_EQ(sum, p.count);
            }
        ++checked;
    }
    writer.join();
    std::uint64_t total = 0;
    for (const auto& p : fam(s.collect(), "h").points) total += p.count;
    EXPECT_EQ(total, 20000u);
}

}  // namespace
}  // namespace telecap::metrics
