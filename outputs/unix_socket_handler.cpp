#include "outputs/unix_socket_handler.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>

#include "capture/event_json.hpp"
#include "core/log.hpp"
#include "core/unix_listen.hpp"

namespace telecap {

namespace {

using clock = std::chrono::steady_clock;

// handle() wakes the I/O thread once this much is queued (at most a quarter of a host's
// backlog limit); flush() whenever anything is.
constexpr std::size_t wake_threshold = 64 * 1024;
// The shared log is a queue of chunks of this size (a longer line gets a chunk of its own):
// growing one big buffer would copy it again and again, and fault its fresh pages in each
// time, on the dispatcher's thread.
constexpr std::size_t chunk_size = 64 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("cannot listen on unix:" + path + ": " + what);
}

// Open fds of this process (/proc/self/fd, less the directory's own), or -1 if unknown.
long open_fd_count() noexcept {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n - 1;
}

}  // namespace

std::string_view to_string(unix_refusal r) noexcept {
    return r == unix_refusal::max_hosts ? "max_hosts" : "fds";
}

std::string_view to_string(unix_drop d) noexcept {
    return d == unix_drop::backlog ? "backlog" : "total_backlog";
}

// A piece of the shared log. Its bytes below `size` never change, so the I/O thread sends
// from them without mu_ while handle() appends past them (`size` itself is guarded by mu_).
struct unix_socket_handler::chunk {
    std::unique_ptr<char[]> data;
    std::size_t capacity = 0;
    std::size_t size = 0;
    std::uint64_t start = 0;  // the log offset of data[0]
};

struct unix_socket_handler::client {
    unique_fd fd;
    std::uint64_t id = 0;
    // Guarded by mu_.
    std::uint64_t pos = 0;         // log offset of the next byte to send
    std::uint64_t first_line = 0;  // log line count when it joined
    std::uint64_t sent = 0;        // lines sent in full
    bool dropped = false;          // disconnected by a budget: out of clients_, to close
    unix_drop why = unix_drop::backlog;
    std::uint64_t missed = 0;  // when dropped: the lines it did not get
    // The I/O thread's own.
    bool read_closed = false;
};

unix_socket_handler::unix_socket_handler(std::string path, unix_socket_options opts)
    : path_(std::move(path)), opts_(opts) {
    if (opts_.max_hosts == 0 || opts_.max_backlog == 0 || opts_.max_total_backlog == 0 ||
        opts_.fd_reserve == 0)
        throw std::invalid_argument("unix:" + path_ + ": the budgets must not be 0");
    wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd_) fail(path_, "eventfd: " + errno_text(errno));
    // Without it (no /dev/null?) a host refused for lack of fds stays queued until fds free up.
    spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
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
        dropped_clients_.clear();
    }
    listen_fd_.reset();
    // Only our own socket: not a file someone put there since.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

void unix_socket_handler::listen_at() {
    unix_listening l;
    if (auto e = listen_unix(path_, opts_.listen_backlog, l)) fail(path_, *e);
    listen_fd_ = std::move(l.fd);
    dev_ = l.dev;
    ino_ = l.ino;
}

void unix_socket_handler::wake() noexcept {
    const std::uint64_t one = 1;
    if (::write(wake_fd_.get(), &one, sizeof one) < 0) {
        // EAGAIN: the counter is full, so the thread is awake anyway.
    }
}

