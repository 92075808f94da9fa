#pragma once
// -o prometheus[:HOST:PORT]: serves GET /metrics (text 0.0.4, or OpenMetrics 1.0 when the
// scraper's Accept asks for it) from its own HTTP threads. It reads a family_source (the
// derived metrics and telecap's own series) per scrape; the events themselves are recorded
// by the metrics deriver, so handle() does nothing and a scrape never waits on capture.
// The HTTP server is net/http_server: a deadline on each request head, a cap on its size and
// on the connections, evictions; see docs/metrics.md "Limits".

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "telecap/capture/handler.hpp"
#include "telecap/core/failure_note.hpp"
#include "telecap/metrics/family.hpp"
#include "telecap/net/http_server.hpp"

namespace telecap {

inline constexpr std::string_view prometheus_default_host = "127.0.0.1";
inline constexpr int prometheus_default_port = 9464;  // OpenTelemetry's Prometheus exporter's

struct prometheus_address {
    std::string host = std::string(prometheus_default_host);
    int port = prometheus_default_port;
};
// "", "HOST:PORT", "[V6]:PORT" or "PORT"; an error message or nullopt.
std::optional<std::string> parse_prometheus_address(std::string_view arg, prometheus_address& out);

class prometheus_handler final : public handler {
public:
    // Binds now (throws std::runtime_error naming the address when it cannot: in use, no such
    // host), then serves from a thread of its own. Port 0 takes a free one (see port()).
    // `limits`: the server's bounds (tests shorten them).
    prometheus_handler(const prometheus_address& at, metrics::family_source families,
                       net::http_server_options limits = {});
    ~prometheus_handler() override;

    void handle(const event&) override {}
    bool takes_events() const override { return false; }
    std::string counters_json() const override;
    // Failures to serve a scrape (net::http_server_options::on_failure: a reply that failed
    // (500), one not taken in time, a connection refused at the limit, accept failing).
    std::uint64_t errors() const override { return failures_->count(); }
    std::string last_error() const override { return failures_->last(); }

    int port() const noexcept { return port_; }
    // "HOST:PORT" (brackets around an IPv6 host) with the port actually bound.
    std::string address() const;
    std::uint64_t scrapes() const noexcept { return scrapes_.load(); }
    // Connections the server closed, by reason (net::http_close_reason).
    std::uint64_t connections_closed(net::http_close_reason r) const noexcept {
        return server_->closed(r);
    }

private:
    metrics::family_source families_;
    std::string host_;
    // Written by the server thread (on_failure), read by any.
    std::shared_ptr<failure_note> failures_ = std::make_shared<failure_note>();
    std::unique_ptr<net::http_server> server_;
    int port_ = 0;
    std::atomic<std::uint64_t> scrapes_{0}, scrape_bytes_{0}, not_found_{0};
};

}  // namespace telecap
