#include "adapters/unix_socket_handler.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "capture/event_json.hpp"

namespace telecap {

namespace {

using clock = std::chrono::steady_clock;

// handle() wakes the I/O thread once this much is queued (at most a quarter of a host's
// backlog limit); flush() whenever anything is.
constexpr std::size_t wake_threshold = 64 * 1024;
// A host's drained buffer keeps at most this much capacity.
constexpr std::size_t keep_capacity = 256 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("cannot listen on unix:" + path + ": " + what);
}

}  // namespace

struct unix_socket_handler::client {
    unique_fd fd;
    std::uint64_t id = 0;
    // Guarded by mu_.
    std::string pending;      // whole lines queued by handle()
    std::size_t backlog = 0;  // pending + the unsent part of out
    std::uint64_t sent = 0;
    std::uint64_t missed = 0;
    // The I/O thread's own.
    std::string out;
    std::size_t out_off = 0;
    bool read_closed = false;
};

unix_socket_handler::unix_socket_handler(std::string path, unix_socket_options opts)
    : path_(std::move(path)), opts_(opts) {
    wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd_) fail(path_, "eventfd: " + errno_text(errno));
    listen_at();
    try {
        thread_ = std::thread([this] { run(); });
    } catch (...) {
        ::unlink(path_.c_str());
        throw;
    }
}

unix_socket_handler::~unix_socket_handler() {
    stop_.store(true);
    wake();
    if (thread_.joinable()) thread_.join();
    {
        std::lock_guard lk(mu_);
        clients_.clear();
    }
    listen_fd_.reset();
    // Only our own socket: not a file someone put there since.
    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

void unix_socket_handler::listen_at() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof addr.sun_path)
        fail(path_, "the path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) +
                        " bytes long");
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
    const socklen_t len = sizeof addr;

    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            fail(path_, "the file exists and is not a socket; remove it or choose another path");
        unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!probe) fail(path_, "socket: " + errno_text(errno));
        if (::connect(probe.get(), sa, len) == 0 || errno == EAGAIN || errno == EINPROGRESS)
            fail(path_, "another process is listening there (another telecap?); stop it or "
                        "choose another path");
        if (errno != ECONNREFUSED)
            fail(path_, "cannot check the socket that is there: " + errno_text(errno));
        // Stale: left by a process that is gone.
        if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
            fail(path_, "cannot remove the stale socket: " + errno_text(errno));
    } else if (errno != ENOENT) {
        fail(path_, errno_text(errno));
    }

    listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_fd_) fail(path_, "socket: " + errno_text(errno));
    // 0600 from the start: bind under a restrictive umask (nobody else may connect, not even
    // between bind and chmod), then chmod in case a default ACL overrode the umask. The umask
    // is process-wide: telecap creates its outputs before it starts other threads.
    const mode_t old_mask = ::umask(0177);
    const int rc = ::bind(listen_fd_.get(), sa, len);
    const int bind_errno = errno;
    ::umask(old_mask);
    if (rc != 0) {
        fail(path_, bind_errno == EADDRINUSE
                        ? "another process created it meanwhile"
                        : errno_text(bind_errno));
    }
    const auto undo = [this](const std::string& what) {
        const std::string msg = what + ": " + errno_text(errno);
        ::unlink(path_.c_str());
        fail(path_, msg);
    };
    if (::chmod(path_.c_str(), 0600) != 0) undo("chmod");
    if (::lstat(path_.c_str(), &st) != 0) undo("stat");
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    if (::listen(listen_fd_.get(), opts_.listen_backlog) != 0) undo("listen");
}

void unix_socket_handler::wake() noexcept {
    const std::uint64_t one = 1;
    if (::write(wake_fd_.get(), &one, sizeof one) < 0) {
        // EAGAIN: the counter is full, so the thread is awake anyway.
    }
}

