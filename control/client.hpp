#pragma once
// The client side of the control socket (docs/control.md): one request line out, one reply
// line back, within a deadline. What `telecap ctl` uses; a host program may speak the
// protocol itself instead.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace telecap::control {

// Sends `request` (one JSON object, no newline) to the socket at `path` and reads the reply
// line into `reply` (without its newline). The problem (no server there, timed out, the
// server hung up) or nothing.
std::optional<std::string> exchange(const std::string& path, std::string_view request,
                                    std::chrono::milliseconds timeout, std::string& reply);

}  // namespace telecap::control
