#pragma once
// Output: events as JSON lines (the output contract, capture/event_json.hpp) streamed to every
// host connected to a Unix stream socket that telecap listens on (`-o unix:PATH`).
//
// - The socket file is created with mode 0600. A stale socket file at PATH (nobody listening)
//   is replaced; a live one (a connect succeeds), or anything that is not a socket, is an error.
//   The file is unlinked at destruction (if it is still ours).
// - Hosts connect and leave at any time; a host receives the events handled after it was
//   accepted, always as whole lines.
// - handle() never blocks on a host: it formats the line once and appends it to each host's
//   backlog. A backlog is bounded (max_backlog bytes per host): an event that does not fit is
//   dropped for that host as a whole (never a partial line) and counted, per host and in total;
//   the capture and the other hosts are not slowed.
// - A small I/O thread (poll over the listening socket, the hosts and an eventfd) accepts hosts,
//   writes their backlogs (non-blocking, MSG_NOSIGNAL) and removes hosts that hang up or fail.
//   handle() wakes it once 64 KiB are waiting, flush() (the dispatcher running dry) whenever
//   anything is. At destruction it gets up to drain_timeout to hand over what is queued.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

#include "telecap/capture/handler.hpp"
#include "telecap/core/unique_fd.hpp"

namespace telecap {

struct unix_socket_options {
    static constexpr std::size_t default_max_backlog = std::size_t{4} << 20;

    // Bytes queued for one host (in telecap, not counting the kernel's socket buffer) past
    // which its events are dropped. An event larger than this still goes to a host whose
    // backlog is empty.
    std::size_t max_backlog = default_max_backlog;
    int listen_backlog = 64;
    // At destruction, how long the hosts get to take what is still queued for them.
    std::chrono::milliseconds drain_timeout{2000};
};

struct unix_client_info {
    std::uint64_t id = 0;        // 1, 2, ... in accept order
    std::uint64_t sent = 0;      // events written to it in full
    std::uint64_t missed = 0;    // events dropped for it (backlog full)
    std::size_t backlog = 0;     // bytes queued in telecap for it
};

class unix_socket_handler final : public handler {
public:
    // Binds and listens at `path`, starts the I/O thread. Throws std::runtime_error with a
    // message fit for the user ("... another process is listening ...") when it cannot.
    explicit unix_socket_handler(std::string path, unix_socket_options opts = {});
    ~unix_socket_handler() override;
    unix_socket_handler(const unix_socket_handler&) = delete;
    unix_socket_handler& operator=(const unix_socket_handler&) = delete;

    void handle(const event& ev) override;
    void flush() override;
    // {"clients_accepted":N,"clients_connected":N,"events_sent":N,"events_missed":N}; sent and
    // missed are summed over hosts (an event sent to two hosts counts twice).
    std::string counters_json() const override;

    const std::string& path() const noexcept { return path_; }
    std::size_t clients_connected() const noexcept { return connected_.load(); }
    std::uint64_t clients_accepted() const noexcept { return accepted_.load(); }
    std::uint64_t events_sent() const noexcept { return sent_.load(); }
    std::uint64_t events_missed() const noexcept { return missed_.load(); }
    std::vector<unix_client_info> clients() const;

private:
    struct client;

    void listen_at();
    void run();
    bool accept_clients();  // false: out of fds, try again later
    bool pump(client& c);  // false: the host is gone
    void wake() noexcept;

    std::string path_;
    unix_socket_options opts_;
    unique_fd listen_fd_;
    unique_fd wake_fd_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;

    mutable std::mutex mu_;
    std::vector<std::shared_ptr<client>> clients_;  // guarded by mu_
    std::size_t unwoken_ = 0;                        // guarded by mu_: bytes queued since a wake
    std::string line_;                               // handle()'s scratch

    std::atomic<std::size_t> connected_{0};
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> missed_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace telecap
