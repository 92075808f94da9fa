#pragma once
// The supervisor: pools of workers on one event loop. It spawns each worker, forwards
// signals, restarts by policy, and stops with a grace period and SIGKILL. A worker's pipes go
// to the intake (intake/intake.hpp), which reads them, captures their lines and hands the
// events to the dispatcher; each worker's events pass its gates (control/gates.hpp) there. The
// control socket's commands (handle_control) change the gates and start, stop or restart
// workers, on the loop thread.

#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "telecap/capture/catalog.hpp"
#include "telecap/capture/parser.hpp"
#include "telecap/capture/stats.hpp"
#include "telecap/control/controls.hpp"
#include "telecap/control/held_controls.hpp"
#include "telecap/control/protocol.hpp"
#include "telecap/control/worker_control_relay.hpp"
#include "telecap/dispatch/dispatcher.hpp"
#include "telecap/intake/intake.hpp"
#include "telecap/io/passthrough.hpp"
#include "telecap/io/rejects_writer.hpp"
#include "telecap/loop/event_loop.hpp"
#include "telecap/metrics/registry.hpp"
#include "telecap/spawn/restart_policy.hpp"
#include "telecap/supervise/worker.hpp"

namespace telecap {

struct pool_spec {
    std::string name = "default";
    std::vector<std::string> command;
    std::map<std::string, std::string> env;
    std::string cwd;
    int instances = 1;
    spawn::restart_options restart;
    std::vector<std::string> outputs;  // extra outputs that see only this pool's events
    std::string catalog_path;          // empty: the run's catalog
    bool capture_stdout = false;
    int telemetry_fd = -1;
    // Dial the worker's gRPC StreamTelemetry at this address (docs/grpc.md, "Client"): its
    // events join the worker's stderr ones. `{port}` here is a free port picked for each start,
    // put wherever `{port}` appears in the command too. Empty: no gRPC.
    std::string grpc;
    // A gRPC worker telecap does not start (`run --grpc ADDR` with no command, a pool with
    // `grpc:` and no `command:`): no process, the stream only (docs/grpc.md, "Remote workers").
    bool remote() const noexcept { return command.empty() && !grpc.empty(); }
};

// A worker's events that come other than through its pipes: telecap dialling the worker's
// gRPC StreamTelemetry (bridge/grpc_client.hpp; the agent makes them). Loop thread.
class event_source {
public:
    virtual ~event_source() = default;
    // Promptly: what was received is delivered first; nothing is delivered after.
    virtual void stop() = 0;
    // The worker's controls changed (ctl toggle, filter): sent on to the worker.
    virtual void controls(const control::effective_controls& c) = 0;
};

struct event_source_request {
    std::string address;       // the pool's `grpc`, with {port} replaced
    std::string worker_id;     // for messages
    grpc_client_stats* stats;  // the worker's, over all its runs
    control::effective_controls controls;
    // Loop thread: one event decoded from the wire, into the worker's stream (normalized,
    // counted, gated and batched as its telemetry lines are). `text` renders it for --rejects.
    std::function<void(const raw_event&, const std::function<std::string()>& text)> deliver;
    // Loop thread: false while the intake holds its reading back (--overflow block): the
    // source then holds back its own.
    std::function<bool()> ready;
};

// Starts dialling (the source is started when returned).
using event_source_factory =
    std::function<std::unique_ptr<event_source>(event_source_request request)>;

// True when a worker of `a` would have to be restarted to run as `b` says: everything but the
// name, the number of instances and the outputs (which are the bus's) is compared.
bool same_process(const pool_spec& a, const pool_spec& b);

struct supervisor_options {
    std::vector<pool_spec> pools;
    pipeline_options pipeline;
    std::string node;                      // the node metadata (the caller resolves the hostname)
    std::optional<std::string> worker_id;  // the id of a single worker (one pool, one instance)
    int stop_signal = SIGTERM;
    std::chrono::milliseconds grace{10000};
    overflow_policy overflow = overflow_policy::drop_newest;
    std::chrono::milliseconds burst_hold{100};  // intake_options::burst_hold
    bool label = false;                         // prefix pass-through lines with "[worker-id] "
    // Reap orphans adopted as a child subreaper (waitpid(-1)) and kill what is left of them
    // at the end. Off by default: a host program's own children are not ours to reap; then
    // only the workers' pids are waited for and the guards clean up. `telecap run` sets it.
    bool reap_orphans = false;
    // telecap-guard's absolute path (spawn/guard.hpp): each worker then runs under a guard
    // that kills whatever the worker leaves behind. Empty: no guard.
    std::string guard;
    // Memory for the partial lines of all workers' streams together (capture/line_budget.hpp).
    std::size_t line_budget = std::size_t{8} << 20;
    // Workers started per loop turn: a stop request between turns is never kept waiting by a
    // large pool.
    int start_batch = 16;
    // While the workers' pipes are read in small pieces, turn after turn, the loop waits this
    // long before reading again, so that each read takes many lines (intake/read_linger.hpp).
    // 0: read at once, always.
    std::chrono::microseconds read_linger{100};
    // The gates on the events that leave each worker (control/controls.hpp): the defaults
    // from the config and the CLI; set_controls() changes them while running.
    control::control_table controls;
    // Asked to reload (SIGHUP, the control socket's reload): re-reads the config, rebuilds what
    // changed and calls reload() (agent/reload.hpp). Returns the reply line for the control
    // socket. Empty: nothing to reload; SIGHUP is then forwarded to the workers as any other
    // signal, and the reload command is refused.
    std::function<std::string()> reload;
    // Asked to reopen the output files (SIGUSR1, the control socket's reopen): returns how
    // many files will be reopened. Empty: none.
    std::function<int()> reopen;
    // Told the service manager's states (sd_notify: "STOPPING=1" when the stop begins). Empty:
    // nobody to tell.
    std::function<void(std::string_view)> notify;
};

// A config read again (supervisor::reload): the pools as they should be now, each with its
// catalog, and the settings that a reload changes in place.
struct supervisor_reload {
    std::vector<pool_spec> pools;
    std::vector<std::shared_ptr<const catalog>> catalogs;  // one per pool
    control::control_table controls;
    std::chrono::milliseconds grace{10000};
    int stop_signal = SIGTERM;
    bool label = false;
};

// What a reload did to the pools, by name.
struct reload_result {
    std::vector<std::string> added, removed, changed, resized, unchanged;
};

// What the supervisor writes to; owned by the caller and outliving the supervisor.
struct supervisor_io {
    dispatcher* events = nullptr;            // required
    passthrough_mux* stderr_pass = nullptr;  // stderr and telemetry-fd pass-through
    passthrough_mux* stdout_pass = nullptr;  // captured stdout's pass-through
    rejects_writer* rejects = nullptr;       // optional
    std::vector<const catalog*> catalogs;    // one per pool, in order; required
    metrics::registry* registry = nullptr;   // optional: per-worker series
    // Required when a pool has `grpc`: makes the gRPC client of a worker (agent/run_command).
    event_source_factory grpc;
    // Optional: the endpoints telecap serves now, for ctl status (called on the loop thread).
    std::function<std::vector<control::listener_status>()> listeners;
    // Optional: the outputs as run now, with their counters, for ctl status and top (called
    // on the loop thread).
    std::function<std::vector<control::output_status>()> outputs;
    // Optional: adds the losses the supervisor does not see (the outputs' dropped events, the
    // removed ones' included, and the taps') to status' "dropped" (called on the loop thread).
    std::function<void(control::run_losses&)> losses;
};

class supervisor final : public control::target, public control::held_target {
public:
    supervisor(event_loop& loop, supervisor_options o, supervisor_io io);
    ~supervisor();
    supervisor(const supervisor&) = delete;
    supervisor& operator=(const supervisor&) = delete;