// Takes a host out of the fan-out at once (its backlog no longer counts); the I/O thread
// closes it and says so. Called with mu_ held.
void unix_socket_handler::drop_locked(const std::shared_ptr<client>& c, unix_drop why,
                                      std::uint64_t extra_missed) {
    c->dropped = true;
    c->why = why;
    c->missed = (end_lines_ - c->first_line - c->sent) + extra_missed;
    missed_.fetch_add(c->missed, std::memory_order_relaxed);
    dropped_[static_cast<std::size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    total_backlog_ -= static_cast<std::size_t>(end_ - c->pos);
    dropped_clients_.push_back(c);
}

void unix_socket_handler::handle(const event& ev) {
    if (connected_.load(std::memory_order_relaxed) == 0) return;  // nobody to write for
    const std::string_view line = shared_event_json_line(ev, line_);
    const std::size_t n = line.size();
    std::lock_guard lk(mu_);
    if (clients_.empty()) return;
    bool any_dropped = false;
    // A host this line would take past its budget goes (and misses it); a host with nothing
    // queued takes any line, however long.
    for (auto& c : clients_) {
        const auto backlog = static_cast<std::size_t>(end_ - c->pos);
        if (backlog != 0 && backlog + n > opts_.max_backlog) {
            drop_locked(c, unix_drop::backlog, 1);
            any_dropped = true;
        }
    }
    if (any_dropped) std::erase_if(clients_, [](const auto& c) { return c->dropped; });
    if (!clients_.empty()) {
        chunk* tail = log_.empty() ? nullptr : log_.back().get();
        if (!tail || tail->capacity - tail->size < n) {
            std::shared_ptr<chunk> fresh;
            if (n <= chunk_size && spare_chunk_) {
                fresh = std::move(spare_chunk_);
                fresh->size = 0;
            } else {
                fresh = std::make_shared<chunk>();
                fresh->capacity = std::max(chunk_size, n);
                fresh->data = std::make_unique_for_overwrite<char[]>(fresh->capacity);
            }
            fresh->start = end_;
            log_.push_back(std::move(fresh));
            tail = log_.back().get();
        }
        std::memcpy(tail->data.get() + tail->size, line.data(), n);
        tail->size += n;
        end_ += n;
        ++end_lines_;
        total_backlog_ += n * clients_.size();
        unwoken_ += n;
    }
    // All hosts together: the slowest (largest backlog) goes first, until the rest fit.
    while (total_backlog_ > opts_.max_total_backlog && !clients_.empty()) {
        auto slowest =
            std::min_element(clients_.begin(), clients_.end(),
                             [](const auto& a, const auto& b) { return a->pos < b->pos; });
        drop_locked(*slowest, unix_drop::total_backlog, 0);
        clients_.erase(slowest);
        any_dropped = true;
    }
    if (any_dropped) connected_.store(clients_.size());
    if (any_dropped || unwoken_ >= std::min(wake_threshold, opts_.max_backlog / 4)) {
        unwoken_ = 0;
        wake();
    }
}

// Frees the chunks every host has passed. Called with mu_ held, on the I/O thread.
void unix_socket_handler::trim_locked() {
    std::uint64_t keep_from = end_;
    for (const auto& c : clients_) keep_from = std::min(keep_from, c->pos);
    // (The tail too, once every host passed it: handle() starts a new one.)
    while (!log_.empty() && log_.front()->start + log_.front()->size <= keep_from) {
        auto& front = log_.front();
        // One plain chunk is kept for reuse (pump(), which shares chunks, runs on this thread
        // and holds none now).
        if (front->capacity == chunk_size) spare_chunk_ = std::move(front);
        log_.pop_front();
    }
}

void unix_socket_handler::flush() {
    std::lock_guard lk(mu_);
    if (unwoken_ == 0) return;
    unwoken_ = 0;
    wake();
}

std::string unix_socket_handler::counters_json() const {
    const auto n = [](std::uint64_t v) { return std::to_string(v); };
    return "{\"clients_accepted\":" + n(clients_accepted()) +
           ",\"clients_connected\":" + n(clients_connected()) +
           ",\"events_sent\":" + n(events_sent()) + ",\"events_missed\":" + n(events_missed()) +
           ",\"clients_refused\":{\"max_hosts\":" + n(clients_refused(unix_refusal::max_hosts)) +
           ",\"fds\":" + n(clients_refused(unix_refusal::fds)) +
           "},\"clients_dropped\":{\"backlog\":" + n(clients_dropped(unix_drop::backlog)) +
           ",\"total_backlog\":" + n(clients_dropped(unix_drop::total_backlog)) + "}}";
}

std::vector<unix_client_info> unix_socket_handler::clients() const {
    std::lock_guard lk(mu_);
    std::vector<unix_client_info> out;
    out.reserve(clients_.size());
    for (const auto& c : clients_)
        out.push_back({c->id, c->sent, static_cast<std::size_t>(end_ - c->pos)});
    return out;
}

void unix_socket_handler::refuse(int fd, unix_refusal why) noexcept {
    // Counted first: whoever sees the EOF sees the count.
    refused_[static_cast<std::size_t>(why)].fetch_add(1);
    if (fd >= 0) ::close(fd);  // the host sees EOF at once
    try {
        failures_.add(why == unix_refusal::max_hosts
                          ? "refused a host: max_hosts (" + std::to_string(opts_.max_hosts) +
                                ") connected"
                          : "refused a host: short of fds (fd_reserve " +
                                std::to_string(opts_.fd_reserve) + ")");
    } catch (...) {  // out of memory: the count above still tells
    }
}

bool unix_socket_handler::fds_left_enough(int newest_fd) const noexcept {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return true;
    const auto limit = static_cast<long long>(rl.rlim_cur);
    const auto reserve = static_cast<long long>(opts_.fd_reserve);
    // fds are handed out lowest first: 0 .. newest_fd are all open, so this is a lower bound
    // of what is open, and often enough to decide without reading /proc.
    if (limit - (newest_fd + 1) < reserve) return false;
    const long open = open_fd_count();
    return open < 0 || limit - open >= reserve;
}

bool unix_socket_handler::accept_clients() {
    while (true) {
        const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int accept_errno = errno;
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            if ((errno == EMFILE || errno == ENFILE) && spare_fd_) {
                // Out of fds: the connection would stay queued and poll would report it again
                // at once. Give up the spare fd for a moment to accept the host and close it.
                spare_fd_.reset();
                const int refused =
                    ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                const int err = errno;
                if (refused >= 0) refuse(refused, unix_refusal::fds);
                spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
                if (spare_fd_ && refused >= 0) continue;
                // EMFILE comes before the queue is looked at: it may have been empty.
                if (spare_fd_ && (err == EAGAIN || err == EWOULDBLOCK)) return true;
            }
            // No spare (or another error, ENOBUFS ...): the caller stops listening for a
            // moment.
            failures_.add("accept: " + errno_text(accept_errno));
            return false;
        }
        // Only this thread adds hosts, so connected_ cannot grow meanwhile; the fd count is
        // read without mu_ (it reads /proc), so handle() never waits for it.
        if (connected_.load() >= opts_.max_hosts) {
            refuse(fd, unix_refusal::max_hosts);
            continue;
        }
        if (!fds_left_enough(fd)) {
            refuse(fd, unix_refusal::fds);
            continue;
        }
        auto c = std::make_shared<client>();
        c->fd.reset(fd);
        c->id = next_id_.fetch_add(1);
        std::lock_guard lk(mu_);
        c->pos = end_;  // from the next event on
        c->first_line = end_lines_;
        clients_.push_back(std::move(c));
        connected_.store(clients_.size());
        accepted_.fetch_add(1);
    }
}

