#pragma once
// The client side of the control socket (docs/control.md): one request line out, one reply
// line back, within a deadline. What `telecap ctl` uses; a host program may speak the
// protocol itself instead.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "telecap/core/unique_fd.hpp"

namespace telecap::control {

// Sends `request` (one JSON object, no newline) to the socket at `path` and reads the reply
// line into `reply` (without its newline). The problem (no server there, timed out, the
// server hung up) or nothing.
std::optional<std::string> exchange(const std::string& path, std::string_view request,
                                    std::chrono::milliseconds timeout, std::string& reply);

// Like exchange, for a request that opens a stream (tap): the connection stays open in `fd`
// (non-blocking) for what follows the reply, of which `rest` holds what was read already.
std::optional<std::string> open_stream(const std::string& path, std::string_view request,
                                       std::chrono::milliseconds timeout, std::string& reply,
                                       unique_fd& fd, std::string& rest);

// One request and its reply without blocking, for a caller that waits on other fds too
// (`telecap top`'s keys): it polls fd() for events() along with its own and calls step() when
// the socket is ready; it keeps the deadline (step() is not called when nothing happens).
class pending_exchange {
public:
    // Connects and queues `request` (one JSON object, no newline); the problem (no server
    // there) or nothing.
    std::optional<std::string> start(const std::string& path, std::string_view request);
    bool active() const noexcept { return static_cast<bool>(fd_); }
    int fd() const noexcept { return fd_.get(); }
    short events() const noexcept;  // POLLOUT while the request goes out, then POLLIN

    // Sends or reads what the socket takes or has now. Returns nothing while the reply is not
    // whole; then the problem, or "" with the reply line (without its newline) in `reply`.
    // Either way the exchange is over (not active()).
    std::optional<std::string> step(std::string& reply);
    void cancel() noexcept { fd_.reset(); }

private:
    unique_fd fd_;
    std::string path_, out_, in_;
    std::size_t sent_ = 0;
};

}  // namespace telecap::control
