#pragma once
// Listening on a Unix stream socket at a path, the one way telecap does it (the unix: output,
// the control socket): mode 0600 from the start, a stale socket file left by a dead process
// replaced, a live one (another telecap) refused, anything else there refused.

#include <sys/types.h>

#include <optional>
#include <string>

#include "telecap/core/unique_fd.hpp"

namespace telecap {

struct unix_listening {
    unique_fd fd;   // non-blocking, CLOEXEC, listening
    dev_t dev = 0;  // the socket file's identity, for unlink_if_ours
    ino_t ino = 0;
};

// The reason it cannot listen (without the path), or nothing with `out` set.
std::optional<std::string> listen_unix(const std::string& path, int backlog, unix_listening& out);

// Removes the socket file at `path` only if it is still the one listen_unix made.
void unlink_if_ours(const std::string& path, const unix_listening& l) noexcept;

}  // namespace telecap