    // Starts the workers and runs the loop until every worker is done for good, then reads
    // what is left in the pipes and hands the last events over. Returns the exit code: the
    // first failing worker's status (128+N for signal N, 127/126 when it could not be
    // executed), else 0. Signals must be blocked already (spawn::block_signals).
    int run();

    // Begins the stop (as SIGTERM does). Loop thread only.
    void request_stop();
    bool stopping() const noexcept { return stopping_; }
    // What a stop may take past the grace period, all of it together: the pipes' rest, the
    // last batches, the outputs' flush and the streams' drain. telecap promises grace + 2 s;
    // the last 250 ms are for what follows the deadline (a writer thread notices it within
    // 100 ms, --stats is written, the process exits).
    static constexpr std::chrono::milliseconds after_grace{1750};
    // Once a stop began (a signal, request_stop): when everything must be over, the stop's
    // start + grace + after_grace. One deadline shared by every step after the workers,
    // rather than a bound per step (which add up). Nullopt while no stop was asked for.
    std::optional<std::chrono::steady_clock::time_point> stop_deadline() const noexcept {
        if (!stopping_) return std::nullopt;
        return stop_began_ + o_.grace + after_grace;
    }

    // Counters over all workers, plus the supervisor's own drops. Any thread.
    capture_stats totals() const;
    // {"<worker id>": {"pool":..,"pid":..,"state":..,"restarts":..,"lines":..,...}, ...}
    // (control/status.hpp). Loop thread, or once run() has returned.
    std::string workers_json() const { return control::workers_json(status().workers); }
    using scope = control::scope;
    using scope_kind = control::scope_kind;
    // Merges `update` into the scope's overrides and applies the result to the workers it
    // reaches. Refused (nothing changes) with the problem when the update is invalid or the
    // pool or worker does not exist. Loop thread.
    std::optional<std::string> set_controls(const scope& where, control::controls update) override;
    // Puts the scope's overrides back to what they were at startup (the config's and the
    // CLI's; a worker had none). Refused when the scope does not exist. Loop thread.
    std::optional<std::string> reset_controls(const scope& where) override;
    // The controls a worker has now (for status and tests). Loop thread.
    std::optional<control::effective_controls> worker_controls(std::string_view id) const;
    // As set_controls, on behalf of a holder that will go (a `-o grpc?control=workers`
    // stream), for `worker` (in `pool`, if given), else `pool`, else every worker:
    // release_controls(holder) then withdraws its writes (control/held_controls.hpp); set_controls,
    // reset_controls and reload are the operator's word and end the holders' hold. Loop thread.
    std::optional<std::string> hold_controls(std::uint64_t holder, std::string_view worker,
                                             std::string_view pool,
                                             control::controls update) override;
    void release_controls(std::uint64_t holder) override;

