#include "outputs/prometheus_handler.hpp"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <stdexcept>

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
                                       metrics::family_source families)
    : families_(std::move(families)), server_(std::make_unique<httplib::Server>()) {
    auto& s = *server_;
    // Two threads serve scrapes; a scraper that stalls is cut off by the timeouts.
    s.new_task_queue = [] { return new httplib::ThreadPool(2); };
    s.set_read_timeout(5, 0);
    s.set_write_timeout(10, 0);
    // Short: stopping waits for kept-alive connections (a scraper reconnects at no real cost).
    s.set_keep_alive_timeout(1);
    // httplib's default adds SO_REUSEPORT, with which a second telecap would bind the same
    // port and take half of the scrapes: only SO_REUSEADDR (a restart rebinds at once).
    s.set_socket_options([](int sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    s.set_payload_max_length(64 * 1024);
    s.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
        const auto format = metrics::negotiate(req.get_header_value("Accept"));
        scrapes_.fetch_add(1, std::memory_order_relaxed);  // first: a scrape counts itself
        std::string body;
        metrics::render(body, families_(), format);
        scrape_bytes_.fetch_add(body.size(), std::memory_order_relaxed);
        res.set_content(std::move(body), format == metrics::exposition::openmetrics_100
                                             ? std::string(metrics::openmetrics_content_type)
                                             : std::string(metrics::text_004_content_type));
    });
    s.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("telecap: metrics are at /metrics\n", "text/plain; charset=utf-8");
    });
    s.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
        if (res.status == 404) not_found_.fetch_add(1, std::memory_order_relaxed);
    });
    const bool bound = at.port == 0 ? (port_ = s.bind_to_any_port(at.host), port_ > 0)
                                    : (port_ = at.port, s.bind_to_port(at.host, at.port));
    if (!bound)
        throw std::runtime_error("output prometheus: cannot listen on " + at.host + ":" +
                                 std::to_string(at.port) +
                                 " (in use, or not an address of this machine)");
    // The serving threads must not take the signals meant for telecap's loop or its host.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // stop() does nothing before the server runs: wait for it, or the destructor could hang.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_->is_running() && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
}

prometheus_handler::~prometheus_handler() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
}

std::string prometheus_handler::counters_json() const {
    return "{\"port\":" + std::to_string(port_) +
           ",\"scrapes\":" + std::to_string(scrapes_.load()) +
           ",\"scrape_bytes\":" + std::to_string(scrape_bytes_.load()) +
           ",\"not_found\":" + std::to_string(not_found_.load()) + "}";
}

}  // namespace telecap
