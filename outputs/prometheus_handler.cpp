#include "outputs/prometheus_handler.hpp"

#include <charconv>

#include "metrics/prometheus_text.hpp"

namespace telecap {

std::optional<std::string> parse_prometheus_address(std::string_view arg, prometheus_address& out) {
    out = {};
    if (arg.empty()) return std::nullopt;
    std::string_view port_text = arg;
    if (arg.front() == '[') {  // [::1]:9464
        const auto close = arg.find(']');
        if (close == std::string_view::npos || close + 1 >= arg.size() || arg[close + 1] != ':')
            return "expected [IPV6]:PORT, not \"" + std::string(arg) + "\"";
        out.host = std::string(arg.substr(1, close - 1));
        port_text = arg.substr(close + 2);
    } else if (const auto colon = arg.rfind(':'); colon != std::string_view::npos) {
        out.host = std::string(arg.substr(0, colon));
        port_text = arg.substr(colon + 1);
        if (out.host.empty() || out.host.find(':') != std::string::npos)
            return "expected HOST:PORT (an IPv6 host in brackets), not \"" + std::string(arg) +
                   "\"";
    }
    int port = -1;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port < 0 || port > 65535)
        return "the port must be a number from 0 to 65535, not \"" + std::string(port_text) + "\"";
    out.port = port;
    return std::nullopt;
}

prometheus_handler::prometheus_handler(const prometheus_address& at,
                                       metrics::family_source families,
                                       net::http_server_options limits)
    : families_(std::move(families)), host_(at.host) {
    limits.name = "output prometheus";
    limits.on_failure = [failures = failures_](const std::string& what) {
        try {
            failures->add(what);
        } catch (...) {  // out of memory: nothing to say it with
        }
    };
    server_ = std::make_unique<net::http_server>(
        at.host, at.port,
        [this](const net::http_request& req) {
            net::http_response res;
            if (req.path == "/metrics") {
                const auto format = metrics::negotiate(req.header("Accept"));
                scrapes_.fetch_add(1, std::memory_order_relaxed);  // first: a scrape counts itself
                metrics::render(res.body, families_(), format);
                scrape_bytes_.fetch_add(res.body.size(), std::memory_order_relaxed);
                res.content_type = format == metrics::exposition::openmetrics_100
                                       ? std::string(metrics::openmetrics_content_type)
                                       : std::string(metrics::text_004_content_type);
            } else if (req.path == "/") {
                res.body = "telecap: metrics are at /metrics\n";
            } else {
                not_found_.fetch_add(1, std::memory_order_relaxed);
                res.status = 404;
                res.body = "not found: metrics are at /metrics\n";
            }
            return res;
        },
        std::move(limits));
    port_ = server_->port();
}

prometheus_handler::~prometheus_handler() { server_->stop(); }

std::string prometheus_handler::address() const {
    const bool v6 = host_.find(':') != std::string::npos;
    return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

std::string prometheus_handler::counters_json() const {
    std::string out =
        "{\"port\":" + std::to_string(port_) + ",\"scrapes\":" + std::to_string(scrapes_.load()) +
        ",\"scrape_bytes\":" + std::to_string(scrape_bytes_.load()) +
        ",\"not_found\":" + std::to_string(not_found_.load()) + ",\"connections_closed\":{";
    for (std::size_t r = 0; r < net::http_close_reason_count; ++r) {
        const auto reason = static_cast<net::http_close_reason>(r);
        out += (r ? ",\"" : "\"") + std::string(net::to_string(reason)) +
               "\":" + std::to_string(server_->closed(reason));
    }
    return out + "}}";
}

}  // namespace telecap
