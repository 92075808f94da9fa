#include "net/http_server.hpp"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "core/log.hpp"

namespace telecap::net {

namespace {

using clock = std::chrono::steady_clock;

// After a 431 or a 400 the client may still be sending: what it sends is read and thrown
// away for this long, so that closing does not reset the connection before it reads the
// reply (a close with unread input sends RST).
constexpr std::chrono::milliseconds linger_after_error{1000};

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        default:
            return "Unknown";
    }
}

std::string_view what(http_close_reason r) noexcept {
    switch (r) {
        case http_close_reason::idle:
            return "no request within the head deadline";
        case http_close_reason::slow_head:
            return "its request head was not complete within the head deadline";
        case http_close_reason::head_too_large:
            return "its request head was too large (431)";
        case http_close_reason::bad_request:
            return "it did not speak HTTP (400)";
        case http_close_reason::slow_reader:
            return "it did not take its reply within the write deadline";
        case http_close_reason::evicted:
            return "it waited for its request head while the connection limit was reached";
        case http_close_reason::refused:
            return "a new connection while the connection limit was reached";
        case http_close_reason::count_:
            break;
    }
    return "?";
}

}  // namespace

std::string_view to_string(http_close_reason r) noexcept {
    switch (r) {
        case http_close_reason::idle:
            return "idle";
        case http_close_reason::slow_head:
            return "slow_head";
        case http_close_reason::head_too_large:
            return "head_too_large";
        case http_close_reason::bad_request:
            return "bad_request";
        case http_close_reason::slow_reader:
            return "slow_reader";
        case http_close_reason::evicted:
            return "evicted";
        case http_close_reason::refused:
            return "refused";
        case http_close_reason::count_:
            break;
    }
    return "?";
}

std::string_view http_request::header(std::string_view name) const noexcept {
    std::string_view rest = head;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        if (iequals(trim(line.substr(0, colon)), name)) return trim(line.substr(colon + 1));
    }
    return {};
}

struct http_server::connection {
    unique_fd fd;
    std::string in;   // the request head read so far (at most max_head + 1 bytes)
    std::string out;  // the reply being written
    std::size_t out_off = 0;
    enum class phase : std::uint8_t { head, reply, linger } state = phase::head;
    bool close_after = false;         // close once the reply is out
    bool served = false;              // answered a request already (kept alive)
    clock::time_point waiting_since;  // for its head: the eviction order
    clock::time_point deadline;
    bool gone = false;
};

http_server::http_server(const std::string& host, int port, handler fn, http_server_options o)
    : fn_(std::move(fn)), o_(std::move(o)) {
    const std::string where = host + ":" + std::to_string(port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
        throw std::runtime_error(o_.name + ": cannot listen on " + where + ": " +
                                 ::gai_strerror(rc));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);
    int err = 0;
    for (const addrinfo* a = found; a && !listen_fd_; a = a->ai_next) {
        unique_fd fd(
            ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
        if (!fd) {
            err = errno;
            continue;
        }
        // Only SO_REUSEADDR (a restart rebinds at once); SO_REUSEPORT would let a second
        // telecap bind the same port and take half of the scrapes.
        int yes = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 64) != 0) {
            err = errno;
            continue;
        }
        listen_fd_ = std::move(fd);
    }
    if (!listen_fd_)
        throw std::runtime_error(o_.name + ": cannot listen on " + where + ": " +
                                 std::strerror(err) +
                                 " (in use, or not an address of this machine)");
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
        if (bound.ss_family == AF_INET)
            port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    }
    wake_fd_ = unique_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd_)
        throw std::runtime_error(o_.name + ": cannot create an eventfd: " + std::strerror(errno));
    // The serving thread must not take the signals meant for telecap's loop or its host.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this] { run(); });
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

http_server::~http_server() { stop(); }

void http_server::stop() noexcept {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
    thread_.join();
    listen_fd_.reset();
}

void http_server::failed(const std::string& what) noexcept {
    if (o_.on_failure) o_.on_failure(what);
}

void http_server::close_counted(http_close_reason r) noexcept {
    const auto i = static_cast<std::size_t>(r);
    closed_[i].fetch_add(1, std::memory_order_relaxed);
    if (r == http_close_reason::slow_reader || r == http_close_reason::refused) {
        try {
            failed("closed a connection: " + std::string(what(r)));
        } catch (...) {  // out of memory: the count above still tells
        }
    }
    if (r == http_close_reason::idle || said_[i]) return;
    said_[i] = true;
    try {
        logger()->warn("{}: closed a connection: {} (counted by reason, said once)", o_.name,
                       what(r));
    } catch (...) {
    }
}

