#pragma once
// The outputs' own counters as live series of the registry, labelled with the output's id
// (its key under "outputs" in --stats): what the metrics exporters serve about themselves.

#include "agent/options.hpp"
#include "metrics/registry.hpp"

namespace telecap::agent {

// telecap_output_events_dropped_total{output} for every output; for Unix socket outputs
// telecap_unix_*; for the network outputs (otlp, otlp-logs, http) telecap_export_requests_total,
// _ok_total, _retried_total, _failed_total{reason}, _sent_total and _dropped_total{reason};
// for prometheus telecap_prometheus_scrapes_total. The collector shares the outputs.
// Returns the collector's id (0 when there are no outputs).
metrics::registry::collector_id add_output_series(metrics::registry& registry,
                                                  const attached_outputs& outputs);

}  // namespace telecap::agent
