#include "control/server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "control/request.hpp"
#include "core/log.hpp"

namespace telecap::control {

using clock = std::chrono::steady_clock;

std::string_view to_string(close_reason r) noexcept {
    switch (r) {
        case close_reason::request_size:
            return "request_size";
        case close_reason::stalled_reader:
            return "stalled_reader";
        case close_reason::idle:
            return "idle";
        case close_reason::evicted:
            return "evicted";
        case close_reason::refused:
            return "refused";
        case close_reason::count_:
            break;
    }
    return "?";
}

namespace {

std::string_view what(close_reason r) noexcept {
    switch (r) {
        case close_reason::request_size:
            return "its request was longer than the limit";
        case close_reason::stalled_reader:
            return "it left its replies unread";
        case close_reason::idle:
            return "it sent no whole request within the idle limit";
        case close_reason::evicted:
            return "it waited longest for a request while the client limit was reached";
        case close_reason::refused:
            return "every client had replies pending when it connected";
        case close_reason::count_:
            break;
    }
    return "?";
}

}  // namespace

struct server::client {
    unique_fd fd;
    std::string in;                   // bytes of the request line not yet complete
    std::string out;                  // replies not yet written
    std::size_t out_off = 0;          // written part of out
    clock::time_point last_progress;  // the last write that took something
    clock::time_point waiting_since;  // connected, or last answered: waits for a request
    event_loop::timer_id retry = 0;
    event_loop::timer_id idle_timer = 0;
    bool paused = false;                    // not read from while replies are pending
    std::shared_ptr<stream_source> stream;  // a stream's client (ctl tap): see pump()
    bool writable_watch = false;            // the stream waits for room in the socket
};

server::server(event_loop& loop, std::string path, handler fn, server_options o)
    : loop_(loop),
      path_(std::move(path)),
      fn_(std::move(fn)),
      o_(std::move(o)),
      self_(std::make_shared<server*>(this)) {
    if (auto e = listen_unix(path_, o_.backlog, listening_))
        throw std::runtime_error("cannot listen on the control socket " + path_ + ": " + *e);
    loop_.watch(listening_.fd.get(), [this] { on_accept(); });
}

server::~server() {
    self_.reset();  // a waker's post that comes later finds no server
    if (accept_retry_) loop_.cancel(accept_retry_);
    for (auto& [fd, c] : clients_) {
        if (c->stream) {
            if (c->out_off < c->out.size())
                c->stream->unsent(std::string_view(c->out).substr(c->out_off));
            c->stream->close();
        }
        if (c->retry) loop_.cancel(c->retry);
        if (c->idle_timer) loop_.cancel(c->idle_timer);
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
        if (clients_.size() - streams_ >= o_.max_clients && !evict_one()) {
            count(close_reason::refused);
            const std::string msg =
                error_reply("too many control clients (at most " + std::to_string(o_.max_clients) +
                            ", all of them being answered)") +
                "\n";
            (void)::send(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;  // closed
        }
        ++accepted_;
        auto c = std::make_unique<client>();
        const int raw = fd.get();
        c->fd = std::move(fd);
        c->last_progress = c->waiting_since = clock::now();
        c->idle_timer = loop_.after(o_.idle_limit, [this, raw] { check_idle(raw); });
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
        if (n > 0 && c.stream) continue;  // a stream's client has nothing more to say: ignored
        if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            answer(c);
            if (!clients_.count(fd) || c.paused) return;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        drop(fd);  // EOF or an error: the client is gone
        return;
    }
}

bool server::evict_one() {
    // The one that has waited longest for a request, among those with no reply pending (a
    // client being answered has stall_limit for that).
    client* oldest = nullptr;
    for (auto& [fd, c] : clients_)
        if (!c->stream && c->out.empty() && (!oldest || c->waiting_since < oldest->waiting_since))
            oldest = c.get();
    if (!oldest) return false;
    drop(oldest->fd.get(), close_reason::evicted,
         error_reply("disconnected: the control socket is full (" + std::to_string(o_.max_clients) +
                     " clients) and this client waited longest for a request"));
    return true;
}

void server::check_idle(int fd) {
    const auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    client& c = *it->second;
    c.idle_timer = 0;
    const auto now = clock::now();
    // A client with replies pending is not idle: stall_limit covers it.
    if (c.out.empty() && now - c.waiting_since >= o_.idle_limit) {
        drop(fd, close_reason::idle,
             error_reply("disconnected: no whole request within " +
                         std::to_string(o_.idle_limit.count()) + " ms"));
        return;
    }
    const auto due = c.out.empty() ? c.waiting_since + o_.idle_limit : now + o_.idle_limit;
    c.idle_timer = loop_.after(std::chrono::duration_cast<std::chrono::milliseconds>(due - now) +
                                   std::chrono::milliseconds(1),
                               [this, fd] { check_idle(fd); });
}

void server::count(close_reason r) {
    const auto i = static_cast<std::size_t>(r);
    ++closed_[i];
    if (o_.on_close) o_.on_close(r);
    if (said_[i]) return;
    said_[i] = true;
    logger()->warn("control client disconnected: {} (counted by reason, said once)", what(r));
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
            if (flush(c)) drop(fd, close_reason::request_size);
            return;
        }
        if (o_.open_stream) {
            if (auto s = o_.open_stream(line)) {
                c.out += s->reply;
                c.out += '\n';
                if (s->source) {
                    c.in.clear();  // what follows a stream's request is not read
                    start_stream(c, std::move(s->source));
                    return;
                }
                c.waiting_since = clock::now();
                continue;
            }
        }
        c.out += fn_(line);
        c.out += '\n';
        c.waiting_since = clock::now();
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
        if (flush(c)) drop(fd, close_reason::request_size);
        return;
    }
    (void)flush(c);
}

