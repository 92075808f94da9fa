#pragma once
// -o prometheus[:HOST:PORT]: serves GET /metrics (text 0.0.4, or OpenMetrics 1.0 when the
// scraper's Accept asks for it) from its own HTTP threads. It reads a family_source (the
// derived metrics and telecap's own series) per scrape; the events themselves are recorded
// by the metrics deriver, so handle() does nothing and a scrape never waits on capture.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "telecap/capture/handler.hpp"
#include "telecap/metrics/family.hpp"

namespace httplib {
class Server;
}

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
    prometheus_handler(const prometheus_address& at, metrics::family_source families);
    ~prometheus_handler() override;

    void handle(const event&) override {}
    bool takes_events() const override { return false; }
    std::string counters_json() const override;

    int port() const noexcept { return port_; }
    std::uint64_t scrapes() const noexcept { return scrapes_.load(); }

private:
    metrics::family_source families_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    int port_ = 0;
    std::atomic<std::uint64_t> scrapes_{0}, scrape_bytes_{0}, not_found_{0};
};

}  // namespace telecap
