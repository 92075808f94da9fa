#pragma once
// The control socket: a Unix stream socket (mode 0600) served by the event loop, one JSON
// request per line in, one JSON reply per line out (docs/control.md). Never blocks the loop,
// and no client can lock the operator out:
// - every fd is non-blocking; a request longer than max_request gets an error and the client
//   is disconnected, without more of it being buffered;
// - a client that leaves its replies unread is not read from (nor answered) until it does, so
//   what it leaves unread stays near one reply, and it is disconnected when it reads nothing
//   for stall_limit;
// - a client must send a whole request line within idle_limit of connecting (or of its last
//   reply), whatever the pace of its bytes: else it gets an error and is disconnected;
// - past max_clients a new client evicts the client that has waited longest for a request
//   (it gets an error line first); only when every client has replies pending is the new one
//   refused (an error, then disconnected).
// Each disconnection by a limit is counted by reason, logged once per reason, and reported
// to on_close (telecap_control_clients_closed_total).

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/unix_listen.hpp"
#include "loop/event_loop.hpp"

namespace telecap::control {

// Why the server disconnected a client.
enum class close_reason : std::uint8_t {
    request_size,    // a request line longer than max_request
    stalled_reader,  // replies left unread for stall_limit
    idle,            // no whole request line within idle_limit
    evicted,         // waited longest for a request when a new client needed the room
    refused,         // a new client while every client had replies pending
    count_
};
inline constexpr std::size_t close_reason_count = static_cast<std::size_t>(close_reason::count_);
std::string_view to_string(close_reason r) noexcept;

// A stream that a request turns its connection into (`ctl tap`): from then on the server reads
// nothing more from the client but its hang-up, and writes what the source gives whenever the
// client can take it. No idle or stall limit applies to a stream, nor eviction: the source
// bounds what it holds and drops the rest itself.
class stream_source {
public:
    virtual ~stream_source() = default;
    // Called once, before any take(). The source calls fn (from any thread) when it has
    // something after a take() that found nothing, or when it ends; fn posts to the loop.
    virtual void set_waker(std::function<void()> fn) = 0;
    // Appends what is ready to `out`; true when the stream has ended and nothing is left.
    virtual bool take(std::string& out) = 0;
    // The client or the server is gone: no more take().
    virtual void close() = 0;
    // What was taken but never written, told just before close() (the client gone, or
    // telecap stopping): the source counts what it held as lost, not sent.
    virtual void unsent(std::string_view /*rest*/) {}
};

struct stream_reply {
    std::string reply;                      // the request's reply line, without its newline
    std::shared_ptr<stream_source> source;  // null: refused; the connection stays as it was
};

struct server_options {
    std::size_t max_clients = 16;
    std::size_t max_request = 64 * 1024;  // bytes of one request line
    std::chrono::milliseconds stall_limit{5000};
    std::chrono::milliseconds idle_limit{10000};
    int backlog = 16;
    // Called on the loop thread for each client disconnected by a limit (a counter).
    std::function<void(close_reason)> on_close;
    // Asked first for each request line (loop thread): nullopt when the request does not open
    // a stream (then the handler answers it).
    std::function<std::optional<stream_reply>(std::string_view request)> open_stream;
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
    std::uint64_t refused() const noexcept { return closed(close_reason::refused); }
    // Disconnected by a limit, refusals not included.
    std::uint64_t disconnected() const noexcept { return disconnected_; }
    std::uint64_t closed(close_reason r) const noexcept {
        return closed_[static_cast<std::size_t>(r)];
    }
    std::size_t clients() const noexcept { return clients_.size(); }
    // Clients whose connection is a stream now.
    std::size_t streams() const noexcept { return streams_; }
    // telecap stopping, the loop no longer turning: each stream's client is given what its
    // source still holds (blocking writes, all of them until `deadline`), so a tap that reads
    // gets the events of the run's last moments. What does not go in time is dropped with
    // the stream at destruction (counted by the source).
    void drain_streams(std::chrono::steady_clock::time_point deadline);

private:
    struct client;
    void on_accept();
    void on_readable(int fd);
    void answer(client& c);
    // Writes what `c.out` holds from out_off until it is all written, the socket is full, or
    // the client is gone.
    enum class sent : std::uint8_t { all, full, gone };
    sent send_out(client& c);
    bool flush(client& c);  // false: the client is gone
    void check_stalled(int fd);
    // A stream client: writes what its source has, for as long as the client takes it.
    void pump(int fd);
    void start_stream(client& c, std::shared_ptr<stream_source> src);
    void check_idle(int fd);
    bool evict_one();  // false: every client has replies pending
    void count(close_reason r);
    // Disconnects; a limit's reason is counted, and `goodbye` (an error line) sent first.
    void drop(int fd, std::optional<close_reason> why = std::nullopt,
              std::string_view goodbye = {});

    event_loop& loop_;
    std::string path_;
    handler fn_;
    server_options o_;
    unix_listening listening_;
    std::map<int, std::unique_ptr<client>> clients_;
    event_loop::timer_id accept_retry_ = 0;
    std::uint64_t accepted_ = 0, disconnected_ = 0;
    std::size_t streams_ = 0;
    std::shared_ptr<server*> self_;  // what a stream's waker posts through; reset when gone
    std::array<std::uint64_t, close_reason_count> closed_{};
    std::array<bool, close_reason_count> said_{};
};

}  // namespace telecap::control
