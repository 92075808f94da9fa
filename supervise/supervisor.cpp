#include "supervise/supervisor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "capture/event_json.hpp"
#include "control/gates.hpp"
#include "core/log.hpp"
#include "metrics/collectors.hpp"
#include "spawn/descendants.hpp"
#include "spawn/guard.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"
#include "spawn/spawner.hpp"
#include "supervise/lifecycle.hpp"
#include "supervise/supervisor_parts.hpp"

namespace telecap {

namespace {

using supervisor_detail::clock;

dispatcher* checked(dispatcher* d) {
    if (!d) throw std::invalid_argument("supervisor: no dispatcher");
    return d;
}

// "exited with status 3", "killed by SIGSEGV": how a worker ended, for the log.
std::string how_it_ended(int status, int code) {
    if (WIFSIGNALED(status))
        return "killed by " + spawn::signal_name(WTERMSIG(status)) + " (status " +
               std::to_string(code) + ")";
    return "exited with status " + std::to_string(code);
}

// A TCP port free on 127.0.0.1 now (the kernel's pick), 0 when none could be had. Free when
// asked, not reserved: the worker binds it a moment later, as with Snakepit's --port.
int free_port() {
    const unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return 0;
    return ntohs(a.sin_port);
}

// Every "{port}" in `s` replaced by `port`.
std::string with_port(std::string s, const std::string& port) {
    for (std::size_t at = s.find("{port}"); at != std::string::npos;
         at = s.find("{port}", at + port.size()))
        s.replace(at, 6, port);
    return s;
}

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

supervisor::supervisor(event_loop& loop, supervisor_options o, supervisor_io io)
    : loop_(loop),
      o_(std::move(o)),
      io_(std::move(io)),
      intake_(loop, *checked(io_.events),
              {.pipeline = o_.pipeline,
               .overflow = o_.overflow,
               .line_budget = o_.line_budget,
               .read_linger = o_.read_linger,
               .burst_hold = o_.burst_hold},
              {io_.stderr_pass ? io_.stderr_pass->writer() : nullptr,
               io_.stdout_pass ? io_.stdout_pass->writer() : nullptr,
               io_.rejects ? io_.rejects->writer() : nullptr}),
      rng_(std::random_device{}()) {
    if (io_.catalogs.size() != o_.pools.size())
        throw std::invalid_argument("supervisor: one catalog per pool");
    initial_controls_ = o_.controls;
    for (std::size_t p = 0; p < o_.pools.size(); ++p) {
        auto rt = std::make_shared<pool_rt>();
        rt->spec = o_.pools[p];
        rt->cat = io_.catalogs[p];
        pools_.push_back(rt);
        for (int i = 0; i < rt->spec.instances; ++i) workers_.push_back(make_worker(rt, i));
    }
    if (io_.registry) {
        workers_up_ = &io_.registry->get_gauge("telecap_workers_up");
        // Per-worker series, read from the workers' own counters when a snapshot is taken.
        collector_ = io_.registry->add_collector([this](std::vector<metrics::sample>& out) {
            const std::lock_guard lock(workers_mu_);
            for (const auto& w : workers_) {
                const metrics::label_set l{{"worker", w->id}, {"pool", w->pool->name}};
                const auto c = [&](const char* name, std::uint64_t v,
                                   metrics::label_set extra = {}) {
                    auto labels = l;
                    labels.insert(labels.end(), extra.begin(), extra.end());
                    out.push_back(
                        {name, std::move(labels), metrics::kind::counter, static_cast<double>(v)});
                };
                metrics::append_capture_series(out, w->stats, l, counter_scope::pipeline);
                c("telecap_worker_restarts_total", w->restarts);
                for (std::size_t v = 1; v < w->gated.size(); ++v) {
                    const auto why = control::to_string(static_cast<control::verdict>(v));
                    c("telecap_dropped_total", w->gated[v], {{"reason", std::string(why)}});
                }
                if (!w->pool->grpc.empty()) {
                    const auto& g = w->grpc;
                    c("telecap_grpc_client_calls_total", g.calls.load());
                    c("telecap_grpc_client_connects_total", g.connects.load());
                    c("telecap_grpc_client_reconnects_total", g.reconnects.load());
                    c("telecap_grpc_client_stream_ends_total", g.ended.load(), {{"result", "ok"}});
                    c("telecap_grpc_client_stream_ends_total", g.failed.load(),
                      {{"result", "failed"}});
                    c("telecap_grpc_client_events_received_total", g.events.load());
                    c("telecap_grpc_client_read_pauses_total", g.read_pauses.load());
                    c("telecap_grpc_client_controls_sent_total", g.controls_sent.load());
                    out.push_back({"telecap_grpc_client_connected", l, metrics::kind::gauge,
                                   static_cast<double>(g.connected.load())});
                }
            }
            metrics::append_capture_series(out, intake_.own(), {}, counter_scope::queue);
            out.push_back({"telecap_queue_depth",
                           {},
                           metrics::kind::gauge,
                           static_cast<double>(io_.events->depth())});
            out.push_back({"telecap_line_budget_used_bytes",
                           {},
                           metrics::kind::gauge,
                           static_cast<double>(intake_.budget().used())});
            out.push_back({"telecap_line_budget_cuts_total",
                           {},
                           metrics::kind::counter,
                           static_cast<double>(intake_.budget().refusals())});
            out.push_back({"telecap_tap_passthrough_lines_dropped_total",
                           {},
                           metrics::kind::counter,
                           static_cast<double>(intake_.tap_lines_dropped())});
            // The loop's holds (in the pipes) and the dispatch thread's (in its queue).
            out.push_back({"telecap_burst_holds_total",
                           {},
                           metrics::kind::counter,
                           static_cast<double>(intake_.burst_holds() + io_.events->burst_holds())});
            out.push_back({"telecap_burst_hold_overruns_total",
                           {},
                           metrics::kind::counter,
                           static_cast<double>(intake_.burst_hold_overruns() +
                                               io_.events->burst_hold_overruns())});
            out.push_back({"telecap_read_lingers_total",
                           {},
                           metrics::kind::counter,
                           static_cast<double>(loop_.lingers())});
        });
    }
}

supervisor::~supervisor() {
    if (io_.registry && collector_) io_.registry->remove_collector(collector_);
}

std::unique_ptr<supervisor::worker> supervisor::make_worker(const std::shared_ptr<pool_rt>& rt,
                                                            int slot) {
    auto w = std::make_unique<worker>(rt->spec.restart);
    w->rt = rt;
    w->pool = &rt->spec;
    w->cat = rt->cat;
    w->slot = slot;
    w->id = (o_.pools.size() == 1 && rt->spec.instances == 1 && o_.worker_id)
                ? *o_.worker_id
                : rt->spec.name + "-" + std::to_string(slot);
    w->gates = std::make_unique<gatekeeper>(*this, *w);
    w->gate = control::gate(rng_());
    configure_gate(*w);
    return w;
}

// --- events --------------------------------------------------------------------------------

void supervisor::lifecycle(std::string_view short_name, worker& w,
                           std::vector<std::pair<std::string, measurement_value>> measurements,
                           std::vector<std::pair<std::string, metadata_value>> extra) {
    auto ctx = w.context();
    ctx.node = o_.node;
    intake_.push(lifecycle_event(*w.cat, short_name, ctx, std::move(measurements), std::move(extra),
                                 wall_ns()));
}

// --- workers -------------------------------------------------------------------------------

void supervisor::start_next() {
    // A batch per turn, so signals (a stop) are read between batches of a large pool.
    int n = 0;
    while (next_start_ < workers_.size() && n < o_.start_batch) {
        auto& w = *workers_[next_start_++];
        if (!stopping_ && !w.held) start(w);
        ++n;
    }
    if (next_start_ < workers_.size()) loop_.post([this] { start_next(); });
}

void supervisor::start(worker& w) {
    w.restart_timer = 0;
    if (w.next) switch_spec(w);
    if (w.pool->remote()) return start_remote(w);
    spawn::child_spec spec;
    spec.argv = w.pool->command;
    std::string grpc_address = w.pool->grpc;
    if (grpc_address.find("{port}") != std::string::npos) {
        // A port of its own for each start, in the address and wherever the command has it.
        w.grpc_port = free_port();
        if (w.grpc_port == 0)  // the worker gets port 0 and the client fails its calls, counted
            logger()->error("worker {}: no free TCP port on 127.0.0.1 for {{port}}: {}", w.id,
                            std::strerror(errno));
        const std::string port = std::to_string(w.grpc_port);
        grpc_address = with_port(std::move(grpc_address), port);
        for (auto& arg : spec.argv) arg = with_port(std::move(arg), port);
    }
    for (const auto& [k, v] : w.pool->env) spec.env_add.push_back(k + "=" + v);
    spec.env_add.push_back("TELECAP_WORKER_ID=" + w.id);
    spec.env_add.push_back("TELECAP_POOL=" + w.pool->name);
    // The worker's parent is its guard, new on every run: TELECAP_PID names the supervisor
    // that stays, and TELECAP_RUN counts this worker's runs (1 = first start).
    spec.env_add.push_back("TELECAP_PID=" + std::to_string(::getpid()));
    spec.env_add.push_back("TELECAP_RUN=" + std::to_string(w.fsm.runs() + 1));
    spec.cwd = w.pool->cwd;
    spec.capture_stdout = w.pool->capture_stdout;
    spec.telemetry_fd = w.pool->telemetry_fd;
    if (w.pool->telemetry_fd >= 0) {
        // The control pipe sits right above the telemetry fd (docs/control.md).
        spec.control_fd = w.pool->telemetry_fd + 1;
        if (w.ctl_seq == 0) update_emitter(w);
        spec.control_initial = control_line(w);
    }
    spec.guard = o_.guard;
    // A worker in a process group of its own cannot read the terminal (SIGTTIN would stop
    // it for good): it gets /dev/null instead. Any other stdin is inherited.
    spec.stdin_null = ::isatty(STDIN_FILENO) == 1;
    const bool restart = w.fsm.runs() > 0;
    spawn::spawn_step step = spawn::spawn_step::none;
    auto child = spawn::spawn(spec, &step);
    if (!child) {
        const int code = spawn::exit_code_for_spawn_error(child.error());
        logger()->error("cannot run \"{}\" for worker {}: {} ({})",
                        spec.argv.empty() ? "" : spec.argv[0], w.id, child.error().message(),
                        spawn::to_string(step));
        w.fsm.started(0, clock::now());
        w.worker_pid = 0;
        lifecycle("worker_spawn_failed", w, {{"count", std::int64_t{1}}},
                  {{"reason", child.error().message()},
                   {"failure_reason", std::string(spawn::to_string(step))},
                   {"exit_code", std::to_string(code)}});
        exited(w, code << 8);  // as if it had exited with that code
        rolled(w);
        return;
    }
    w.fsm.started(child->pid(), clock::now());
    w.worker_pid = child->worker_pid();
    close_control(w);  // a previous run's, if any
    if (spec.control_fd >= 0) {
        const std::size_t written = child->control_written();
        w.ctl = child->release_control();
        w.ctl_out = spec.control_initial;
        w.ctl_off = written;
        flush_control(w);
    }
    if (workers_up_) workers_up_->add(1);
    if (restart) {
        // A restart the policy made is said at the default level (as supervisord does); one on
        // request (ctl restart, a reload) was asked for.
        if (w.restart_due)
            logger()->warn("worker {} restarted: pid {} (restart {})", w.id, w.worker_pid,
                           w.fsm.runs() - 1);
        else
            logger()->info("worker {} started again: pid {}", w.id, w.worker_pid);
        w.restart_due = false;
        ++w.restarts;
        lifecycle("worker_restarted", w,
                  {{"restart_count", std::int64_t{w.fsm.runs() - 1}}, {"system_time", wall_ns()}},
                  {{"new_pid", std::to_string(w.worker_pid)}});
    }
    lifecycle("worker_spawned", w, {{"system_time", wall_ns()}}, {});

    worker_context ctx = w.context();
    ctx.node = o_.node;
    const auto add = [&](unique_fd fd, passthrough_mux* mux, bool recognize,
                         std::string_view name) {
        if (!fd) return;
        intake_.add(std::move(fd), {.owner = &w,
                                    .cat = w.cat,
                                    .keep = w.rt,  // the pipeline reads its catalog
                                    .ctx = ctx,
                                    .recognize = recognize,
                                    .pass = mux,
                                    .label = o_.label ? "[" + w.id + "] " : "",
                                    .rejects = io_.rejects,
                                    .rejects_id = w.id,
                                    .stats = &w.stats,
                                    .gate = w.gates.get(),
                                    .stream_name = name});
    };
    // With a dedicated telemetry fd, stderr is pass-through only: what a worker merely logs
    // can never inject an event.
    const bool dedicated = w.pool->telemetry_fd >= 0;
    add(child->release_stderr(), io_.stderr_pass, !dedicated, "stderr");
    add(child->release_stdout(), io_.stdout_pass, !dedicated, "stdout");
    add(child->release_telemetry(), io_.stderr_pass, true, "telemetry");
    child->release();  // the loop reaps it
    if (!grpc_address.empty()) dial(w, grpc_address, ctx);
    rolled(w);
}

void supervisor::dial(worker& w, const std::string& address, const worker_context& ctx) {
    if (!io_.grpc) {
        logger()->error("worker {}: grpc {}: this telecap cannot dial gRPC", w.id, address);
        return;
    }
    // The gRPC events get a stream of their own in the intake (same counters, gates, rejects
    // and batches as the pipes'), ended when the worker exits (or, remote, is let go).
    void* stream = intake_.add_unwatched({.owner = &w.grpc,
                                          .cat = w.cat,
                                          .keep = w.rt,
                                          .ctx = ctx,
                                          .recognize = true,
                                          .pass = nullptr,
                                          .label = {},
                                          .rejects = io_.rejects,
                                          .rejects_id = w.id,
                                          .stats = &w.stats,
                                          .gate = w.gates.get()});
    w.source = io_.grpc(
        {.address = address,
         .worker_id = w.id,
         .stats = &w.grpc,
         .controls = w.gate.controls(),
         .deliver = [this, stream](const raw_event& raw,
                                   const auto& text) { intake_.feed_event(stream, raw, text); },
         .ready = [this] { return !intake_.paused(); }});
}

void supervisor::start_remote(worker& w) {
    // No process: the worker runs elsewhere. It is "running" (phase) with no pid for as long
    // as telecap dials it, which is until telecap stops or `ctl stop` lets it go; the client
    // reconnects with backoff in between, so nothing here ends it by itself.
    const bool again = w.fsm.runs() > 0;
    w.fsm.started(0, clock::now());
    w.worker_pid = 0;
    if (again) ++w.restarts;
    logger()->info("worker {}: dialling the gRPC worker at {} (not started by telecap)", w.id,
                   w.pool->grpc);
    worker_context ctx = w.context();
    ctx.node = o_.node;
    dial(w, w.pool->grpc, ctx);
    rolled(w);
}

void supervisor::let_go(worker& w) {
    // A remote worker asked to stop: nothing to signal or wait for. Ended as an exit with
    // status 0 would be, so a restart on request and the run's end work as for a process.
    if (w.pool->remote() && w.fsm.phase() == worker_phase::stopping) exited(w, 0);
}

void supervisor::exited(worker& w, int status) {
    const int code = spawn::exit_code_from_status(status);
    // Asked to stop (telecap stops, ctl stop or restart, a reload): the exit is expected.
    const bool asked = stopping_ || w.fsm.phase() == worker_phase::stopping;
    const std::string ended =
        w.pool->remote()
            ? "worker " + w.id + " (gRPC at " + w.pool->grpc + ", not started by telecap) let go"
        : w.fsm.pid() > 0
            ? "worker " + w.id + " (pid " + std::to_string(w.worker_pid) + ") " +
                  how_it_ended(status, code)
            : "worker " + w.id + " could not start (status " + std::to_string(code) + ")";
    close_control(w);
    stop_source(w);
    if (w.fsm.pid() > 0) {
        if (workers_up_) workers_up_->add(-1);
        // Whatever the worker wrote before it died is in the pipe. In block mode an output
        // that is behind stops the drain, and by default a burst hold does: the rest is read
        // as usual (after this exit's event), not pushed past the output's room.
        intake_.drain(&w, true);
        std::vector<std::pair<std::string, metadata_value>> extra{
            {"exit_code", std::to_string(code)}};
        if (WIFSIGNALED(status))
            extra.emplace_back("reason", spawn::signal_name(WTERMSIG(status)));
        else
            extra.emplace_back("reason", std::string(code == 0 ? "normal" : "exit"));
        const auto lifetime =
            std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - w.fsm.started_at());
        lifecycle("worker_terminated", w, {{"lifetime", std::int64_t{lifetime.count()}}},
                  std::move(extra));
    }
    if (w.kill_timer) loop_.cancel(w.kill_timer);
    w.kill_timer = 0;
    const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    w.fsm.exited(code, clock::now(), r);
    if (w.fsm.phase() == worker_phase::done && w.again && !stopping_) {
        // A restart on request: at once, not after a backoff.
        w.again = false;
        logger()->info("{}; starting it again as asked", ended);
        w.fsm.revive();
        start(w);
        return;
    }
    rolled(w);  // not started again now: the roll goes on without it
    switch (w.fsm.phase()) {
        case worker_phase::backoff: {
            const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
                w.fsm.restart_at() - clock::now());
            // Said at the default level whatever the status: a restart is coming.
            logger()->warn("{}; restarting in {} ms", ended, delay.count());
            w.restart_due = true;
            w.restart_timer = loop_.at(w.fsm.restart_at(), [this, &w] { start(w); });
            break;
        }
        case worker_phase::done:
            if (!w.fsm.gave_up().empty())
                logger()->error("{}; not restarted, gave up: {}", ended, w.fsm.gave_up());
            else if (asked || code == 0 || w.fsm.pid() <= 0)  // spawn failures: said already
                logger()->info("{}", ended);
            else
                logger()->warn("{}; not restarted (restart policy)", ended);
            break;
        default:
            break;
    }
}