void http_server::run() noexcept {
    std::vector<std::unique_ptr<connection>> conns;
    std::vector<pollfd> fds;

    const auto start_reply = [&](connection& c, int status, std::string_view type,
                                 std::string_view body, bool head_only,
                                 std::string_view extra_header = {}) {
        c.out.clear();
        c.out_off = 0;
        c.out += "HTTP/1.1 " + std::to_string(status) + " ";
        c.out += reason_phrase(status);
        c.out += "\r\nContent-Type: ";
        c.out += type;
        c.out += "\r\nContent-Length: " + std::to_string(body.size());
        c.out += extra_header;
        c.out +=
            c.close_after ? "\r\nConnection: close\r\n\r\n" : "\r\nConnection: keep-alive\r\n\r\n";
        if (!head_only) c.out += body;
        c.state = connection::phase::reply;
        c.deadline = clock::now() + o_.write_deadline;
    };

    // Answers the request whose head is complete in c.in (ends at head_end), if there is one.
    const auto try_request = [&](connection& c) {
        std::size_t head_end = std::string::npos, sep = 0;
        if (const auto crlf = c.in.find("\r\n\r\n"); crlf != std::string::npos)
            head_end = crlf, sep = 4;
        if (const auto lf = c.in.find("\n\n"); lf != std::string::npos && lf < head_end)
            head_end = lf, sep = 2;
        if (head_end == std::string::npos || head_end + sep > o_.max_head) {
            if (c.in.size() > o_.max_head) {
                c.close_after = true;
                close_counted(http_close_reason::head_too_large);
                start_reply(c, 431, "text/plain; charset=utf-8",
                            "request head longer than " + std::to_string(o_.max_head) + " bytes\n",
                            false);
            }
            return;
        }
        const std::string head = c.in.substr(0, head_end);
        c.in.erase(0, head_end + sep);  // a pipelined request stays for the next turn
        const auto first_nl = head.find('\n');
        const std::string_view line = trim(std::string_view(head).substr(
            0, first_nl == std::string::npos ? head.size() : first_nl));
        http_request req;
        req.head = first_nl == std::string::npos ? std::string_view{}
                                                 : std::string_view(head).substr(first_nl + 1);
        const auto sp1 = line.find(' ');
        const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        const std::string_view version =
            sp2 == std::string_view::npos ? std::string_view{} : trim(line.substr(sp2 + 1));
        if (sp2 == std::string_view::npos || version.substr(0, 7) != "HTTP/1.") {
            c.close_after = true;
            close_counted(http_close_reason::bad_request);
            start_reply(c, 400, "text/plain; charset=utf-8", "not an HTTP/1 request\n", false);
            return;
        }
        requests_.fetch_add(1, std::memory_order_relaxed);
        req.method = line.substr(0, sp1);
        req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        req.path = req.target.substr(0, req.target.find('?'));
        const auto connection_header = req.header("Connection");
        const bool keep = version == "HTTP/1.1" ? !iequals(connection_header, "close")
                                                : iequals(connection_header, "keep-alive");
        // A body is never read: after one is announced the connection cannot be reused.
        const auto length = req.header("Content-Length");
        const bool body =
            (!length.empty() && length != "0") || !req.header("Transfer-Encoding").empty();
        c.close_after = !keep || body;
        const bool head_only = req.method == "HEAD";
        if (req.method != "GET" && !head_only) {
            start_reply(c, 405, "text/plain; charset=utf-8", "only GET and HEAD\n", false,
                        "\r\nAllow: GET, HEAD");
            return;
        }
        http_response res;
        try {
            res = fn_(req);
        } catch (const std::exception& e) {
            res = {500, "text/plain; charset=utf-8", "internal error\n"};
            try {
                failed(std::string(req.path) + ": answered 500: " + e.what());
            } catch (...) {  // out of memory: the reply still goes
            }
        } catch (...) {
            res = {500, "text/plain; charset=utf-8", "internal error\n"};
            failed("answered 500");
        }
        start_reply(c, res.status, res.content_type, res.body, head_only);
    };

    const auto write_some = [&](connection& c) {
        while (c.out_off < c.out.size()) {
            const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                c.out_off += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            c.gone = true;  // the client went away
            return;
        }
        std::string().swap(c.out);  // a reply may be large: not kept per idle connection
        c.out_off = 0;
        const auto now = clock::now();
        if (c.close_after) {
            // Error replies: read what the client still sends, then close (see linger).
            ::shutdown(c.fd.get(), SHUT_WR);
            c.state = connection::phase::linger;
            c.deadline = now + linger_after_error;
            c.in.clear();
            return;
        }
        c.state = connection::phase::head;
        c.served = true;
        c.waiting_since = now;
        c.deadline = now + o_.head_deadline;
    };

    // Writes the reply under way; once it is out, answers a request pipelined behind it.
    const auto serve = [&](connection& c) {
        while (!c.gone && c.state == connection::phase::reply) {
            write_some(c);
            if (c.gone || c.state == connection::phase::reply) return;  // the rest later
            if (c.state == connection::phase::head && !c.in.empty()) try_request(c);
        }
    };

    const auto read_some = [&](connection& c) {
        char buf[4096];
        // Bounded per wake-up, so one fast client cannot hold the others.
        for (int i = 0; i < 8 && c.state != connection::phase::reply && !c.gone; ++i) {
            std::size_t want = sizeof buf;
            if (c.state == connection::phase::head)
                want = std::min(want, o_.max_head + 1 - std::min(c.in.size(), o_.max_head));
            const ssize_t n = ::recv(c.fd.get(), buf, want, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n <= 0) {
                c.gone = true;
                return;
            }
            if (c.state == connection::phase::linger) continue;  // thrown away
            c.in.append(buf, static_cast<std::size_t>(n));
            try_request(c);
        }
    };

    // Out of fds (EMFILE, ENFILE): the pending connection keeps the listening socket readable,
    // so accepting pauses for a moment instead of spinning.
    auto accept_paused_until = clock::time_point::min();
    const auto accept_some = [&] {
        for (int i = 0; i < 64; ++i) {
            unique_fd fd(
                ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!fd) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                const int err = errno;
                if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
                    accept_paused_until = clock::now() + std::chrono::milliseconds(100);
                try {
                    failed(std::string("accept: ") + std::strerror(err));
                } catch (...) {
                }
                return;
            }
            if (conns.size() >= o_.max_connections) {
                // Room for the newcomer: the connection that has waited longest for its head.
                connection* oldest = nullptr;
                for (auto& c : conns)
                    if (!c->gone && c->state != connection::phase::reply &&
                        (!oldest || c->waiting_since < oldest->waiting_since))
                        oldest = c.get();
                if (!oldest) {
                    close_counted(http_close_reason::refused);
                    continue;  // fd closed
                }
                close_counted(http_close_reason::evicted);
                oldest->gone = true;
                std::erase_if(conns, [](const auto& c) { return c->gone; });
            }
            accepted_.fetch_add(1, std::memory_order_relaxed);
            auto c = std::make_unique<connection>();
            c->fd = std::move(fd);
            c->waiting_since = clock::now();
            c->deadline = c->waiting_since + o_.head_deadline;
            conns.push_back(std::move(c));
        }
    };

    for (;;) {
        open_.store(conns.size(), std::memory_order_relaxed);
        fds.clear();
        fds.push_back({wake_fd_.get(), POLLIN, 0});
        const bool accepting = clock::now() >= accept_paused_until;
        fds.push_back({listen_fd_.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
        auto next = accepting ? clock::time_point::max() : accept_paused_until;
        for (const auto& c : conns) {
            fds.push_back(
                {c->fd.get(),
                 static_cast<short>(c->state == connection::phase::reply ? POLLOUT : POLLIN), 0});
            next = std::min(next, c->deadline);
        }
        int timeout = -1;
        if (next != clock::time_point::max()) {
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(next - clock::now()).count();
            timeout = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
        }
        const int n = ::poll(fds.data(), fds.size(), timeout);
        if (n < 0 && errno != EINTR) {
            // Nothing sensible is left to do but not to spin: wait for stop().
            pollfd w{wake_fd_.get(), POLLIN, 0};
            (void)::poll(&w, 1, 100);
        }
        if (fds[0].revents) break;  // stop()
        for (std::size_t i = 0; i < conns.size(); ++i) {
            auto& c = *conns[i];
            const short ev = fds[i + 2].revents;
            if (!ev) continue;
            if (c.state != connection::phase::reply) read_some(c);
            serve(c);
        }
        const auto now = clock::now();
        for (auto& c : conns) {
            if (c->gone || now < c->deadline) continue;
            c->gone = true;
            switch (c->state) {
                case connection::phase::reply:
                    close_counted(http_close_reason::slow_reader);
                    break;
                case connection::phase::head:
                    close_counted(c->in.empty() ? http_close_reason::idle
                                                : http_close_reason::slow_head);
                    break;
                case connection::phase::linger:
                    break;  // counted when answered
            }
        }
        std::erase_if(conns, [](const auto& c) { return c->gone; });
        if (fds[1].revents) accept_some();
    }
    conns.clear();
    open_.store(0, std::memory_order_relaxed);
}

}  // namespace telecap::net
