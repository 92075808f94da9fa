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
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) return "bad socket path";
    std::memcpy(addr.sun_path, path.data(), path.size());
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return std::string("socket: ") + std::strerror(errno);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS && errno != EAGAIN)
        return "cannot connect to " + path + ": " + std::strerror(errno) +
               " (is telecap run --control " + path + " running?)";
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

}  // namespace telecap::control