void supervisor::stop_source(worker& w) {
    if (!w.source) return;
    w.source->stop();  // what it received goes into the stream first
    w.source.reset();
    intake_.close(&w.grpc);
}

void supervisor::reap() {
    if (o_.reap_orphans) {
        // As the subreaper we wait for any child: a worker's guard is matched by its pid, the
        // rest are orphans we inherited. One wait for both, so a worker that exits between
        // two calls is never taken for an orphan (its exit would be lost for good).
        for (const auto& r : spawn::reap_all())
            for (auto& w : workers_)
                if (w->fsm.live() && w->fsm.pid() == r.pid) {
                    exited(*w, r.status);
                    break;
                }
        return;
    }
    // A host that reaps its own children keeps them: each worker by its pid only.
    for (auto& w : workers_) {
        if (!w->fsm.live() || w->fsm.pid() <= 0) continue;
        int status = 0;
        pid_t r;
        do r = ::waitpid(w->fsm.pid(), &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == w->fsm.pid()) exited(*w, status);
    }
}

// --- stopping ------------------------------------------------------------------------------

void supervisor::request_stop() { begin_stop(); }

void supervisor::begin_stop() {
    if (stopping_) {
        // A second request: no more grace.
        if (!killed_) {
            loop_.cancel(kill_timer_);
            on_grace_end();
        }
        return;
    }
    stopping_ = true;
    if (o_.notify) o_.notify("STOPPING=1");
    stop_began_ = clock::now();
    kill_timer_ = loop_.after(o_.grace, [this] { on_grace_end(); });
    for (auto& w : workers_) {
        if (w->restart_timer) loop_.cancel(w->restart_timer);
        w->restart_timer = 0;
        if (w->fsm.stop()) spawn::forward_signal(w->fsm.pid(), o_.stop_signal, true);
        let_go(*w);
    }
}

