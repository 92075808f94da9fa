#pragma once
// Prometheus text exposition 0.0.4 and OpenMetrics 1.0 from metric families.
// HELP and TYPE once per family before its samples; label values escaped (\\, \", \n) and
// valid UTF-8; counters as name_total; histograms as cumulative name_bucket{le=...} ending in
// le="+Inf" (equal to name_count), then name_sum and name_count; no timestamps (they would
// turn off Prometheus's staleness handling).

#include <string>
#include <string_view>
#include <vector>

#include "telecap/metrics/family.hpp"

namespace telecap::metrics {

enum class exposition { text_004, openmetrics_100 };

inline constexpr std::string_view text_004_content_type =
    "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view openmetrics_content_type =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// Which format a scraper's Accept header asks for: OpenMetrics when it names it.
exposition negotiate(std::string_view accept) noexcept;

// Appends the families (sorted by name, each name once) to `out`.
void render(std::string& out, const std::vector<family>& families, exposition format);

// A number as Prometheus writes it: shortest round-trip form, +Inf, -Inf, NaN.
void append_number(std::string& out, double v);

}  // namespace telecap::metrics
