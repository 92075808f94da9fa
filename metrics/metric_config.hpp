#pragma once
// The metrics config (`--metrics FILE`, `metrics:` in a run config): which metrics telecap
// derives from events. The shape of the seeds' config-driven metrics package (service_name,
// then counters/histograms/gauges lists of {name, description, unit, capture}), plus what
// deriving from events needs: event (a glob), measurement, scale, buckets, labels, max_series.
// docs/metrics.md is the contract.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace telecap::metrics {

enum class metric_kind { counter, histogram, gauge };
std::string_view to_string(metric_kind k) noexcept;

// A label: a metadata key of the event, or "$event" for the event's dotted name; named after
// the key, or as the config says ({pool: pool_name}).
struct label_def {
    std::string key;
    std::string name;  // the label's name on the wire: the key made a valid label name
};

inline constexpr std::string_view event_name_key = "$event";
inline constexpr std::size_t default_max_series = 2000;
inline constexpr std::size_t max_labels = 16;  // per metric

struct metric_def {
    metric_kind kind = metric_kind::counter;
    std::string name;       // as configured
    std::string wire_name;  // a valid Prometheus name, without "_total" for counters
    std::string description;
    std::string unit;
    bool capture = true;      // false: a silent no-op (not derived, not exported)
    std::string event;        // glob on the normalized dotted name
    std::string measurement;  // empty: counters count 1 per event
    double scale = 1;
    std::vector<double> buckets;  // histograms: strictly increasing, finite
    std::vector<label_def> labels;
    std::size_t max_series = default_max_series;
    int line = 0;  // where it was defined (1-based), for messages
};

struct metrics_config {
    std::string service_name = "telecap";
    std::vector<metric_def> metrics;
};

// "FILE:LINE: what is wrong".
class metrics_config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// `source` names the text in messages (a path, or "default metrics").
metrics_config parse_metrics_config(std::string_view yaml, const std::string& source);
metrics_config load_metrics_config(const std::string& path);

// The bundled default for the Snakepit catalog (used when no file is given).
std::string_view default_metrics_yaml() noexcept;
metrics_config default_metrics_config();

// `name` as a valid Prometheus metric or label name: every other character becomes '_', runs
// of '_' collapse, a leading digit gets a '_' before it.
std::string sanitize_name(std::string_view name, bool label);

}  // namespace telecap::metrics
