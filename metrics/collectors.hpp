#pragma once
// Collectors that put counters kept elsewhere into a registry: the output streams' (written,
// dropped, errors) and the process's own (CPU time, peak memory, open fds). And the registry
// as one JSON object, the "metrics" section of --stats.

#include <string>
#include <vector>

#include "telecap/capture/stats.hpp"
#include "telecap/io/passthrough.hpp"
#include "telecap/io/streams.hpp"
#include "telecap/metrics/registry.hpp"

namespace telecap::metrics {

// telecap_stream_{written,dropped}_{lines,bytes}_total, telecap_stream_write_errors_total,
// telecap_stream_reopens_total and the telecap_stream_buffered_bytes gauge, labelled
// {stream="stdout"|"stderr"|PATH}. The set must outlive the collector (remove it first).
registry::collector_id add_stream_collector(registry& r, const stream_set& streams);

// The pass-through's alterations, summed over the muxes (which must outlive the collector):
// telecap_long_lines_split_total (a long line split so that the lines waiting for it could go
// out) and telecap_partial_lines_total (a last line without a newline that got one).
registry::collector_id add_passthrough_collector(registry& r,
                                                 std::vector<const passthrough_mux*> muxes);

// The series of the counters in `stats` that `scope` counts (capture_counters names them),
// each labelled `labels` (and {reason} for the counters by reason).
void append_capture_series(std::vector<sample>& out, const capture_stats& stats,
                           const label_set& labels, counter_scope scope);

// One capture's counters (parse's; run's workers have their own, labelled per worker): the
// pipeline's and the queue's series of capture_counters. The stats must outlive the collector.
registry::collector_id add_capture_collector(registry& r, const capture_stats& stats);

// process_cpu_seconds_total (user + system, all threads; children not included),
// process_max_resident_memory_bytes and process_open_fds, as Prometheus' client libraries
// name them.
registry::collector_id add_process_collector(registry& r);

// telecap's CPU time (user + system, all threads, seconds) and resident memory now (bytes,
// /proc/self/statm); -1 for what cannot be read.
struct process_usage {
    double cpu_seconds = -1;
    double rss_bytes = -1;
};
process_usage read_process_usage();

// {"name{label=\"value\",...}": value, ...} in snapshot order (sorted): the series keys are
// Prometheus' text format, so a reader can grep one series by the name it knows.
std::string to_json(const std::vector<sample>& samples);

}  // namespace telecap::metrics
