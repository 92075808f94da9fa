#pragma once
// A started child: move-only owner of its pid and of the parent's ends of its pipes.
//
// With a guard (child_spec::guard), the child is telecap-guard: pid() and pgid() are the
// guard's, which is what to wait for (its exit status is the worker's) and what to signal (it
// forwards signals to the worker's group); worker_pid() is the worker's own pid, for logs and
// metadata only: it is not our child, so never wait for it or signal it.
//
// The destructor closes the pipe fds but neither kills nor waits for the child: the supervisor
// owns the child's lifetime and reaps it (see reaper.hpp). Dropping a child_process whose child
// still runs leaves that child running; its stderr writes then fail with EPIPE.

#include <sys/types.h>

#include <cstddef>
#include <utility>

#include "telecap/core/unique_fd.hpp"

namespace telecap::spawn {

class child_process {
public:
    child_process() noexcept = default;
    // worker_pid <= 0: the child is the worker itself (worker_pid() == pid).
    child_process(pid_t pid, pid_t pgid, unique_fd stderr_fd, unique_fd stdout_fd,
                  unique_fd telemetry_fd, pid_t worker_pid = -1) noexcept;
    child_process(child_process&& other) noexcept;
    child_process& operator=(child_process&& other) noexcept;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() = default;  // closes the fds only; see above

    // -1 when empty (default-constructed, moved from or released).
    pid_t pid() const noexcept { return pid_; }
    // The child's process group: its own pid when spawned with new_process_group. With a guard,
    // the guard's group (the worker leads another one, owned by the guard).
    pid_t pgid() const noexcept { return pgid_; }
    // The worker's pid: pid() without a guard, the pid telecap-guard reported with one.
    // -1 when empty.
    pid_t worker_pid() const noexcept { return worker_pid_; }
    // Whether pid() is telecap-guard rather than the worker itself.
    bool guarded() const noexcept { return worker_pid_ != pid_; }
    bool valid() const noexcept { return pid_ > 0; }

    // Read ends, O_NONBLOCK | O_CLOEXEC; -1 when not captured or already taken.
    int stderr_fd() const noexcept { return stderr_.get(); }
    int stdout_fd() const noexcept { return stdout_.get(); }
    int telemetry_fd() const noexcept { return telemetry_.get(); }
    // The write end of the control pipe (O_NONBLOCK | O_CLOEXEC), -1 without one.
    int control_fd() const noexcept { return control_.get(); }
    // Bytes of child_spec::control_initial already in the pipe.
    std::size_t control_written() const noexcept { return control_written_; }
    void set_control(unique_fd fd, std::size_t written) noexcept {
        control_ = std::move(fd);
        control_written_ = written;
    }

    // Hand an fd's ownership to the caller (e.g. to register it with the event loop).
    unique_fd release_stderr() noexcept { return std::move(stderr_); }
    unique_fd release_stdout() noexcept { return std::move(stdout_); }
    unique_fd release_telemetry() noexcept { return std::move(telemetry_); }
    unique_fd release_control() noexcept { return std::move(control_); }

    // Forget the child and return its pid (the guard's, with a guard); the caller must reap it.
    pid_t release() noexcept;

private:
    pid_t pid_ = -1;
    pid_t pgid_ = -1;
    pid_t worker_pid_ = -1;
    unique_fd stderr_;
    unique_fd stdout_;
    unique_fd telemetry_;
    unique_fd control_;
    std::size_t control_written_ = 0;
};

}  // namespace telecap::spawn
