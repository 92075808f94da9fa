#include "control/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "telecap/core/unique_fd.hpp"

namespace telecap::control {

namespace {

using clock = std::chrono::steady_clock;

// Waits for `events` on fd until the deadline; false when it passed.
bool wait_for(int fd, short events, clock::time_point deadline) {
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return true;  // let the read or write report it
    }
}

// A non-blocking stream socket connecting to `path` in `fd`; the problem or nothing.
std::optional<std::string> connect_to(const std::string& path, unique_fd& fd) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) return "bad socket path";
    std::memcpy(addr.sun_path, path.data(), path.size());
    fd = unique_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return std::string("socket: ") + std::strerror(errno);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS && errno != EAGAIN)
        return "cannot connect to " + path + ": " + std::strerror(errno) +
               " (is telecap run --control " + path + " running?)";
    return std::nullopt;
}

}  // namespace

std::optional<std::string> exchange(const std::string& path, std::string_view request,
                                    std::chrono::milliseconds timeout, std::string& reply) {
    unique_fd fd;
    std::string rest;
    return open_stream(path, request, timeout, reply, fd, rest);
}

std::optional<std::string> open_stream(const std::string& path, std::string_view request,
                                       std::chrono::milliseconds timeout, std::string& reply,
                                       unique_fd& kept, std::string& rest) {
    const auto deadline = clock::now() + timeout;
    unique_fd fd;
    if (auto e = connect_to(path, fd)) return e;
    std::string out(request);
    out += '\n';
    std::size_t off = 0;
    while (off < out.size()) {
        if (!wait_for(fd.get(), POLLOUT, deadline)) return "timed out sending the request";
        const ssize_t n = ::send(fd.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n > 0)
            off += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EINTR && errno != EAGAIN)
            return "cannot send to " + path + ": " + std::strerror(errno);
    }
    reply.clear();
    char buf[16 * 1024];
    while (true) {
        if (!wait_for(fd.get(), POLLIN, deadline)) return "timed out waiting for the reply";
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            reply.append(buf, static_cast<std::size_t>(n));
            if (const auto nl = reply.find('\n'); nl != std::string::npos) {
                rest.assign(reply, nl + 1);
                reply.resize(nl);
                kept = std::move(fd);
                return std::nullopt;
            }
            continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n == 0) return "the server closed the connection without a reply";
        return "cannot read the reply: " + std::string(std::strerror(errno));
    }
}

std::optional<std::string> pending_exchange::start(const std::string& path,
                                                   std::string_view request) {
    fd_.reset();
    if (auto e = connect_to(path, fd_)) {
        fd_.reset();
        return e;
    }
    path_ = path;
    out_.assign(request);
    out_ += '\n';
    in_.clear();
    sent_ = 0;
    return std::nullopt;
}

short pending_exchange::events() const noexcept { return sent_ < out_.size() ? POLLOUT : POLLIN; }

std::optional<std::string> pending_exchange::step(std::string& reply) {
    const auto fail = [this](std::string why) {
        fd_.reset();
        return std::optional<std::string>(std::move(why));
    };
    while (sent_ < out_.size()) {
        const ssize_t n = ::send(fd_.get(), out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL);
        if (n > 0) {
            sent_ += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return std::nullopt;  // the rest when there is room
        return fail("cannot send to " + path_ + ": " + std::strerror(errno));
    }
    char buf[16 * 1024];
    while (true) {
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n > 0) {
            in_.append(buf, static_cast<std::size_t>(n));
            if (const auto nl = in_.find('\n'); nl != std::string::npos) {
                reply.assign(in_, 0, nl);
                fd_.reset();
                return std::string();
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return std::nullopt;
        if (n == 0) return fail("the server closed the connection without a reply");
        return fail("cannot read the reply: " + std::string(std::strerror(errno)));
    }
}

}  // namespace telecap::control