bool unix_socket_handler::pump(client& c) {
    // Bounded, so a fast host cannot keep the thread from the others; what is left is
    // written on the next round (POLLOUT is asked for).
    for (int round = 0; round < 16; ++round) {
        std::shared_ptr<chunk> from;  // keeps the bytes alive while mu_ is not held
        const char* data = nullptr;
        std::size_t len = 0;
        {
            std::lock_guard lk(mu_);
            if (c.dropped) return false;
            if (c.pos == end_) return true;
            // Its position is in the log: trim_locked() keeps what any host has not passed.
            auto it =
                std::upper_bound(log_.begin(), log_.end(), c.pos,
                                 [](std::uint64_t pos, const auto& ch) { return pos < ch->start; });
            from = *std::prev(it);
            const auto off = static_cast<std::size_t>(c.pos - from->start);
            data = from->data.get() + off;
            len = from->size - off;
        }
        const ssize_t n = ::send(c.fd.get(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            // EPIPE, ECONNRESET: the host left, as hosts may. Anything else failed it.
            if (errno != EPIPE && errno != ECONNRESET)
                failures_.add("host " + std::to_string(c.id) + ": send: " + errno_text(errno));
            return false;
        }
        const auto bytes = static_cast<std::size_t>(n);
        // A line ends at its only '\n' (JSON escapes newlines in strings).
        const auto lines = static_cast<std::uint64_t>(std::count(data, data + bytes, '\n'));
        std::lock_guard lk(mu_);
        if (c.dropped) return false;  // its lines were counted as missed already
        sent_.fetch_add(lines, std::memory_order_relaxed);
        c.pos += bytes;
        c.sent += lines;
        total_backlog_ -= bytes;
        if (bytes < len) return true;  // the socket is full
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
    std::vector<std::shared_ptr<client>> dropped;
    std::vector<bool> wants_out;
    std::optional<clock::time_point> deadline;
    std::optional<clock::time_point> accept_paused_until;
    std::optional<clock::time_point> last_refusal_note;
    std::array<std::uint64_t, 2> refusals_noted{};
    char sink[4096];

    // Disconnections are said one by one (there are at most max_hosts at a time); refusals,
    // which a host that reconnects in a loop can make many, at most once a second.
    const auto say = [&](clock::time_point now) {
        {
            std::lock_guard lk(mu_);
            dropped.swap(dropped_clients_);
        }
        for (const auto& c : dropped) {
            failures_.add("host " + std::to_string(c->id) + " disconnected: " +
                          (c->why == unix_drop::backlog ? "its backlog passed max_backlog ("
                                                        : "the slowest past max_total_backlog (") +
                          std::to_string(c->why == unix_drop::backlog ? opts_.max_backlog
                                                                      : opts_.max_total_backlog) +
                          " bytes), " + std::to_string(c->missed) + " events missed");
            if (c->why == unix_drop::backlog)
                telecap::logger()->warn(
                    "unix:{}: host {} disconnected: it does not keep up and its backlog passed "
                    "max_backlog ({} bytes); {} events it did not get are counted as missed",
                    path_, c->id, opts_.max_backlog, c->missed);
            else
                telecap::logger()->warn(
                    "unix:{}: host {} disconnected: the slowest while the hosts' backlogs "
                    "together passed max_total_backlog ({} bytes); {} events it did not get are "
                    "counted as missed",
                    path_, c->id, opts_.max_total_backlog, c->missed);
        }
        dropped.clear();  // closes them, unless a poll round still holds one (then it does)
        if (last_refusal_note && now - *last_refusal_note < std::chrono::seconds(1)) return;
        const std::uint64_t hosts = clients_refused(unix_refusal::max_hosts);
        const std::uint64_t fds_now = clients_refused(unix_refusal::fds);
        if (hosts == refusals_noted[0] && fds_now == refusals_noted[1]) return;
        std::string what;
        if (hosts != refusals_noted[0])
            what += std::to_string(hosts - refusals_noted[0]) + " past max_hosts (" +
                    std::to_string(opts_.max_hosts) + ")";
        if (fds_now != refusals_noted[1])
            what += (what.empty() ? "" : ", ") + std::to_string(fds_now - refusals_noted[1]) +
                    " short of fds (fd_reserve " + std::to_string(opts_.fd_reserve) + ")";
        telecap::logger()->warn(
            "unix:{}: refused hosts: {}; they were closed at once (counted in clients_refused)",
            path_, what);
        refusals_noted = {hosts, fds_now};
        last_refusal_note = now;
    };

    while (true) {
        const bool stopping = stop_.load();
        const auto now = clock::now();
        say(now);
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
                const bool out = c->pos < end_;
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
        // Refusals not said yet are said when their second is up.
        if (last_refusal_note && (clients_refused(unix_refusal::max_hosts) != refusals_noted[0] ||
                                  clients_refused(unix_refusal::fds) != refusals_noted[1]))
            until(*last_refusal_note + std::chrono::seconds(1));

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
                    if (r == 0)
                        c.read_closed = true;  // half-closed: it may still read
                    else if (errno != EAGAIN && errno != EWOULDBLOCK)
                        alive = false;
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
                if (std::find(gone.begin(), gone.end(), c.get()) == gone.end()) return false;
                // A host that leaves takes its backlog with it: not missed, it left.
                total_backlog_ -= static_cast<std::size_t>(end_ - c->pos);
                return true;
            });
            connected_.store(clients_.size());
        }
        {
            std::lock_guard lk(mu_);
            trim_locked();
        }
        polled.clear();  // the last references to the hosts that left: their fds close here
    }

    std::lock_guard lk(mu_);
    clients_.clear();
    dropped_clients_.clear();
    log_.clear();
    total_backlog_ = 0;
    connected_.store(0);
}

}  // namespace telecap
