// capture/stats: every counter of capture_counters reaches each place derived from the list
// (operator+=, --stats, the capture and per-worker series, HELP texts).
#include "capture/stats.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>

#include "metrics/collectors.hpp"
#include "metrics/family.hpp"

namespace telecap {
namespace {

// Each counter slot gets its own value: 1, 2, 3, ... in list order.
capture_stats numbered() {
    capture_stats s;
    std::uint64_t v = 0;
    for (const auto& c : capture_counters)
        for (std::size_t i = 0; i < c.size(); ++i) c.at(s, i) = ++v;
    return s;
}

TEST(capture_counters, names_are_unique_and_series_are_counters) {
    std::set<std::string_view> json, series;
    for (const auto& c : capture_counters) {
        EXPECT_TRUE(json.insert(c.json).second) << c.json;
        EXPECT_TRUE(series.insert(c.series).second) << c.series;
        EXPECT_TRUE(c.series.starts_with("telecap_") && c.series.ends_with("_total")) << c.series;
        EXPECT_FALSE(c.help.empty()) << c.json;
    }
}

TEST(capture_counters, each_slot_is_its_own_member) {
    const capture_stats s = numbered();
    std::set<std::uint64_t> seen;
    for (const auto& c : capture_counters)
        for (std::size_t i = 0; i < c.size(); ++i) seen.insert(c.get(s, i));
    EXPECT_EQ(seen.size() * sizeof(relaxed_counter), sizeof(capture_stats));
}

TEST(capture_counters, stats_json_has_every_counter) {
    const capture_stats s = numbered();
    const std::string text = stats_to_json(s);
    rapidjson::Document doc;
    ASSERT_FALSE(doc.Parse(text.c_str()).HasParseError()) << text;
    std::uint64_t v = 0;
    for (const auto& c : capture_counters) {
        ASSERT_TRUE(doc.HasMember(c.json.data())) << c.json;
        const auto& m = doc[c.json.data()];
        if (c.reasons.empty()) {
            EXPECT_EQ(m.GetUint64(), ++v) << c.json;
            continue;
        }
        ASSERT_TRUE(m.IsObject()) << c.json;
        EXPECT_EQ(m.MemberCount(), c.reasons.size()) << c.json;
        for (const auto r : c.reasons) {
            const std::string key(r);
            ASSERT_TRUE(m.HasMember(key.c_str())) << c.json << "." << r;
            EXPECT_EQ(m[key.c_str()].GetUint64(), ++v) << c.json << "." << r;
        }
    }
}

TEST(capture_counters, sum_adds_every_counter) {
    capture_stats a = numbered();
    a += numbered();
    std::uint64_t v = 0;
    for (const auto& c : capture_counters)
        for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c.get(a, i), 2 * ++v) << c.json;
}

// The value of `name` + `labels` (reason appended when given) in `samples`, or -1.
double value_of(const std::vector<metrics::sample>& samples, std::string_view name,
                metrics::label_set labels, std::string_view reason = {}) {
    if (!reason.empty()) labels.emplace_back("reason", std::string(reason));
    for (const auto& s : samples)
        if (s.name == name && s.labels == labels) return s.value;
    return -1;
}

TEST(capture_counters, series_per_worker_and_per_capture_have_every_live_counter) {
    const capture_stats s = numbered();
    const metrics::label_set worker{{"worker", "w-0"}, {"pool", "w"}};
    // What supervisor's collector appends for a worker, and for all workers' queue.
    std::vector<metrics::sample> per_worker;
    metrics::append_capture_series(per_worker, s, worker, counter_scope::pipeline);
    metrics::append_capture_series(per_worker, s, {}, counter_scope::queue);
    // parse's collector, read through a registry.
    metrics::registry r;
    metrics::add_capture_collector(r, s);
    const auto capture = r.snapshot();

    std::uint64_t v = 0;
    for (const auto& c : capture_counters) {
        for (std::size_t i = 0; i < c.size(); ++i) {
            const double want = static_cast<double>(++v);
            const std::string_view reason = c.reasons.empty() ? "" : c.reasons[i];
            switch (c.scope) {
                case counter_scope::pipeline:
                    EXPECT_EQ(value_of(per_worker, c.series, worker, reason), want) << c.series;
                    EXPECT_EQ(value_of(capture, c.series, {}, reason), want) << c.series;
                    break;
                case counter_scope::queue:
                    EXPECT_EQ(value_of(per_worker, c.series, {}, reason), want) << c.series;
                    EXPECT_EQ(value_of(capture, c.series, {}, reason), want) << c.series;
                    break;
                case counter_scope::passthrough:  // the muxes' collector's series, below
                case counter_scope::handler_bus:  // copied in at the end: --stats only
                    EXPECT_EQ(value_of(per_worker, c.series, worker, reason), -1) << c.series;
                    break;
            }
        }
    }
}

TEST(capture_counters, passthrough_series_are_named_by_the_list) {
    metrics::registry r;
    metrics::add_passthrough_collector(r, {});
    const auto samples = r.snapshot();
    for (const auto& c : capture_counters) {
        if (c.scope == counter_scope::passthrough) {
            EXPECT_EQ(metrics::registry::find(samples, std::string(c.series)), 0.0) << c.series;
        }
    }
}

TEST(capture_counters, every_series_has_its_help_text) {
    std::vector<metrics::sample> samples;
    for (const auto& c : capture_counters)
        samples.push_back({std::string(c.series), {}, metrics::kind::counter, 1});
    const auto families = metrics::families_from_samples(samples);
    for (const auto& c : capture_counters) {
        const auto base = c.series.substr(0, c.series.size() - 6);  // without "_total"
        const auto it = std::find_if(families.begin(), families.end(),
                                     [&](const auto& f) { return f.name == base; });
        ASSERT_NE(it, families.end()) << c.series;
        EXPECT_EQ(it->description, c.help) << c.series;
    }
}

}  // namespace
}  // namespace telecap