void unix_socket_handler::handle(const event& ev) {
    if (connected_.load(std::memory_order_relaxed) == 0) return;  // nobody to write for
    line_.clear();
    append_event_json(line_, ev);
    const std::size_t n = line_.size();
    std::vector<std::uint64_t> started_missing;
    {
        std::lock_guard lk(mu_);
        for (auto& c : clients_) {
            if (c->backlog != 0 && c->backlog + n > opts_.max_backlog) {
                if (c->missed++ == 0) started_missing.push_back(c->id);
                missed_.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            c->pending += line_;
            c->backlog += n;
            unwoken_ += n;
        }
        if (unwoken_ >= std::min(wake_threshold, opts_.max_backlog / 4)) {
            unwoken_ = 0;
            wake();
        }
    }
    for (auto id : started_missing)
        spdlog::warn("unix:{}: host {} does not keep up; its backlog is full and events are "
                     "dropped for it (counted)",
                     path_, id);
}

void unix_socket_handler::flush() {
    std::lock_guard lk(mu_);
    if (unwoken_ == 0) return;
    unwoken_ = 0;
    wake();
}

std::string unix_socket_handler::counters_json() const {
    return "{\"clients_accepted\":" + std::to_string(clients_accepted()) +
           ",\"clients_connected\":" + std::to_string(clients_connected()) +
           ",\"events_sent\":" + std::to_string(events_sent()) +
           ",\"events_missed\":" + std::to_string(events_missed()) + "}";
}

std::vector<unix_client_info> unix_socket_handler::clients() const {
    std::lock_guard lk(mu_);
    std::vector<unix_client_info> out;
    out.reserve(clients_.size());
    for (const auto& c : clients_) out.push_back({c->id, c->sent, c->missed, c->backlog});
    return out;
}

bool unix_socket_handler::accept_clients() {
    while (true) {
        const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            // EMFILE and the like leave the connection queued: poll would report it again at
            // once, so the caller stops listening for a moment.
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        auto c = std::make_shared<client>();
        c->fd.reset(fd);
        c->id = next_id_.fetch_add(1);
        std::lock_guard lk(mu_);
        clients_.push_back(std::move(c));
        connected_.store(clients_.size());
        accepted_.fetch_add(1);
    }
}

bool unix_socket_handler::pump(client& c) {
    // Bounded, so a fast host cannot keep the thread from the others; what is left is
    // written on the next round (POLLOUT is asked for).
    for (int round = 0; round < 16; ++round) {
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
            if (c.out.capacity() > keep_capacity) c.out.shrink_to_fit();
            std::lock_guard lk(mu_);
            if (c.pending.empty()) return true;
            c.out.swap(c.pending);
        }
        const char* data = c.out.data() + c.out_off;
        const ssize_t n =
            ::send(c.fd.get(), data, c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            return false;  // EPIPE, ECONNRESET, ...: the host is gone
        }
        const auto bytes = static_cast<std::size_t>(n);
        // A line ends at its only '\n' (JSON escapes newlines in strings).
        const auto lines = static_cast<std::uint64_t>(std::count(data, data + bytes, '\n'));
        c.out_off += bytes;
        sent_.fetch_add(lines, std::memory_order_relaxed);
        std::lock_guard lk(mu_);
        c.backlog -= bytes;
        c.sent += lines;
    }
    return true;
}

void unix_socket_handler::run() {
    // Signals are for the threads of whoever embeds us.
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, nullptr);

    std::vector<pollfd> fds;
    std::vector<std::shared_ptr<client>> polled;
    std::vector<bool> wants_out;
    std::optional<clock::time_point> deadline;
    std::optional<clock::time_point> accept_paused_until;
    char sink[4096];

    while (true) {
        const bool stopping = stop_.load();
        const auto now = clock::now();
        if (stopping && !deadline) deadline = now + opts_.drain_timeout;
        if (accept_paused_until && now >= *accept_paused_until) accept_paused_until.reset();

        fds.clear();
        polled.clear();
        wants_out.clear();
        bool any_output = false;
        fds.push_back({wake_fd_.get(), POLLIN, 0});
        fds.push_back({stopping || accept_paused_until ? -1 : listen_fd_.get(), POLLIN, 0});
        {
            std::lock_guard lk(mu_);
            for (const auto& c : clients_) {
                const bool out = c->out_off < c->out.size() || !c->pending.empty();
                any_output = any_output || out;
                short events = c->read_closed ? 0 : POLLIN;
                if (out) events = static_cast<short>(events | POLLOUT);
                fds.push_back({c->fd.get(), events, 0});
                polled.push_back(c);
                wants_out.push_back(out);
            }
        }
        if (stopping && (!any_output || now >= *deadline)) break;

        int timeout = -1;
        const auto until = [&](clock::time_point t) {
            const auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
            const int v = static_cast<int>(std::clamp<decltype(ms)>(ms, 0, 60000));
            timeout = timeout < 0 ? v : std::min(timeout, v);
        };
        if (deadline) until(*deadline);
        if (accept_paused_until) until(*accept_paused_until);

        const int n = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;  // cannot happen with valid arguments; the hosts then see EOF
        }
        if (fds[0].revents & POLLIN) {
            std::uint64_t count;
            if (::read(wake_fd_.get(), &count, sizeof count) < 0) {
                // EAGAIN: someone else read it; nothing to do.
            }
        }
        if ((fds[1].revents & POLLIN) && !accept_clients())
            accept_paused_until = clock::now() + std::chrono::milliseconds(100);

        std::vector<const client*> gone;
        for (std::size_t i = 0; i < polled.size(); ++i) {
            client& c = *polled[i];
            const short re = fds[i + 2].revents;
            bool alive = true;
            if (re & POLLIN) {
                // Hosts have nothing to say: whatever they send is read and discarded.
                while (true) {
                    const ssize_t r = ::read(c.fd.get(), sink, sizeof sink);
                    if (r > 0) continue;
                    if (r < 0 && errno == EINTR) continue;
                    if (r == 0) c.read_closed = true;  // half-closed: it may still read
                    else if (errno != EAGAIN && errno != EWOULDBLOCK) alive = false;
                    break;
                }
            }
            if (re & (POLLERR | POLLHUP | POLLNVAL)) alive = false;
            // Writing is worth a try when the socket has room, or when we did not ask (data
            // may have arrived since).
            if (alive && (!wants_out[i] || (re & POLLOUT))) alive = pump(c);
            if (!alive) gone.push_back(&c);
        }
        if (!gone.empty()) {
            std::lock_guard lk(mu_);
            std::erase_if(clients_, [&](const auto& c) {
                return std::find(gone.begin(), gone.end(), c.get()) != gone.end();
            });
            connected_.store(clients_.size());
        }
        polled.clear();  // the last references to the hosts that left: their fds close here
    }

    std::lock_guard lk(mu_);
    clients_.clear();
    connected_.store(0);
}

}  // namespace telecap
