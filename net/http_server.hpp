#pragma once
// A small HTTP/1.1 server for GET endpoints (the Prometheus /metrics), bounded whatever its
// clients do. One thread polls every connection; no client can hold it:
// - the request head (request line and headers) must arrive whole within head_deadline of
//   the connection's start (or of the previous reply on a kept-alive connection), whatever the
//   pace of its bytes: a client that trickles a header line every second is closed when the
//   deadline passes (cpp-httplib's timeouts are per read(), which such a client resets);
// - a head longer than max_head is answered 431 and the connection closed, before more of it
//   is read: a connection costs at most max_head bytes in, one reply out;
// - a reply must be taken whole within write_deadline;
// - at most max_connections at once: a new connection past it evicts the connection that has
//   waited longest for its request head (idle or slow), so a scraper always gets in; when
//   every connection is being answered, the new one is refused (closed);
// - stop() (and the destructor) closes every connection at once: stopping never waits on a
//   client.
// A request body is not read: a request that announces one is answered and the connection
// closed. Each connection closed by a limit is counted by reason; the first of each reason
// is logged (a warning), the others only counted.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "telecap/core/unique_fd.hpp"

namespace telecap::net {

struct http_server_options {
    std::size_t max_connections = 32;
    std::size_t max_head = 16 * 1024;  // bytes of the request line and headers
    std::chrono::milliseconds head_deadline{5000};
    std::chrono::milliseconds write_deadline{10000};
    // Names the server in its messages ("output prometheus").
    std::string name = "http server";
    // Optional, called on the server thread for each failure to serve (a handler that threw,
    // answered 500; a reply not taken within write_deadline; a connection refused at the
    // limit; accept failing other than by having nothing to accept), with its words. Must not
    // throw.
    std::function<void(const std::string& what)> on_failure;
};

// Why a connection was closed by the server rather than by its client.
enum class http_close_reason : std::uint8_t {
    idle,            // kept alive, no new request within head_deadline (normal)
    slow_head,       // a request head begun and not complete within head_deadline
    head_too_large,  // answered 431
    bad_request,     // answered 400 (not HTTP)
    slow_reader,     // a reply not taken within write_deadline
    evicted,         // waiting for its head when a new connection needed the room
    refused,         // a new connection while every connection was being answered
    count_
};
inline constexpr std::size_t http_close_reason_count =
    static_cast<std::size_t>(http_close_reason::count_);
std::string_view to_string(http_close_reason r) noexcept;

struct http_request {
    std::string_view method;
    std::string_view target;  // as sent ("/metrics", "/metrics?x=1")
    std::string_view path;    // target without its query
    // The value of a header (first occurrence, case-insensitive name), "" when absent.
    std::string_view header(std::string_view name) const noexcept;
    std::string_view head;  // the header lines (after the request line), for header()
};

struct http_response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class http_server {
public:
    // Runs on the server thread; must not throw (an exception is answered 500).
    using handler = std::function<http_response(const http_request&)>;

    // Binds host:port now (port 0: a free one, see port()) and serves from a thread of its
    // own, with every signal blocked. Throws std::runtime_error naming the address when it
    // cannot bind.
    http_server(const std::string& host, int port, handler fn, http_server_options o = {});
    ~http_server();  // stop()
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Closes the listening socket and every connection; returns when the thread has ended.
    // Idempotent.
    void stop() noexcept;

    int port() const noexcept { return port_; }
    std::uint64_t accepted() const noexcept { return accepted_.load(); }
    std::uint64_t requests() const noexcept { return requests_.load(); }
    std::uint64_t closed(http_close_reason r) const noexcept {
        return closed_[static_cast<std::size_t>(r)].load();
    }
    std::size_t connections() const noexcept { return open_.load(); }

private:
    struct connection;
    void run() noexcept;
    void close_counted(http_close_reason r) noexcept;
    void failed(const std::string& what) noexcept;

    handler fn_;
    http_server_options o_;
    unique_fd listen_fd_;
    unique_fd wake_fd_;  // eventfd: stop() wakes the thread
    int port_ = 0;
    std::atomic<std::uint64_t> accepted_{0}, requests_{0};
    std::atomic<std::size_t> open_{0};
    std::array<std::atomic<std::uint64_t>, http_close_reason_count> closed_{};
    std::array<bool, http_close_reason_count> said_{};  // server thread only
    std::thread thread_;
};

}  // namespace telecap::net