server::sent server::send_out(client& c) {
    while (c.out_off < c.out.size()) {
        const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.out_off += static_cast<std::size_t>(n);
            c.last_progress = clock::now();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return sent::full;
        return sent::gone;  // EPIPE and the like
    }
    return sent::all;
}

bool server::flush(client& c) {
    const int fd = c.fd.get();
    if (send_out(c) == sent::gone) {
        drop(fd);  // the client is gone
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

void server::start_stream(client& c, std::shared_ptr<stream_source> src) {
    const int fd = c.fd.get();
    ++streams_;
    c.stream = std::move(src);
    if (c.retry) loop_.cancel(c.retry);
    if (c.idle_timer) loop_.cancel(c.idle_timer);
    c.retry = c.idle_timer = 0;
    if (c.paused) {
        c.paused = false;
        loop_.set_reading(fd, true);
    }
    // The waker may run on any thread, after this client or this server is gone: it posts
    // through a weak handle and the stream's identity, and pump() finds out.
    std::weak_ptr<server*> self = self_;
    const stream_source* id = c.stream.get();
    // The loop, not this server: a waker copied on the dispatch thread may run after the
    // server is destroyed (telecap stopping with --dispatch thread); the loop outlives both.
    c.stream->set_waker([loop = &loop_, self, fd, id] {
        loop->post([self, fd, id] {
            const auto s = self.lock();
            if (!s) return;
            const auto it = (*s)->clients_.find(fd);
            if (it != (*s)->clients_.end() && it->second->stream.get() == id) (*s)->pump(fd);
        });
    });
    pump(fd);
}

void server::pump(int fd) {
    const auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    client& c = *it->second;
    // Bounded per turn: a source refilled as fast as the client reads must not hold the loop.
    for (int turn = 0;; ++turn) {
        if (const sent r = send_out(c); r == sent::full) {
            // Full: wait for room (level-triggered, so a client that never reads costs
            // nothing until it does; the source drops meanwhile).
            if (!c.writable_watch) {
                c.writable_watch = true;
                loop_.watch_writable(fd, [this, fd] { pump(fd); });
            }
            return;
        } else if (r == sent::gone) {
            drop(fd);  // the client is gone
            return;
        }
        c.out.clear();
        c.out_off = 0;
        if (turn == 8) {  // more next turn: the socket has room, so its watch fires at once
            if (!c.writable_watch) {
                c.writable_watch = true;
                loop_.watch_writable(fd, [this, fd] { pump(fd); });
            }
            return;
        }
        const bool ended = c.stream->take(c.out);
        if (c.out.empty()) {
            if (ended) {
                drop(fd);  // everything was written: the end of the stream is the close
                return;
            }
            break;
        }
    }
    if (c.writable_watch) {  // back to watching for the client's hang-up
        c.writable_watch = false;
        loop_.watch(fd, [this, fd] { on_readable(fd); });
    }
}

void server::drain_streams(std::chrono::steady_clock::time_point deadline) {
    for (auto& [fd, cp] : clients_) {
        client& c = *cp;
        if (!c.stream) continue;
        for (;;) {
            if (c.out_off == c.out.size()) {
                c.out.clear();
                c.out_off = 0;
                c.stream->take(c.out);
                if (c.out.empty()) break;  // all of it written
            }
            const sent r = send_out(c);
            if (r == sent::gone) break;
            if (r == sent::full) {
                const auto left = std::chrono::ceil<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) break;
                pollfd p{fd, POLLOUT, 0};
                if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
            }
        }
    }
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
    if (clock::now() - c.last_progress > o_.stall_limit) drop(fd, close_reason::stalled_reader);
}

void server::drop(int fd, std::optional<close_reason> why, std::string_view goodbye) {
    const auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    if (it->second->retry) loop_.cancel(it->second->retry);
    if (it->second->idle_timer) loop_.cancel(it->second->idle_timer);
    loop_.unwatch(fd);
    if (it->second->stream) {
        const client& c = *it->second;
        if (c.out_off < c.out.size()) c.stream->unsent(std::string_view(c.out).substr(c.out_off));
        c.stream->close();
        --streams_;
    }
    if (!goodbye.empty()) {
        // Best effort, never waited for: the client learns why before the close.
        const std::string line = std::string(goodbye) + "\n";
        (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (why) {
        ++disconnected_;
        count(*why);
    }
    clients_.erase(it);
}

}  // namespace telecap::control
