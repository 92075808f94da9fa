#pragma once
// Output: events as JSON lines (the output contract, capture/event_json.hpp) streamed to every
// host connected to a Unix stream socket that telecap listens on (`-o unix:PATH`).
//
// - The socket file is created with mode 0600 (the socket's own mode is set before bind, so
//   the file never exists with a wider one; the process umask is left alone). A stale socket
//   file at PATH (nobody listening) is replaced; a live one (a connect succeeds), or anything
//   that is not a socket, is an error. The file is unlinked at destruction (if still ours).
// - Hosts connect and leave at any time; a host receives the events handled after it was
//   accepted, always as whole lines, until it leaves or is disconnected.
// - handle() never blocks on a host: it formats the line once and appends it, once, to a log
//   of chunks that all hosts share; each host has its own position in it. A host's backlog is
//   the bytes from its position to the end (queued in telecap, not counting the kernel's
//   socket buffer); chunks every host has passed are freed. So the cost of an event does not
//   grow with the number of hosts, and memory is bounded by max_backlog whatever their number.
//   Budgets keep memory and fds bounded whatever the hosts do:
//   - a host whose backlog would pass max_backlog is disconnected (reason "backlog"); an event
//     larger than max_backlog still goes to a host whose backlog is empty;
//   - while the backlogs of all hosts together pass max_total_backlog, the host with the
//     largest backlog (the slowest) is disconnected (reason "total_backlog");
//   - a host that connects when max_hosts are connected (reason "max_hosts"), or when fewer
//     than fd_reserve fds would be left under RLIMIT_NOFILE, or when accept fails with
//     EMFILE/ENFILE (reason "fds"), is refused: accepted and closed at once (it sees EOF).
//   A disconnected host may see the last line cut, then EOF; the events it did not get are
//   counted as missed. Disconnections are logged (telecap::logger()), refusals at most once a
//   second.
// - A small I/O thread (poll over the listening socket, the hosts and an eventfd) accepts hosts,
//   writes their backlogs (non-blocking, MSG_NOSIGNAL) and removes hosts that hang up, fail or
//   were disconnected. handle() wakes it once 64 KiB are waiting, flush() (the dispatcher running
//   dry) whenever anything is. At destruction it gets up to drain_timeout to hand over what is
//   queued.
// - Every counter is an atomic: readable at any time from any thread (counters_json() too).

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "telecap/capture/handler.hpp"
#include "telecap/core/failure_note.hpp"
#include "telecap/core/unique_fd.hpp"

namespace telecap {

struct unix_socket_options {
    static constexpr std::size_t default_max_hosts = 16;
    static constexpr std::size_t default_max_backlog = std::size_t{4} << 20;         // 4 MiB
    static constexpr std::size_t default_max_total_backlog = std::size_t{16} << 20;  // 16 MiB
    static constexpr std::size_t default_fd_reserve = 64;

    std::size_t max_hosts = default_max_hosts;
    std::size_t max_backlog = default_max_backlog;
    std::size_t max_total_backlog = default_max_total_backlog;
    std::size_t fd_reserve = default_fd_reserve;
    int listen_backlog = 64;
    // At destruction, how long the hosts get to take what is still queued for them.
    std::chrono::milliseconds drain_timeout{2000};
};

// Why a host was refused or disconnected; the names are the counters' labels.
enum class unix_refusal : std::uint8_t { max_hosts, fds };
enum class unix_drop : std::uint8_t { backlog, total_backlog };
std::string_view to_string(unix_refusal r) noexcept;
std::string_view to_string(unix_drop d) noexcept;

struct unix_client_info {
    std::uint64_t id = 0;     // 1, 2, ... in accept order
    std::uint64_t sent = 0;   // events written to it in full
    std::size_t backlog = 0;  // bytes queued in telecap for it
};

class unix_socket_handler final : public handler {
public:
    // Binds and listens at `path`, starts the I/O thread. Throws std::runtime_error with a
    // message fit for the user ("... another process is listening ...") when it cannot, and
    // std::invalid_argument for a budget of 0.
    explicit unix_socket_handler(std::string path, unix_socket_options opts = {});
    ~unix_socket_handler() override;
    unix_socket_handler(const unix_socket_handler&) = delete;
    unix_socket_handler& operator=(const unix_socket_handler&) = delete;

    void handle(const event& ev) override;
    void flush() override;
    // {"clients_accepted":N,"clients_connected":N,"events_sent":N,"events_missed":N,
    //  "clients_refused":{"max_hosts":N,"fds":N},"clients_dropped":{"backlog":N,"total_backlog":N}}
    // sent and missed are summed over hosts (an event sent to two hosts counts twice).
    std::string counters_json() const override;

    const std::string& path() const noexcept { return path_; }
    const unix_socket_options& options() const noexcept { return opts_; }
    std::size_t clients_connected() const noexcept { return connected_.load(); }
    std::uint64_t clients_accepted() const noexcept { return accepted_.load(); }
    std::uint64_t events_sent() const noexcept { return sent_.load(); }
    // Events a host did not get because it was disconnected with them still queued (or the
    // event that did not fit its budget).
    std::uint64_t events_missed() const noexcept { return missed_.load(); }
    std::uint64_t clients_refused(unix_refusal r) const noexcept {
        return refused_[static_cast<std::size_t>(r)].load();
    }
    std::uint64_t clients_dropped(unix_drop d) const noexcept {
        return dropped_[static_cast<std::size_t>(d)].load();
    }
    std::vector<unix_client_info> clients() const;
    // Failures to deliver (ctl status, telecap top): a host disconnected by a budget or
    // refused, a send that failed other than by the host leaving, an accept that failed.
    std::uint64_t errors() const override { return failures_.count(); }
    std::string last_error() const override { return failures_.last(); }

private:
    struct client;
    struct chunk;

    void listen_at();
    void run();
    bool accept_clients();  // false: out of fds and no spare, try again later
    void refuse(int fd, unix_refusal why) noexcept;
    bool fds_left_enough(int newest_fd) const noexcept;
    bool pump(client& c);  // false: the host is gone
    void drop_locked(const std::shared_ptr<client>& c, unix_drop why, std::uint64_t extra_missed);
    void wake() noexcept;
    void trim_locked();

    std::string path_;
    unix_socket_options opts_;
    unique_fd listen_fd_;
    unique_fd wake_fd_;
    unique_fd spare_fd_;  // /dev/null, given up to accept-and-close a host when out of fds
    dev_t dev_ = 0;
    ino_t ino_ = 0;

    mutable std::mutex mu_;
    std::vector<std::shared_ptr<client>> clients_;          // guarded by mu_
    std::vector<std::shared_ptr<client>> dropped_clients_;  // guarded by mu_: to close and log
    // The shared log, guarded by mu_: chunks from the slowest host's position to end_.
    std::deque<std::shared_ptr<chunk>> log_;
    std::shared_ptr<chunk> spare_chunk_;  // one freed chunk kept for reuse
    std::uint64_t end_ = 0;               // bytes ever appended
    std::uint64_t end_lines_ = 0;         // lines ever appended
    std::size_t total_backlog_ = 0;       // the hosts' backlogs summed
    std::size_t unwoken_ = 0;             // guarded by mu_: bytes queued since a wake
    std::string line_;                    // handle()'s scratch

    std::atomic<std::size_t> connected_{0};
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> missed_{0};
    std::array<std::atomic<std::uint64_t>, 2> refused_{};
    std::array<std::atomic<std::uint64_t>, 2> dropped_{};
    failure_note failures_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace telecap
