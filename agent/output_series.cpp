#include "agent/output_series.hpp"

#include "outputs/http_handler.hpp"
#include "outputs/otlp_handler.hpp"
#include "outputs/prometheus_handler.hpp"
#include "outputs/unix_socket_handler.hpp"
#ifdef TELECAP_HAVE_GRPC
#include "bridge/grpc_output.hpp"
#endif

namespace telecap::agent {

namespace {

const exporting::export_counters* export_counters_of(const handler& h) {
    if (const auto* o = dynamic_cast<const otlp_logs_handler*>(&h)) return &o->counters();
    if (const auto* o = dynamic_cast<const otlp_metrics_handler*>(&h)) return &o->counters();
    if (const auto* o = dynamic_cast<const http_handler*>(&h)) return &o->counters();
    return nullptr;
}

}  // namespace

metrics::registry::collector_id add_output_series(metrics::registry& registry,
                                                  const attached_outputs& outputs) {
    if (outputs.empty()) return 0;
    // The handlers' counters are atomics: safe to read from the snapshot's thread.
    return registry.add_collector([outputs](std::vector<metrics::sample>& out) {
        for (const auto& [id, h] : outputs) {
            const auto add = [&](const char* name, std::uint64_t v, metrics::label_set extra = {},
                                 metrics::kind k = metrics::kind::counter) {
                metrics::label_set l{{"output", id}};
                l.insert(l.end(), extra.begin(), extra.end());
                out.push_back({name, std::move(l), k, static_cast<double>(v)});
            };
            add("telecap_output_events_dropped_total", h->events_dropped());
            if (const auto* u = dynamic_cast<const unix_socket_handler*>(h.get())) {
                add("telecap_unix_clients_accepted_total", u->clients_accepted());
                add("telecap_unix_clients_connected", u->clients_connected(), {},
                    metrics::kind::gauge);
                add("telecap_unix_events_sent_total", u->events_sent());
                add("telecap_unix_events_missed_total", u->events_missed());
                for (auto r : {unix_refusal::max_hosts, unix_refusal::fds})
                    add("telecap_unix_clients_refused_total", u->clients_refused(r),
                        {{"reason", std::string(to_string(r))}});
                for (auto d : {unix_drop::backlog, unix_drop::total_backlog})
                    add("telecap_unix_clients_dropped_total", u->clients_dropped(d),
                        {{"reason", std::string(to_string(d))}});
#ifdef TELECAP_HAVE_GRPC
            } else if (const auto* g = dynamic_cast<const bridge::grpc_output*>(h.get())) {
                // Totals over every stream, closed ones included; then each open stream's own.
                const auto t = g->sum();
                add("telecap_grpc_streams_accepted_total", t.streams_accepted);
                add("telecap_grpc_streams_active", t.streams_active, {}, metrics::kind::gauge);
                add("telecap_grpc_streams_refused_total", t.streams_refused);
                add("telecap_grpc_events_sent_total", t.sent);
                add("telecap_grpc_events_dropped_total", t.dropped_queue_full,
                    {{"reason", "queue_full"}});
                add("telecap_grpc_events_dropped_total", t.dropped_closed, {{"reason", "closed"}});
                add("telecap_grpc_events_removed_total", t.disabled, {{"reason", "disabled"}});
                add("telecap_grpc_events_removed_total", t.sampled, {{"reason", "sampled"}});
                add("telecap_grpc_events_removed_total", t.filtered, {{"reason", "filtered"}});
                add("telecap_grpc_events_held_total", t.held);
                add("telecap_grpc_host_events_skipped_total", t.host_events_skipped);
                add("telecap_grpc_controls_total", t.controls_applied, {{"result", "applied"}});
                add("telecap_grpc_controls_total", t.controls_rejected, {{"result", "rejected"}});
                add("telecap_grpc_controls_withdrawn_total", t.controls_withdrawn);
                for (const auto& s : g->streams()) {
                    if (!s.open) continue;
                    const std::string id = std::to_string(s.id);
                    add("telecap_grpc_stream_events_sent_total", s.sent, {{"stream", id}});
                    for (auto d : {bridge::stream_drop::queue_full, bridge::stream_drop::closed})
                        add("telecap_grpc_stream_events_dropped_total",
                            s.dropped[static_cast<std::size_t>(d)],
                            {{"stream", id}, {"reason", std::string(bridge::to_string(d))}});
                    add("telecap_grpc_stream_queued", s.queued, {{"stream", id}},
                        metrics::kind::gauge);
                }
#endif
            } else if (const auto* p = dynamic_cast<const prometheus_handler*>(h.get())) {
                add("telecap_prometheus_scrapes_total", p->scrapes());
                for (std::size_t r = 0; r < net::http_close_reason_count; ++r) {
                    const auto reason = static_cast<net::http_close_reason>(r);
                    add("telecap_prometheus_connections_closed_total",
                        p->connections_closed(reason),
                        {{"reason", std::string(net::to_string(reason))}});
                }
            } else if (const auto* c = export_counters_of(*h)) {
                add("telecap_export_requests_total", c->requests.load());
                add("telecap_export_ok_total", c->ok.load());
                add("telecap_export_retried_total", c->retried.load());
                for (std::size_t r = 0; r < exporting::failure_reason_count; ++r) {
                    const auto reason = static_cast<exporting::failure_reason>(r);
                    add("telecap_export_failed_total", c->failed_count(reason),
                        {{"reason", std::string(exporting::to_string(reason))}});
                }
                add("telecap_export_sent_total", c->items_sent.load());
                for (std::size_t r = 0; r < exporting::drop_reason_count; ++r) {
                    const auto reason = static_cast<exporting::drop_reason>(r);
                    add("telecap_export_dropped_total", c->dropped_count(reason),
                        {{"reason", std::string(exporting::to_string(reason))}});
                }
            }
        }
    });
}

}  // namespace telecap::agent
