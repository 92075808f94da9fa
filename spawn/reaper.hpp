#pragma once
// Collecting exited children and turning wait statuses into exit codes.

#include <sys/types.h>

#include <system_error>
#include <vector>

namespace telecap::spawn {

struct reaped {
    pid_t pid;
    int status;  // raw wait status; see exit_code_from_status
};

// Reaps every child that has exited, including orphans adopted as a subreaper:
// waitpid(-1, WNOHANG) until it returns 0 or fails with ECHILD; EINTR is retried.
// Call after each SIGCHLD: several exits may be merged into one signal.
// Aborts on allocation failure (losing a status would leave its child unsupervised).
std::vector<reaped> reap_all() noexcept;

// The exit code, or 128 + signal number for a death by signal (the shell's convention);
// -1 for a status that is neither (stopped or continued).
int exit_code_from_status(int wait_status) noexcept;

// PR_SET_CHILD_SUBREAPER: orphaned descendants are reparented to this process instead of
// init, so reap_all() collects them.
std::error_code become_subreaper() noexcept;

}  // namespace telecap::spawn
