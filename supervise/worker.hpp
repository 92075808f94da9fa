#pragma once
// The life of one worker as a state machine, without processes: what the supervisor does on
// each thing that happens to it. Pure: time and randomness come in as arguments.
//
//   idle --started--> running --exited--> backoff --due--> (started) running ...
//                        |                    \--> done (no restart, or gave up)
//                        +--stop--> stopping --exited--> done
//   idle/backoff --stop--> done

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "telecap/spawn/restart_policy.hpp"

namespace telecap {

enum class worker_phase { idle, running, stopping, backoff, done };
const char* to_string(worker_phase p) noexcept;

class worker_fsm {
public:
    using clock = std::chrono::steady_clock;

    explicit worker_fsm(spawn::restart_options r) : tracker_(r) {}

    worker_phase phase() const noexcept { return phase_; }
    bool live() const noexcept {
        return phase_ == worker_phase::running || phase_ == worker_phase::stopping;
    }
    pid_t pid() const noexcept { return pid_; }
    int runs() const noexcept { return runs_; }  // starts attempted so far
    int restarts() const noexcept { return runs_ > 0 ? runs_ - 1 : 0; }
    std::optional<int> exit_code() const noexcept { return exit_code_; }
    clock::time_point started_at() const noexcept { return started_at_; }
    clock::time_point restart_at() const noexcept { return restart_at_; }
    const std::string& gave_up() const noexcept { return gave_up_; }  // why, when it did

    // A start was attempted (idle or backoff): pid > 0 when it runs. A failed start (pid 0)
    // must be followed by exited() with its exit code (127/126).
    void started(pid_t pid, clock::time_point now);
    // The process ended with `code` (128+N for signal N). Decides: restart after a delay
    // (phase backoff, restart_at set) or done. random01 in [0, 1] drives the jitter.
    void exited(int code, clock::time_point now, double random01);
    // telecap is stopping: running -> stopping (the caller signals it); idle/backoff -> done.
    // True when the caller must signal the process.
    bool stop();
    // Started again on request (the control socket's start or restart): done -> idle, so
    // started() may follow. The count of runs goes on. False unless it was done.
    bool revive();
    // A new restart policy (a reload changed the pool): the restart history starts over.
    void set_restart(spawn::restart_options r) { tracker_ = spawn::restart_tracker(r); }

private:
    spawn::restart_tracker tracker_;
    worker_phase phase_ = worker_phase::idle;
    pid_t pid_ = 0;
    int runs_ = 0;
    std::optional<int> exit_code_;
    clock::time_point started_at_{};
    clock::time_point restart_at_{};
    std::string gave_up_;
};

}  // namespace telecap