    // Stops workers on request: they stay stopped (and keep telecap running) until started
    // again; their exit status does not count. Start starts stopped or finished workers;
    // restart stops running ones and starts them again at once. Refused when the scope does not
    // exist or telecap is stopping. Returns how many workers it acted on. Loop thread.
    std::optional<std::string> stop_workers(const scope& where, int* count) override;
    std::optional<std::string> start_workers(const scope& where, int* count) override;
    std::optional<std::string> restart_workers(const scope& where, int* count) override;
    int workers_in(const scope& where) const override;

    // The pools and workers now (control/status.hpp). Loop thread.
    control::status_snapshot status() const override;
    // Whether the workers' pass-through lines also go to the handlers that take them (`ctl
    // tap --passthrough`: intake::tap_passthrough). Loop thread.
    void tap_passthrough(bool on) { intake_.tap_passthrough(on); }
    std::string status_json() const { return control::status_json(status()); }
    std::optional<std::string> metrics_json() const override;
    std::optional<std::string> reload_config() override;
    std::optional<std::string> reopen_files(int* count) override;
    // One control request line in, its reply out (control/protocol.hpp). Loop thread.
    std::string handle_control(std::string_view line) { return control::handle(line, *this); }

    // Applies a config read again: pools added start, pools removed stop (grace, then SIGKILL)
    // and go, pools whose process spec changed (same_process) restart worker by worker (the
    // next once the previous one has started again), pools whose instances changed only gain
    // or lose workers; the others keep running untouched (same pids). The controls become the
    // config's (changes made through the control socket since are dropped). Refused (nothing
    // changes) while telecap is stopping. Loop thread.
    std::optional<std::string> reload(supervisor_reload r, reload_result* out = nullptr);

