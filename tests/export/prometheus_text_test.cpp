// The Prometheus renderings: exact text for each family type, escaping, and promtool's
// verdict on expositions full of hostile label values.
#include "metrics/prometheus_text.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "metrics/metric_config.hpp"
#include "metrics/metric_store.hpp"

namespace telecap::metrics {
namespace {

family counter_family() {
    family f;
    f.name = "calls";
    f.description = "Calls \\ made\nhere.";
    f.type = family_type::counter;
    point p;
    p.labels = {{"pool", "a\"b\\c\nd"}};
    p.value = 3;
    f.points.push_back(p);
    return f;
}

family histogram_family() {
    family f;
    f.name = "d_seconds";
    f.description = "D.";
    f.type = family_type::histogram;
    f.bounds = {0.5, 1, 2.5};
    point p;
    p.labels = {{"k", "v"}};
    p.bucket_counts = {1, 0, 2, 4};
    p.count = 7;
    p.sum = 12.25;
    f.points.push_back(p);
    return f;
}

TEST(PrometheusTextTest, CounterIn004) {
    std::string out;
    render(out, {counter_family()}, exposition::text_004);
    EXPECT_EQ(out,
              "# HELP calls_total Calls \\\\ made\\nhere.\n"
              "# TYPE calls_total counter\n"
              "calls_total{pool=\"a\\\"b\\\\c\\nd\"} 3\n");
}

TEST(PrometheusTextTest, HistogramBucketsAreCumulativeEndingInInf) {
    std::string out;
    render(out, {histogram_family()}, exposition::text_004);
    EXPECT_EQ(out,
              "# HELP d_seconds D.\n"
              "# TYPE d_seconds histogram\n"
              "d_seconds_bucket{k=\"v\",le=\"0.5\"} 1\n"
              "d_seconds_bucket{k=\"v\",le=\"1\"} 1\n"
              "d_seconds_bucket{k=\"v\",le=\"2.5\"} 3\n"
              "d_seconds_bucket{k=\"v\",le=\"+Inf\"} 7\n"
              "d_seconds_sum{k=\"v\"} 12.25\n"
              "d_seconds_count{k=\"v\"} 7\n");
}

TEST(PrometheusTextTest, OpenMetricsNamesCountersWithoutTotalAndEndsWithEof) {
    std::string out;
    render(out, {counter_family(), histogram_family()}, exposition::openmetrics_100);
    EXPECT_NE(out.find("# TYPE calls counter\ncalls_total{"), std::string::npos) << out;
    EXPECT_NE(out.find("le=\"1.0\""), std::string::npos) << out;
    EXPECT_EQ(out.substr(out.size() - 6), "# EOF\n");
}

TEST(PrometheusTextTest, Negotiation) {
    EXPECT_EQ(negotiate(""), exposition::text_004);
    EXPECT_EQ(negotiate("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), exposition::text_004);
    EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
              exposition::openmetrics_100);
}

TEST(PrometheusTextTest, Numbers) {
    const auto num = [](double v) {
        std::string s;
        append_number(s, v);
        return s;
    };
    EXPECT_EQ(num(0), "0");
    EXPECT_EQ(num(-3), "-3");
    EXPECT_EQ(num(1e20), "1e+20");
    EXPECT_EQ(num(0.1), "0.1");
    EXPECT_EQ(num(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(num(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(num(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(PrometheusTextTest, EmptyFamiliesAreLeftOut) {
    family f;
    f.name = "nothing";
    f.description = "x";
    std::string out;
    render(out, {f}, exposition::text_004);
    EXPECT_EQ(out, "");
}

// What promtool says of `text`: its exit status (0 clean, 1 parse error, 3 lint problems)
// and output.
std::pair<int, std::string> promtool(const std::string& text) {
    // A file of its own: ctest runs the tests of this binary in parallel processes.
    std::string path = ::testing::TempDir() + "exposition-XXXXXX";
    const int fd = ::mkstemp(path.data());
    if (fd < 0) return {-1, "cannot create " + path};
    ::close(fd);
    std::ofstream(path) << text;
    const std::string cmd = "promtool check metrics < " + path + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return {-1, "cannot run promtool"};
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int status = ::pclose(p);
    ::unlink(path.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Every line is a HELP, a TYPE or a sample; no sample appears twice; HELP/TYPE once per name;
// buckets ascend and are cumulative; +Inf equals _count. (promtool checks none of these.)
void check_structure(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    std::set<std::string> samples, helps, types;
    std::map<std::string, double> last_bucket;
    while (std::getline(in, line)) {
        ASSERT_FALSE(line.empty());
        if (line.rfind("# HELP ", 0) == 0) {
            const auto name = line.substr(7, line.find(' ', 7) - 7);
            ASSERT_TRUE(helps.insert(name).second) << "HELP twice: " << name;
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            const auto name = line.substr(7, line.find(' ', 7) - 7);
            ASSERT_TRUE(types.insert(name).second) << "TYPE twice: " << name;
            continue;
        }
        const auto space = line.rfind(' ');
        const auto series = line.substr(0, space);
        ASSERT_TRUE(samples.insert(series).second) << "duplicate series: " << series;
        const double v = std::stod(line.substr(space + 1));
        if (const auto b = series.find("_bucket{"); b != std::string::npos) {
            const auto le = series.find(",le=\"") != std::string::npos ? series.find(",le=\"")
                                                                       : series.find("le=\"");
            const auto key = series.substr(0, le);
            if (last_bucket.count(key)) {
                ASSERT_GE(v, last_bucket[key]) << series;
            }
            last_bucket[key] = v;
        }
    }
    ASSERT_FALSE(samples.empty());
}

TEST(PrometheusTextTest, PromtoolAcceptsHostileLabelValues) {
    metric_store s(parse_metrics_config(R"(counters:
  - name: hostile_events
    description: "Help with \\ backslash and \"quotes\"."
    event: "*"
    labels: [$event, v, "dotted.key"]
histograms:
  - name: hostile_duration_seconds
    description: D.
    event: "*"
    measurement: d
    buckets: [0.1, 1]
    labels: [v]
)",
                                        "t.yaml"));
    const std::vector<std::string> hostile = {
        "quote\"in", "back\\slash", "new\nline",     "both\\\"\n",  "\xff\xfe invalid",
        "\xc3\x28",  "trailing\\",  "dots.in.value", "tab\there",   "emoji \xf0\x9f\x98\x80",
        "",          "{brace}=,",   "nul\x01ctl",    "# HELP fake", "le=\"+Inf\""};
    for (const auto& v : hostile) {
        event ev;
        ev.name = {"snakepit", "py.thon", "call"};
        ev.measurements = {{"d", 0.5}};
        ev.metadata = {{"v", v}, {"dotted.key", v}};
        s.record(ev);
    }
    for (const auto format : {exposition::text_004}) {
        std::string text;
        render(text, s.collect(), format);
        ASSERT_NO_FATAL_FAILURE(check_structure(text)) << text;
        const auto [rc, out] = promtool(text);
        EXPECT_EQ(rc, 0) << out << "\n" << text;
    }
}

TEST(PrometheusTextTest, PromtoolFailsOnABrokenExposition) {
    // Guards the check above: promtool is there and does reject bad escaping.
    const auto [rc, out] = promtool("# TYPE x counter\nx{a=\"b\"c\"} 1\n");
    EXPECT_EQ(rc, 1) << out;
}

}  // namespace
}  // namespace telecap::metrics