void supervisor::on_grace_end() {
    killed_ = true;
    for (auto& w : workers_) kill_now(*w);
    // Back-pressure ends with the grace period: what cannot be queued now is dropped.
    intake_.escape();
}

void supervisor::on_signal(int sig) {
    if (sig == SIGCHLD) return reap();
    if (sig == SIGTERM || sig == SIGINT) return begin_stop();  // the workers get --stop-signal
    if (sig == SIGHUP && o_.reload) {
        // With a config, SIGHUP reloads it (as for nginx or Prometheus), and is not forwarded.
        const std::string reply = o_.reload();
        if (reply.rfind("{\"ok\":true", 0) == 0) logger()->info("reloaded on SIGHUP: {}", reply);
        return;
    }
    if (sig == SIGUSR1) {
        // telecap's own: reopen the output files after a rotation (nginx's USR1, what a
        // logrotate postrotate sends). Not forwarded: a worker that does not handle USR1 dies of
        // it.
        const int n = o_.reopen ? o_.reopen() : 0;
        logger()->info("SIGUSR1: reopening {} file{}", n, n == 1 ? "" : "s");
        return;
    }
    for (auto& w : workers_)
        if (w->fsm.live() && w->fsm.pid() > 0) spawn::forward_signal(w->fsm.pid(), sig, true);
}

