#pragma once
// Signal plumbing for the supervisor loop: blocked mask, signalfd, forwarding, names.

#include <signal.h>
#include <sys/types.h>

#include <array>
#include <string>
#include <string_view>
#include <system_error>

#include "telecap/core/result.hpp"
#include "telecap/core/unique_fd.hpp"

namespace telecap::spawn {

// Signals the supervisor passes on to its children.
inline constexpr std::array<int, 6> forwarded_signals{SIGTERM, SIGINT,  SIGHUP,
                                                      SIGQUIT, SIGUSR1, SIGUSR2};

// forwarded_signals plus SIGCHLD: the set the loop blocks and reads from its signalfd.
sigset_t loop_signal_set() noexcept;

// Blocks `set` in the calling thread (pthread_sigmask SIG_BLOCK); the previous mask goes to
// *old if non-null. Call before creating any thread, so that every thread inherits the mask and
// only the signalfd sees these signals.
std::error_code block_signals(const sigset_t& set, sigset_t* old) noexcept;

// A signalfd for `set`, SFD_NONBLOCK | SFD_CLOEXEC. The signals must also be blocked
// (block_signals), or they are delivered the ordinary way instead.
Result<unique_fd> make_signalfd(const sigset_t& set) noexcept;

// Sends `sig` to the process group `target` (to_group) or to the process `target`.
// A target that is already gone (ESRCH) counts as success: it raced with its own exit.
// target <= 0, or a group of 1, is invalid_argument: kill() would read those as "our own group"
// or "every process".
std::error_code forward_signal(pid_t target, int sig, bool to_group) noexcept;

// "SIGTERM", "SIGRTMIN+2"; "signal 99" for numbers that name no signal.
std::string signal_name(int sig);

// Accepts "TERM", "SIGTERM", "sigterm", "15" and "RTMIN+2"; returns -1 for anything else.
int parse_signal(std::string_view text) noexcept;

}  // namespace telecap::spawn
