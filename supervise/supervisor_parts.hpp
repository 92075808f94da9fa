#pragma once
// The supervisor's inner parts (supervise/supervisor.hpp), shared by the files that implement
// it: supervisor.cpp (workers, pipes, stopping), supervisor_control.cpp (gates, the control
// pipe, the control socket's commands) and supervisor_reload.cpp. Not installed.

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "control/gates.hpp"
#include "control/request.hpp"
#include "supervise/supervisor.hpp"

namespace telecap {

namespace supervisor_detail {
using clock = std::chrono::steady_clock;
}  // namespace supervisor_detail

// A worker's gates, as the intake asks them for each of its events.
class supervisor::gatekeeper final : public event_gate {
public:
    gatekeeper(supervisor& s, worker& w) : s_(s), w_(w) {}
    bool admit(const event& ev) override { return s_.admit(w_, ev); }

private:
    supervisor& s_;
    worker& w_;
};

// A pool as configured now, with its catalog. Workers share it; a reload makes a new one
// and the old one goes with the last worker or stream that uses it.
struct supervisor::pool_rt {
    pool_spec spec;
    const catalog* cat = nullptr;
    std::shared_ptr<const catalog> hold;  // set when the supervisor owns the catalog (reload)
};

struct supervisor::worker {
    const pool_spec* pool = nullptr;  // rt's, cached
    const catalog* cat = nullptr;
    std::shared_ptr<pool_rt> rt;
    std::shared_ptr<pool_rt> next;  // a reload's new spec, taken at the next start
    int slot = 0;                   // its instance number in the pool
    bool retired = false;           // its pool was removed or shrunk: it goes once done
    bool roll_queued = false;       // in roll_
    std::string id;
    worker_fsm fsm;
    capture_stats stats;  // written by the loop thread, read anywhere
    relaxed_counter restarts;
    pid_t worker_pid = 0;  // the worker's own pid (with a guard, fsm.pid() is the guard's)
    event_loop::timer_id restart_timer = 0;
    std::unique_ptr<gatekeeper> gates;  // the intake asks it about each event
    control::gate gate;
    // Events the gates removed, by verdict (pass stays 0): asked for, so not data lost.
    std::array<relaxed_counter, static_cast<std::size_t>(control::verdict::count_)> gated{};

    // The control socket's lifecycle commands: `held` stopped on request (not restarted, its
    // exit status ignored, telecap keeps running); `again` to be started once it has exited.
    bool held = false;
    bool again = false;
    bool restart_due = false;             // the next start is the restart policy's (after an exit)
    event_loop::timer_id kill_timer = 0;  // SIGKILL after the grace period of a requested stop

    // The control pipe to the worker's emitter (docs/control.md, "The control pipe"): the
    // write end (non-blocking), the line being written (from ctl_off), and the latest state
    // waiting behind it. A worker that never reads costs the pipe and these two lines.
    unique_fd ctl;
    std::string ctl_out;
    std::size_t ctl_off = 0;
    std::string ctl_next;
    bool ctl_watched = false;
    std::uint64_t ctl_seq = 0;           // the number of the state in ctl_state (0: none yet)
    std::uint64_t ctl_sample_since = 0;  // the first seq with the current sampling settings
    control::effective_controls ctl_state;

    // The gRPC client of a pool with `grpc` (one per run of the worker), its counters over all
    // runs, and its stream in the intake (owned by &grpc).
    std::unique_ptr<event_source> source;
    grpc_client_stats grpc;
    int grpc_port = 0;  // the last {port} picked

    explicit worker(const spawn::restart_options& r) : fsm(r) {}
    worker_context context() const {
        worker_context ctx;
        ctx.worker_id = id;
        ctx.pool_name = pool->name;
        if (worker_pid > 0) ctx.pid = worker_pid;
        return ctx;
    }
};

}  // namespace telecap
