// The metrics file: what it accepts, and that each mistake is an error naming its line.
#include "metrics/metric_config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace telecap::metrics {
namespace {

metrics_config parse(const std::string& text) { return parse_metrics_config(text, "m.yaml"); }

// The message of the error parsing `text` gives, or "" when it parses.
std::string error_of(const std::string& text) {
    try {
        parse(text);
    } catch (const metrics_config_error& e) {
        return e.what();
    }
    return "";
}

TEST(MetricConfigTest, AFullFileParses) {
    const auto cfg = parse(R"(service_name: svc
counters:
  - name: calls_total
    description: Calls.
    unit: "1"
    event: "snakepit.python.call.*"
    labels: [pool_name, $event]
  - name: off
    event: x
    capture: false
histograms:
  - name: call.duration
    event: snakepit.python.call.stop
    measurement: duration
    scale: 1e-9
    buckets: [0.1, 1, 10]
    max_series: 7
gauges:
  - name: rss
    event: snakepit.python.memory.sampled
    measurement: rss_bytes
    labels: [worker_id, {pool: pool_name}]
)");
    EXPECT_EQ(cfg.service_name, "svc");
    ASSERT_EQ(cfg.metrics.size(), 4u);
    const auto& c = cfg.metrics[0];
    EXPECT_EQ(c.kind, metric_kind::counter);
    EXPECT_EQ(c.wire_name, "calls");  // "_total" is the exporters' to add
    EXPECT_EQ(c.line, 3);
    ASSERT_EQ(c.labels.size(), 2u);
    EXPECT_EQ(c.labels[1].key, "$event");
    EXPECT_EQ(c.labels[1].name, "event");
    const auto& g = cfg.metrics[3];
    ASSERT_EQ(g.labels.size(), 2u);
    EXPECT_EQ(g.labels[1].key, "pool_name") << "renamed: {pool: pool_name}";
    EXPECT_EQ(g.labels[1].name, "pool");
    EXPECT_FALSE(cfg.metrics[1].capture);
    EXPECT_EQ(cfg.metrics[1].description, "off");  // every family gets a HELP
    const auto& h = cfg.metrics[2];
    EXPECT_EQ(h.wire_name, "call_duration");
    EXPECT_DOUBLE_EQ(h.scale, 1e-9);
    EXPECT_EQ(h.buckets, (std::vector<double>{0.1, 1, 10}));
    EXPECT_EQ(h.max_series, 7u);
    EXPECT_EQ(cfg.metrics[3].max_series, default_max_series);
}

TEST(MetricConfigTest, MistakesNameTheirLine) {
    struct bad_case {
        const char* text;
        const char* line;
        const char* says;
    };
    const bad_case cases[] = {
        {"counters:\n  - name: a\n    evnt: x\n", "m.yaml:3:", "unknown key \"evnt\""},
        {"counters:\n  - name: a\n", "m.yaml:2:", "needs an event"},
        {"histograms:\n  - name: h\n    event: x\n    measurement: d\n",
         "m.yaml:2:", "needs buckets"},
        {"histograms:\n  - name: h\n    event: x\n    measurement: d\n    buckets: [1, 1]\n",
         "m.yaml:5:", "strictly increasing"},
        {"gauges:\n  - name: g\n    event: x\n", "m.yaml:2:", "needs a measurement"},
        {"counters:\n  - name: a\n    event: x\n    labels: [correlation_id]\n",
         "m.yaml:4:", "cannot be a label"},
        {"counters:\n  - name: a\n    event: x\n    labels: [timestamp_ns]\n",
         "m.yaml:4:", "cannot be a label"},
        {"counters:\n  - name: a\n    event: x\n    labels: [python_pid]\n",
         "m.yaml:4:", "cannot be a label"},
        {"counters:\n  - name: a\n    event: x\n    labels: [pool.name, pool_name]\n",
         "m.yaml:4:", "two labels named \"pool_name\""},
        {"counters:\n  - name: a\n    event: x\n    labels: [pool, {pool: pool_name}]\n",
         "m.yaml:4:", "two labels named \"pool\""},
        {"counters:\n  - name: a\n    event: x\n    labels: [{pool: pool_name, w: worker_id}]\n",
         "m.yaml:4:", "one {name: metadata_key} pair"},

        {"counters:\n  - name: a\n    event: \"x[\"\n", "m.yaml:3:", "unclosed"},
        {"counters:\n  - name: a.b\n    event: x\n  - name: a_b\n    event: y\n",
         "m.yaml:4:", "as the metric at line 2"},
        {"counters:\n  - name: c\n    event: x\ngauges:\n  - name: c_total\n    event: x\n"
         "    measurement: v\n",
         "m.yaml:5:", "c_total"},
        {"counters:\n  - name: h_count\n    event: x\nhistograms:\n  - name: h\n    event: x\n"
         "    measurement: v\n    buckets: [1]\n",
         "m.yaml:5:", "h_count"},
        {"counters:\n  - name: telecap_mine\n    event: x\n", "m.yaml:2:", "telecap's own"},
        {"counters:\n  - name: a\n    event: x\n    scale: 0\n", "m.yaml:4:", "scale"},
        {"counters:\n  - name: a\n    event: x\n    max_series: 0\n", "m.yaml:4:", "max_series"},
        {"histograms:\n  - name: h\n    event: x\n    measurement: d\n    buckets: [1]\n"
         "    labels: [le]\n",
         "m.yaml:6:", "reserved"},
        {"counters:\n  - name: a\n    event: x\n    buckets: [1]\n",
         "m.yaml:4:", "only histograms"},
        {"counters: {a: 1}\n", "m.yaml:1:", "must be a list"},
        {"foo: 1\n", "m.yaml:1:", "unknown key \"foo\""},
        {"counters:\n  - [\n", "m.yaml:", ""},  // a YAML syntax error
        {"- 1\n", "m.yaml:1:", "expected a map"},
    };
    for (const auto& c : cases) {
        const auto e = error_of(c.text);
        EXPECT_EQ(e.rfind(c.line, 0), 0u) << c.text << " -> " << e;
        EXPECT_NE(e.find(c.says), std::string::npos) << c.text << " -> " << e;
    }
}

TEST(MetricConfigTest, TheDefaultParsesAndCoversTheCatalog) {
    const auto cfg = default_metrics_config();
    std::vector<std::string> names;
    for (const auto& m : cfg.metrics) names.push_back(m.wire_name);
    for (const char* want : {"snakepit_events", "snakepit_python_call_duration_seconds",
                             "snakepit_tool_execution_duration_seconds",
                             "snakepit_python_exceptions", "snakepit_python_memory_rss_bytes",
                             "snakepit_python_cpu_ratio", "snakepit_pool_worker_spawned",
                             "snakepit_pool_worker_restarted", "snakepit_pool_worker_terminated"})
        EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

TEST(MetricConfigTest, TheDefaultSpeaksTelecapsOwnLabelNames) {
    // One vocabulary: the derived series say pool and worker, as telecap_* series do, though
    // the events' metadata keys are Snakepit's pool_name and worker_id.
    for (const auto& m : default_metrics_config().metrics)
        for (const auto& l : m.labels) {
            EXPECT_NE(l.name, "pool_name") << m.wire_name;
            EXPECT_NE(l.name, "worker_id") << m.wire_name;
            if (l.key == "pool_name") {
                EXPECT_EQ(l.name, "pool") << m.wire_name;
            }
            if (l.key == "worker_id") {
                EXPECT_EQ(l.name, "worker") << m.wire_name;
            }
        }
}

TEST(MetricConfigTest, SanitizeName) {
    EXPECT_EQ(sanitize_name("call.duration-ms", false), "call_duration_ms");
    EXPECT_EQ(sanitize_name("a..b", false), "a_b");
    EXPECT_EQ(sanitize_name("9lives", false), "_9lives");
    EXPECT_EQ(sanitize_name("ok_name", true), "ok_name");
    EXPECT_EQ(sanitize_name("\xc3\xa9t\xc3\xa9", true), "_t_");
}

}  // namespace
}  // namespace telecap::metrics
