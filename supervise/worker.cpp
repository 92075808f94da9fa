#include "supervise/worker.hpp"

namespace telecap {

const char* to_string(worker_phase p) noexcept {
    switch (p) {
        case worker_phase::idle:
            return "idle";
        case worker_phase::running:
            return "running";
        case worker_phase::stopping:
            return "stopping";
        case worker_phase::backoff:
            return "backoff";
        case worker_phase::done:
            return "done";
    }
    return "?";
}

void worker_fsm::started(pid_t pid, clock::time_point now) {
    ++runs_;
    pid_ = pid;
    started_at_ = now;
    phase_ = worker_phase::running;
}

void worker_fsm::exited(int code, clock::time_point now, double random01) {
    exit_code_ = code;
    if (phase_ == worker_phase::stopping || phase_ == worker_phase::done) {
        phase_ = worker_phase::done;
        return;
    }
    const auto d = tracker_.on_exit(code != 0, started_at_, now, random01);
    if (d.give_up) {
        gave_up_ = d.reason;
        phase_ = worker_phase::done;
    } else if (d.restart) {
        phase_ = worker_phase::backoff;
        restart_at_ = now + d.delay;
    } else {
        phase_ = worker_phase::done;
    }
}

bool worker_fsm::stop() {
    switch (phase_) {
        case worker_phase::running:
            phase_ = worker_phase::stopping;
            return pid_ > 0;
        case worker_phase::idle:
        case worker_phase::backoff:
            phase_ = worker_phase::done;
            return false;
        default:
            return false;
    }
}

bool worker_fsm::revive() {
    if (phase_ != worker_phase::done) return false;
    phase_ = worker_phase::idle;
    gave_up_.clear();
    return true;
}

}  // namespace telecap
