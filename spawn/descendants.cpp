#include "spawn/descendants.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <string>

#include "core/unique_fd.hpp"

namespace telecap::spawn {
namespace {

using clock = std::chrono::steady_clock;

// The whole of a small /proc file; empty if it cannot be read (the process is gone).
std::string read_proc_file(const std::string& path) {
    std::string out;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return out;
    char buf[4096];
    while (true) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    return out;
}

bool all_digits(const char* s) {
    if (*s == '\0') return false;
    for (; *s != '\0'; ++s) {
        if (*s < '0' || *s > '9') return false;
    }
    return true;
}

// The parent of `pid` from /proc/PID/stat ("pid (comm) state ppid ..."; comm may itself hold
// parentheses and spaces, hence the last ')'); -1 if it cannot be read.
pid_t parent_of(pid_t pid) {
    const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 4 >= stat.size()) return -1;
    return static_cast<pid_t>(std::strtol(stat.c_str() + paren + 4, nullptr, 10));
}

void append_pids(const std::string& text, std::vector<pid_t>& out) {
    const char* p = text.c_str();
    while (*p != '\0') {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p) break;
        if (v > 0) out.push_back(static_cast<pid_t>(v));
        p = end;
    }
}

// Without CONFIG_PROC_CHILDREN: every process whose parent is us.
Result<std::vector<pid_t>> scan_proc() {
    std::vector<pid_t> out;
    DIR* dir = ::opendir("/proc");
    if (dir == nullptr) return errno_code(errno);
    const pid_t self = ::getpid();
    while (const dirent* entry = ::readdir(dir)) {
        if (!all_digits(entry->d_name)) continue;
        const auto pid = static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10));
        if (parent_of(pid) == self) out.push_back(pid);
    }
    ::closedir(dir);
    return out;
}

Result<std::vector<pid_t>> list_children_impl() {
    // Our own thread's file exists exactly when the kernel has the feature.
    const std::string own = "/proc/self/task/" + std::to_string(::gettid()) + "/children";
    if (::access(own.c_str(), R_OK) != 0) return scan_proc();
    std::vector<pid_t> out;
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) return errno_code(errno);
    while (const dirent* entry = ::readdir(dir)) {
        if (!all_digits(entry->d_name)) continue;
        // A thread that exits meanwhile has handed its children to another thread, whose file
        // is read too, or will be on the next call.
        append_pids(read_proc_file(std::string("/proc/self/task/") + entry->d_name + "/children"),
                    out);
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// Reaps every child that has exited. Returns how many, or -1 when there is no child at all.
int reap_exited() noexcept {
    int n = 0;
    while (true) {
        const pid_t pid = ::waitpid(-1, nullptr, WNOHANG);
        if (pid > 0) {
            ++n;
        } else if (pid < 0 && errno == EINTR) {
            continue;
        } else if (pid < 0 && errno == ECHILD) {
            return n > 0 ? n : -1;
        } else {
            return n;
        }
    }
}

void pause_briefly(int round) noexcept {
    const long ms = std::min(round + 1, 10);
    const timespec ts{0, ms * 1000000L};
    ::nanosleep(&ts, nullptr);
}

}  // namespace

Result<std::vector<pid_t>> list_children() noexcept {
    try {
        return list_children_impl();
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    }
}

std::error_code signal_child(pid_t pid, int sig) noexcept {
    if (pid <= 0) return std::make_error_code(std::errc::invalid_argument);
    const pid_t self = ::getpid();
    try {
        // The pidfd pins the process we check: if `pid` is reaped and reused after this, the
        // signal goes nowhere (ESRCH) instead of to the newcomer.
        unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
        if (!pidfd) {
            if (errno == ESRCH) return std::make_error_code(std::errc::no_such_process);
            // ENOSYS before Linux 5.3, EPERM under some seccomp filters: check, then kill().
            if (parent_of(pid) != self) return std::make_error_code(std::errc::no_such_process);
            if (::kill(pid, sig) != 0) return errno_code(errno);
            return {};
        }
        if (parent_of(pid) != self) return std::make_error_code(std::errc::no_such_process);
        if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) {
            return errno_code(errno);
        }
        return {};
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    }
}

sweep_result kill_all_descendants(std::chrono::milliseconds timeout) noexcept {
    const auto deadline = clock::now() + timeout;
    sweep_result result;
    while (true) {
        const int reaped = reap_exited();
        if (reaped < 0) return result;  // ECHILD: nothing left
        result.reaped += reaped;

        auto children = list_children();
        if (!children) {  // cannot see them: nothing more we can do
            result.left = 1;
            return result;
        }
        int refused = 0;
        for (const pid_t child : *children) {
            if (signal_child(child, SIGKILL) == std::errc::operation_not_permitted) ++refused;
        }
        if (!children->empty() && refused == static_cast<int>(children->size())) {
            result.left = refused;
            return result;
        }

        // Wait for at least one of them to be reaped; its orphans are ours by then (a dying
        // process hands its children over before it becomes a zombie), so the next round sees
        // them.
        for (int round = 0;; ++round) {
            const int n = reap_exited();
            if (n < 0) return result;
            if (n > 0) {
                result.reaped += n;
                break;
            }
            if (clock::now() >= deadline) {
                auto still = list_children();
                result.left = still ? static_cast<int>(still->size()) : 1;
                return result;
            }
            pause_briefly(round);
        }
    }
}

}  // namespace telecap::spawn
