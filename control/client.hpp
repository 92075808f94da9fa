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

}  // namespace telecap::control
