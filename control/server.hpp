#pragma once
// The control socket: a Unix stream socket (mode 0600) served by the event loop, one JSON
// request per line in, one JSON reply per line out (docs/control.md). Never blocks the loop:
// every fd is non-blocking; a request longer than max_request gets an error and the client is
// disconnected; a client that leaves its replies unread is not read from (nor answered) until
// it does, so what it leaves unread stays near one reply, and it is disconnected when it reads
// nothing for stall_limit; past max_clients a new client gets an error and is disconnected.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/unix_listen.hpp"
#include "loop/event_loop.hpp"

namespace telecap::control {

struct server_options {
    std::size_t max_clients = 16;
    std::size_t max_request = 64 * 1024;  // bytes of one request line
    std::chrono::milliseconds stall_limit{5000};
    int backlog = 16;
};

class server {
public:
    // Runs on the loop thread: the reply (one JSON object, no newline) to one request line.
    using handler = std::function<std::string(std::string_view request)>;

    // Listens at `path` (a stale socket replaced, a live one refused). Throws
    // std::runtime_error("cannot listen on the control socket PATH: why").
    server(event_loop& loop, std::string path, handler fn, server_options o = {});
    ~server();  // disconnects every client and removes the socket file if it is still ours
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    std::uint64_t accepted() const noexcept { return accepted_; }
    std::uint64_t refused() const noexcept { return refused_; }            // past max_clients
    std::uint64_t disconnected() const noexcept { return disconnected_; }  // by a limit
    std::size_t clients() const noexcept { return clients_.size(); }

private:
    struct client;
    void on_accept();
    void on_readable(int fd);
    void answer(client& c);
    bool flush(client& c);  // false: the client is gone
    void check_stalled(int fd);
    void drop(int fd, bool by_limit);

    event_loop& loop_;
    std::string path_;
    handler fn_;
    server_options o_;
    unix_listening listening_;
    std::map<int, std::unique_ptr<client>> clients_;
    event_loop::timer_id accept_retry_ = 0;
    std::uint64_t accepted_ = 0, refused_ = 0, disconnected_ = 0;
};

}  // namespace telecap::control
