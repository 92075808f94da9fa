#include "metrics/family.hpp"

#include <algorithm>
#include <string_view>

#include "capture/stats.hpp"

namespace telecap::metrics {

namespace {

struct help_entry {
    std::string_view name;
    std::string_view help;
};

// HELP texts of telecap's own series (names as the registry has them); the capture counters'
// are in capture_counters.
constexpr help_entry help_table[] = {
    {"process_cpu_seconds_total", "CPU time telecap used, user and system, all threads."},
    {"process_max_resident_memory_bytes", "Peak resident memory of telecap."},
    {"process_open_fds", "File descriptors telecap has open."},
    {"telecap_line_budget_cuts_total", "Partial lines cut short because the line budget ran out."},
    {"telecap_line_budget_used_bytes", "Bytes of partial lines held for all workers together."},
    {"telecap_read_lingers_total",
     "Loop turns that waited a moment for small, frequent writes to pile up before reading."},
    {"telecap_reloads_total", "Config reloads (SIGHUP, ctl reload), by result."},
    {"telecap_metrics_missing_label_total",
     "Events recorded for a derived metric without a label's metadata key (the label is empty)."},
    {"telecap_metrics_cut_label_total",
     "Label values of a derived metric cut at 1024 bytes (the rest of the value is not kept)."},
    {"telecap_metrics_overflow_total",
     "Measurements recorded in a derived metric's overflow series (past its max_series)."},
    {"telecap_metrics_series", "Series of a derived metric."},
    {"telecap_metrics_skipped_total", "Events a derived metric could not record, by reason."},
    {"telecap_output_events_dropped_total", "Events an output could not deliver."},
    {"telecap_prometheus_scrapes_total", "Scrapes served by a Prometheus output."},
    {"telecap_control_clients_closed_total",
     "Control socket clients disconnected by a limit (idle, evicted, too large, unread replies, "
     "refused), by reason."},
    {"telecap_prometheus_connections_closed_total",
     "Connections a Prometheus output closed by a limit (slow, idle, too large, evicted), by "
     "reason."},
    {"telecap_export_requests_total", "HTTP requests made by a network output."},
    {"telecap_export_ok_total", "Exports a receiver accepted."},
    {"telecap_export_retried_total", "Exports that failed retryably and were tried again."},
    {"telecap_export_failed_total", "Exports given up, by reason."},
    {"telecap_export_sent_total", "Events (or metric points) a network output delivered."},
    {"telecap_export_dropped_total",
     "Events (or metric points) a network output dropped, by reason."},
    {"telecap_queue_depth", "Events queued for the outputs."},
    {"telecap_stream_buffered_bytes", "Bytes waiting to be written to an output stream."},
    {"telecap_stream_dropped_bytes_total", "Bytes an output stream could not write, dropped."},
    {"telecap_stream_dropped_lines_total", "Lines an output stream could not write, dropped."},
    {"telecap_stream_reopens_total",
     "Times an output file was reopened: after a failure, a rotation, or on request."},
    {"telecap_stream_write_errors_total", "Write errors of an output stream."},
    {"telecap_stream_written_bytes_total", "Bytes written to an output stream."},
    {"telecap_stream_written_lines_total", "Lines written to an output stream."},
    {"telecap_tap_open", "ctl tap streams open."},
    {"telecap_tap_opened_total", "ctl tap streams opened."},
    {"telecap_tap_events_total", "Events handed to ctl tap clients, all taps."},
    {"telecap_tap_dropped_total",
     "Events (and, with --passthrough, lines) ctl taps dropped (a client behind), all taps."},
    {"telecap_tap_client_events_total", "Events handed to one open ctl tap client."},
    {"telecap_tap_client_dropped_total",
     "Events (and, with --passthrough, lines) one open ctl tap dropped (its client behind)."},
    {"telecap_tap_passthrough_lines_dropped_total",
     "Pass-through lines the run could not carry to the ctl taps that asked for them."},
    {"telecap_unix_clients_accepted_total", "Hosts accepted on a Unix socket output."},
    {"telecap_unix_clients_connected", "Hosts connected to a Unix socket output."},
    {"telecap_unix_clients_dropped_total", "Hosts cut off from a Unix socket output, by reason."},
    {"telecap_unix_clients_refused_total", "Hosts refused by a Unix socket output, by reason."},
    {"telecap_unix_events_missed_total", "Events a cut-off host of a Unix socket output missed."},
    {"telecap_unix_events_sent_total", "Events sent to the hosts of a Unix socket output."},
    {"telecap_worker_restarts_total", "Restarts of a worker."},
    {"telecap_grpc_client_calls_total",
     "Calls telecap started to a gRPC worker's StreamTelemetry (the first and every retry)."},
    {"telecap_grpc_client_connects_total", "Calls to a gRPC worker that the worker answered."},
    {"telecap_grpc_client_reconnects_total",
     "Calls to a gRPC worker started again after a stream ended or failed."},
    {"telecap_grpc_client_stream_ends_total",
     "Streams from a gRPC worker that ended, by result (ok: the worker ended it; failed: an "
     "error, including a worker that was not listening)."},
    {"telecap_grpc_client_events_received_total", "Events received from a gRPC worker."},
    {"telecap_grpc_client_read_pauses_total",
     "Times reading a gRPC worker waited for the loop to take what was read (flow control)."},
    {"telecap_grpc_client_controls_sent_total", "TelemetryControl messages sent to a gRPC worker."},
    {"telecap_grpc_client_connected", "1 while telecap's stream from a gRPC worker is open."},
    {"telecap_workers_up", "Workers running."},
};

std::string help_for(const std::string& name) {
    for (const auto& c : capture_counters)
        if (c.series == name) return std::string(c.help);
    for (const auto& e : help_table)
        if (e.name == name) return std::string(e.help);
    return "telecap's " + name + ".";
}

}  // namespace

std::vector<family> families_from_samples(const std::vector<sample>& samples) {
    std::vector<family> out;
    for (const auto& s : samples) {
        std::string name = s.name;
        const bool counter = s.type == kind::counter;
        if (counter && name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0)
            name.resize(name.size() - 6);
        if (out.empty() || out.back().name != name) {
            family f;
            f.name = name;
            f.description = help_for(s.name);
            f.type = counter ? family_type::counter : family_type::gauge;
            if (name.size() > 6 && name.compare(name.size() - 6, 6, "_bytes") == 0) f.unit = "By";
            if (name.size() > 8 && name.compare(name.size() - 8, 8, "_seconds") == 0) f.unit = "s";
            out.push_back(std::move(f));
        }
        point p;
        p.labels = s.labels;
        p.value = s.value;
        out.back().points.push_back(std::move(p));
    }
    // A snapshot is sorted by the registry's names; without "_total" the order can change.
    std::stable_sort(out.begin(), out.end(),
                     [](const family& a, const family& b) { return a.name < b.name; });
    return out;
}

}  // namespace telecap::metrics
