#include "spawn/child_process.hpp"

#include <utility>

namespace telecap::spawn {

child_process::child_process(pid_t pid, pid_t pgid, unique_fd stderr_fd, unique_fd stdout_fd,
                             unique_fd telemetry_fd, pid_t worker_pid) noexcept
    : pid_(pid),
      pgid_(pgid),
      worker_pid_(worker_pid > 0 ? worker_pid : pid),
      stderr_(std::move(stderr_fd)),
      stdout_(std::move(stdout_fd)),
      telemetry_(std::move(telemetry_fd)) {}

child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pgid_(std::exchange(other.pgid_, -1)),
      worker_pid_(std::exchange(other.worker_pid_, -1)),
      stderr_(std::move(other.stderr_)),
      stdout_(std::move(other.stdout_)),
      telemetry_(std::move(other.telemetry_)),
      control_(std::move(other.control_)),
      control_written_(std::exchange(other.control_written_, 0)) {}

child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        pid_ = std::exchange(other.pid_, -1);
        pgid_ = std::exchange(other.pgid_, -1);
        worker_pid_ = std::exchange(other.worker_pid_, -1);
        stderr_ = std::move(other.stderr_);
        stdout_ = std::move(other.stdout_);
        telemetry_ = std::move(other.telemetry_);
        control_ = std::move(other.control_);
        control_written_ = std::exchange(other.control_written_, 0);
    }
    return *this;
}

pid_t child_process::release() noexcept {
    pgid_ = -1;
    worker_pid_ = -1;
    return std::exchange(pid_, -1);
}

}  // namespace telecap::spawn