    // Times reading stopped because the dispatcher or an output was full (overflow block).
    std::uint64_t backpressure_pauses() const noexcept { return intake_.pauses(); }

private:
    struct worker;
    struct pool_rt;

    void start_next();
    void start(worker& w);
    void exited(worker& w, int status);
    void on_signal(int sig);
    void reap();
    void begin_stop();
    void on_grace_end();
    bool finished() const;
    void after_turn();
    void lifecycle(std::string_view short_name, worker& w,
                   std::vector<std::pair<std::string, measurement_value>> measurements,
                   std::vector<std::pair<std::string, metadata_value>> extra);
    void sweep();
    std::unique_ptr<worker> make_worker(const std::shared_ptr<pool_rt>& rt, int slot);
    void add_worker(std::unique_ptr<worker> w);
    void retire(worker& w);
    void collect_retired();
    void switch_spec(worker& w);
    void roll_next();
    void rolled(worker& w);

    class gatekeeper;
    void configure_gate(worker& w);
    bool admit(worker& w, const event& ev);
    template <typename F>
    void for_each_in(const scope& where, F fn);
    // check_scope, then act(w) on each worker in scope; *count: those it acted on.
    template <typename F>
    std::optional<std::string> act_on_workers(const scope& where, int* count, F act);
    bool start_now(worker& w);
    void ask_to_stop(worker& w);
    void kill_now(worker& w);
    void stop_source(worker& w);
    void dial(worker& w, const std::string& address, const worker_context& ctx);
    void start_remote(worker& w);
    void let_go(worker& w);
    std::optional<std::string> check_scope(const scope& where) const;
    void reconfigure_changed();
    std::string control_line(const worker& w) const;
    void update_emitter(worker& w);
    void queue_control(worker& w, std::string line);
    void flush_control(worker& w);
    void close_control(worker& w);

    event_loop& loop_;
    supervisor_options o_;
    supervisor_io io_;
    intake intake_;  // before workers_: it reads their pipes and counts into their stats
    std::vector<std::shared_ptr<pool_rt>> pools_;  // as configured now (a reload replaces it)
    std::vector<std::unique_ptr<worker>> workers_;
    // Held by the loop thread while it adds, removes or re-points workers, and by the readers
    // on other threads (the registry's collector, totals()).
    mutable std::mutex workers_mu_;
    capture_stats retired_;      // the counters of workers a reload removed (for totals())
    std::deque<worker*> roll_;   // workers to restart with their pool's new spec, in turn
    worker* rolling_ = nullptr;  // the one restarting now
    std::size_t next_start_ = 0;
    std::mt19937_64 rng_;
    control::control_table initial_controls_;  // for reset_controls
    control::held_controls held_;              // what holders (gRPC streams) set
    std::string wire_scratch_;                 // the wire name of an event without a catalog entry
    bool stopping_ = false;
    std::chrono::steady_clock::time_point stop_began_{};
    bool killed_ = false;
    event_loop::timer_id kill_timer_ = 0;
    std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
    metrics::registry::collector_id collector_ = 0;
    metrics::gauge* workers_up_ = nullptr;
};

}  // namespace telecap
