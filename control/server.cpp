#include "control/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "control/request.hpp"
#include "core/log.hpp"

namespace telecap::control {

using clock = std::chrono::steady_clock;

struct server::client {
    unique_fd fd;
    std::string in;                   // bytes of the request line not yet complete
    std::string out;                  // replies not yet written
    std::size_t out_off = 0;          // written part of out
    clock::time_point last_progress;  // the last write that took something
    event_loop::timer_id retry = 0;
    bool paused = false;  // not read from while replies are pending
};

server::server(event_loop& loop, std::string path, handler fn, server_options o)
    : loop_(loop), path_(std::move(path)), fn_(std::move(fn)), o_(o) {
    if (auto e = listen_unix(path_, o_.backlog, listening_))
        throw std::runtime_error("cannot listen on the control socket " + path_ + ": " + *e);
    loop_.watch(listening_.fd.get(), [this] { on_accept(); });
}

server::~server() {
    if (accept_retry_) loop_.cancel(accept_retry_);
    for (auto& [fd, c] : clients_) {
        if (c->retry) loop_.cancel(c->retry);
        loop_.unwatch(fd);
    }
    clients_.clear();
    loop_.unwatch(listening_.fd.get());
    listening_.fd.reset();
    unlink_if_ours(path_, listening_);
}

void server::on_accept() {
    while (true) {
        unique_fd fd(
            ::accept4(listening_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Level-triggered: the pending connection would wake the loop at once again.
                // Pause accepting for a moment instead of spinning.
                loop_.set_reading(listening_.fd.get(), false);
                accept_retry_ = loop_.after(std::chrono::milliseconds(100), [this] {
                    accept_retry_ = 0;
                    loop_.set_reading(listening_.fd.get(), true);
                });
            }
            return;
        }
        if (clients_.size() >= o_.max_clients) {
            ++refused_;
            const std::string msg = error_reply("too many control clients (at most " +
                                                std::to_string(o_.max_clients) + ")") +
                                    "\n";
            (void)::send(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;  // closed
        }
        ++accepted_;
        auto c = std::make_unique<client>();
        const int raw = fd.get();
        c->fd = std::move(fd);
        c->last_progress = clock::now();
        clients_.emplace(raw, std::move(c));
        loop_.watch(raw, [this, raw] { on_readable(raw); });
    }
}

void server::on_readable(int fd) {
    const auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    client& c = *it->second;
    char buf[16 * 1024];
    // Bounded per wake-up: one chatty client cannot hold the loop.
    for (int i = 0; i < 4; ++i) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            answer(c);
            if (!clients_.count(fd) || c.paused) return;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        drop(fd, false);  // EOF or an error: the client is gone
        return;
    }
}

void server::answer(client& c) {
    const int fd = c.fd.get();
    const std::string too_long =
        error_reply("request longer than " + std::to_string(o_.max_request) + " bytes") + "\n";
    std::size_t start = 0;
    while (true) {
        const auto nl = c.in.find('\n', start);
        if (nl == std::string::npos) break;
        std::string_view line(c.in.data() + start, nl - start);
        start = nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        if (line.size() > o_.max_request) {
            c.out += too_long;
            if (flush(c)) drop(fd, true);
            return;
        }
        c.out += fn_(line);
        c.out += '\n';
        // A client that sends faster than it reads: stop answering until it reads, so its
        // unread replies stay small (the rest of its requests wait in `in`).
        if (c.out.size() - c.out_off >= 64 * 1024) {
            if (!flush(c)) return;
            if (c.paused) break;
        }
    }
    c.in.erase(0, start);
    // No newline within the limit: answered and cut off, without buffering more of it.
    const auto last_nl = c.in.rfind('\n');
    if (c.in.size() - (last_nl == std::string::npos ? 0 : last_nl + 1) > o_.max_request) {
        c.out += too_long;
        if (flush(c)) drop(fd, true);
        return;
    }
    (void)flush(c);
}

bool server::flush(client& c) {
    const int fd = c.fd.get();
    while (c.out_off < c.out.size()) {
        const ssize_t n = ::send(fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.out_off += static_cast<std::size_t>(n);
            c.last_progress = clock::now();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        drop(fd, false);  // EPIPE and the like: the client is gone
        return false;
    }
    if (c.out_off == c.out.size()) {
        c.out.clear();
        c.out_off = 0;
        if (c.paused) {
            c.paused = false;
            loop_.set_reading(fd, true);
        }
        return true;
    }
    // Replies are waiting: read no more requests from it until it takes them, and try again
    // soon (the loop watches readability only): at once while it reads (a large reply goes
    // out a socket buffer at a time), more slowly while it does not.
    if (!c.paused) {
        c.paused = true;
        loop_.set_reading(fd, false);
    }
    const bool reading = clock::now() - c.last_progress < std::chrono::milliseconds(1);
    if (!c.retry)
        c.retry =
            loop_.after(reading ? std::chrono::microseconds(200) : std::chrono::milliseconds(10),
                        [this, fd] { check_stalled(fd); });
    return true;
}

void server::check_stalled(int fd) {
    const auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    client& c = *it->second;
    c.retry = 0;
    if (!flush(c)) return;
    if (c.out.empty()) {
        if (c.in.find('\n') != std::string::npos) answer(c);  // requests kept while paused
        return;
    }
    if (clock::now() - c.last_progress > o_.stall_limit) drop(fd, true);
}

void server::drop(int fd, bool by_limit) {
    const auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    if (it->second->retry) loop_.cancel(it->second->retry);
    loop_.unwatch(fd);
    if (by_limit) {
        ++disconnected_;
        logger()->warn(
            "control client disconnected: it exceeded a limit (request size, "
            "unread replies)");
    }
    clients_.erase(it);
}

}  // namespace telecap::control