bool supervisor::finished() const {
    // A worker stopped on request may be started again: telecap waits for it (or a stop).
    return next_start_ >= workers_.size() &&
           std::all_of(workers_.begin(), workers_.end(), [this](const auto& w) {
               return w->fsm.phase() == worker_phase::done && (stopping_ || !w->held);
           });
}

void supervisor::after_turn() {
    intake_.end_turn();
    collect_retired();
}

void supervisor::sweep() {
    // Nothing telecap started outlives it: as the subreaper of everything below it, it kills
    // its remaining children until none is left (spawn/descendants.hpp). Only its own
    // children are signalled, never a process group whose id may have been reused. A host
    // that reaps its own children (reap_orphans off) relies on the guards instead.
    if (!o_.reap_orphans) return;
    const auto r = spawn::kill_all_descendants();
    if (r.left > 0) logger()->error("{} processes left behind could not be killed", r.left);
}

int supervisor::run() {
    loop_.on_signals(spawn::loop_signal_set(), [this](int sig) { on_signal(sig); });
    start_next();
    for (;;) {
        after_turn();  // first: a worker a reload retired goes, and may be the last one
        if (finished()) break;
        loop_.run_once();
    }
    for (auto& w : workers_) stop_source(*w);
    sweep();
    intake_.close_all();
    // The last batch: in block mode it may wait for room, with the same bound a stuck handler
    // gets at shutdown, and within the stop's deadline (what is after it needs a moment too:
    // half of what is left).
    auto patience = std::max<std::chrono::milliseconds>(o_.grace, std::chrono::seconds(5));
    if (const auto end = stop_deadline())
        patience = std::clamp(
            std::chrono::duration_cast<std::chrono::milliseconds>(*end - clock::now()) / 2,
            std::chrono::milliseconds(0), patience);
    intake_.finish(patience);
    for (auto& w : workers_)
        if (!w->held && w->fsm.exit_code() && *w->fsm.exit_code() != 0)
            return *w->fsm.exit_code();  // a stop on request is not a failure
    return 0;
}

capture_stats supervisor::totals() const {
    capture_stats t = intake_.own();
    const std::lock_guard lock(workers_mu_);
    t += retired_;
    for (const auto& w : workers_) t += w->stats;
    return t;
}

}  // namespace telecap
