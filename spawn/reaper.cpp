#include "spawn/reaper.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>

#include <cerrno>

#include "core/result.hpp"

namespace telecap::spawn {

std::vector<reaped> reap_all() noexcept {
    std::vector<reaped> out;
    while (true) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            out.push_back({pid, status});
        } else if (pid < 0 && errno == EINTR) {
            continue;
        } else {
            break;  // 0: children remain but none has exited; ECHILD: no children at all
        }
    }
    return out;
}

int exit_code_from_status(int wait_status) noexcept {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    return -1;
}

std::error_code become_subreaper() noexcept {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return errno_code(errno);
    return {};
}

}  // namespace telecap::spawn
