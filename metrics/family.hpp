#pragma once
// The data model every metrics exporter reads: a consistent snapshot of metric families
// (derived metrics and telecap's own series alike), independent of any wire format.
// Prometheus text, OpenMetrics and OTLP are renderings of a std::vector<family>.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "telecap/metrics/registry.hpp"

namespace telecap::metrics {

enum class family_type { counter, gauge, histogram };

struct point {
    label_set labels;  // sorted by name; values are raw (any bytes): renderers escape them
    double value = 0;  // counter and gauge
    // Histograms: bucket_counts[i] counts values in (bounds[i-1], bounds[i]] (not cumulative);
    // one more entry than bounds: the last is (bounds.back(), +Inf).
    std::vector<std::uint64_t> bucket_counts;
    double sum = 0;
    std::uint64_t count = 0;
    std::int64_t start_ns = 0;  // when the series began (OTLP startTimeUnixNano)
};

struct family {
    std::string name;         // the metric's own name, e.g. "snakepit_call_duration_seconds";
                              // counters carry no "_total" (renderers add it where due)
    std::string description;  // HELP text
    std::string unit;         // UCUM-ish unit, e.g. "s", "By", "1" (may be empty)
    family_type type = family_type::counter;
    std::vector<double> bounds;  // histograms: ascending explicit bounds
    std::vector<point> points;   // sorted by labels
};

// What an exporter calls to get the families to send, from any thread. The result is a copy:
// it never changes under the caller.
using family_source = std::function<std::vector<family>()>;

// Registry samples (telecap's own series) as families: counters named "..._total" lose the
// suffix (it is a rendering detail), each family gets its HELP text from a table of known
// names (a generic one otherwise).
std::vector<family> families_from_samples(const std::vector<sample>& samples);

}  // namespace telecap::metrics
