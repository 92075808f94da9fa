// The supervisor's controls: each worker's gates, the control pipe to its emitter, and the
// control socket's commands (start, stop, restart, status).
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "capture/event_json.hpp"
#include "core/log.hpp"
#include "io/passthrough.hpp"
#include "io/rejects_writer.hpp"
#include "metrics/collectors.hpp"
#include "spawn/descendants.hpp"
#include "spawn/guard.hpp"
#include "spawn/signals.hpp"
#include "supervise/supervisor.hpp"
#include "supervise/supervisor_parts.hpp"

namespace telecap {

using supervisor_detail::clock;

// --- controls ------------------------------------------------------------------------------

void supervisor::configure_gate(worker& w) {
    w.gate.configure(o_.controls.resolve(w.pool->name, w.id), w.cat->event_count());
    if (w.source) w.source->controls(w.gate.controls());
}

bool supervisor::admit(worker& w, const event& ev) {
    auto& g = w.gate;
    if (g.open()) return true;
    std::size_t known = std::string_view::npos;
    std::string_view wire;
    if (g.needs_name()) {
        if (ev.name_id) {
            known = w.cat->event_index(*static_cast<const catalog::wire_event*>(ev.name_id));
            wire = w.cat->wire_name(known);
        } else {
            // Kept unknown event: the catalog's prefix, then the wire name's parts.
            const std::size_t skip = w.cat->policies().unknown_event_prefix.size();
            wire_scratch_.clear();
            for (std::size_t i = skip; i < ev.name.size(); ++i) {
                if (i > skip) wire_scratch_ += '.';
                wire_scratch_ += ev.name[i];
            }
            wire = wire_scratch_;
        }
    }
    const auto now = g.controls().limit.events_per_second > 0 ? clock::now() : clock::time_point{};
    // The emitter drew for the current sampling settings already: a second draw would square
    // the rate. Events it tagged with an older state (or none) are sampled here as usual.
    const bool presampled =
        ev.control_seq != 0 && ev.control_seq >= w.ctl_sample_since && ev.control_seq <= w.ctl_seq;
    const auto v = g.decide(known, wire, now, presampled);
    if (v == control::verdict::pass) return true;
    ++w.gated[static_cast<std::size_t>(v)];
    return false;
}

std::optional<std::string> supervisor::check_scope(const scope& where) const {
    switch (where.kind) {
        case scope_kind::global:
            return std::nullopt;
        case scope_kind::pool:
            for (const auto& p : pools_)
                if (p->spec.name == where.name) return std::nullopt;
            return "no pool \"" + where.name + "\"";
        case scope_kind::worker:
            for (const auto& w : workers_)
                if (w->id == where.name) return std::nullopt;
            return "no worker \"" + where.name + "\"";
    }
    return "bad scope";
}

std::optional<std::string> supervisor::set_controls(const scope& where, control::controls update) {
    if (auto p = check_scope(where)) return p;
    if (auto p = control::check(update)) return p;
    auto& t = o_.controls;
    control::controls& target = where.kind == scope_kind::global ? t.global
                                : where.kind == scope_kind::pool ? t.pools[where.name]
                                                                 : t.workers[where.name];
    held_.overridden(where, update);  // the operator's word: no gRPC stream holds these now
    control::merge(target, update);
    reconfigure_changed();
    return std::nullopt;
}

std::optional<std::string> supervisor::reset_controls(const scope& where) {
    if (auto p = check_scope(where)) return p;
    held_.reset(where);
    auto& t = o_.controls;
    const auto restore = [&](auto& now, const auto& initial) {
        if (const auto it = initial.find(where.name); it != initial.end())
            now[where.name] = it->second;
        else
            now.erase(where.name);
    };
    switch (where.kind) {
        case scope_kind::global:
            t.global = initial_controls_.global;
            break;
        case scope_kind::pool:
            restore(t.pools, initial_controls_.pools);
            break;
        case scope_kind::worker:
            restore(t.workers, initial_controls_.workers);
            break;
    }
    reconfigure_changed();
    return std::nullopt;
}

std::optional<std::string> supervisor::hold_controls(std::uint64_t holder, std::string_view worker,
                                                     std::string_view pool,
                                                     control::controls update) {
    scope where;
    if (!worker.empty()) {
        // Both named: the holder sees that worker's events only if it is in that pool, so it
        // may act on it only then.
        const auto it = std::find_if(workers_.begin(), workers_.end(),
                                     [&](const auto& w) { return w->id == worker; });
        if (it == workers_.end()) return "no worker \"" + std::string(worker) + "\"";
        if (!pool.empty() && (*it)->pool->name != pool)
            return "worker \"" + std::string(worker) + "\" is not in pool \"" + std::string(pool) +
                   "\"";
        where = {scope_kind::worker, std::string(worker)};
    } else if (!pool.empty()) {
        where = {scope_kind::pool, std::string(pool)};
    }
    if (auto p = check_scope(where)) return p;
    if (auto p = control::check(update)) return p;
    control::controls& target = control::scope_controls(o_.controls, where);
    held_.note(holder, where, target, update);
    control::merge(target, update);
    reconfigure_changed();
    return std::nullopt;
}

void supervisor::release_controls(std::uint64_t holder) {
    if (held_.withdraw(holder, o_.controls)) reconfigure_changed();
}

void supervisor::reconfigure_changed() {
    // Only the workers whose effective controls changed lose their caches and buckets.
    const auto& t = o_.controls;
    for (auto& w : workers_) {
        const auto e = t.resolve(w->pool->name, w->id);
        if (!(e == w->gate.controls())) {
            w->gate.configure(e, w->cat->event_count());
            if (w->source) w->source->controls(e);  // a gRPC worker's, down its stream
        }
        update_emitter(*w);
    }
}

// --- the control pipe ----------------------------------------------------------------------

std::string supervisor::control_line(const worker& w) const {
    std::string line;
    control::append_emitter_controls_json(line, w.ctl_state, w.ctl_seq);
    line += '\n';
    return line;
}

void supervisor::update_emitter(worker& w) {
    const auto& e = w.gate.controls();
    const auto& was = w.ctl_state;
    const bool sample_changed = !(e.sample == was.sample);
    if (w.ctl_seq != 0 && e.enabled == was.enabled && !sample_changed && e.filt == was.filt)
        return;  // a rate limit stays here: nothing for the emitter
    ++w.ctl_seq;
    if (sample_changed || w.ctl_sample_since == 0) w.ctl_sample_since = w.ctl_seq;
    w.ctl_state = e;
    if (w.ctl) queue_control(w, control_line(w));
}

void supervisor::queue_control(worker& w, std::string line) {
    // Only the latest state matters: a line not begun yet is replaced, and one half written
    // (longer than PIPE_BUF) is finished first, then followed by the latest.
    if (w.ctl_off == 0) {
        w.ctl_out = std::move(line);
        w.ctl_next.clear();
    } else {
        w.ctl_next = std::move(line);
    }
    flush_control(w);
}

void supervisor::flush_control(worker& w) {
    while (w.ctl) {
        if (w.ctl_off == w.ctl_out.size()) {
            w.ctl_out.clear();
            w.ctl_off = 0;
            if (w.ctl_next.empty()) break;
            w.ctl_out.swap(w.ctl_next);
        }
        const ssize_t n =
            ::write(w.ctl.get(), w.ctl_out.data() + w.ctl_off, w.ctl_out.size() - w.ctl_off);
        if (n > 0) {
            w.ctl_off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;  // full: written when the worker reads
        close_control(w);                     // EPIPE: the worker closed it, which is its right
        return;
    }
    const bool pending = w.ctl && !w.ctl_out.empty();
    if (pending && !w.ctl_watched) {
        w.ctl_watched = true;
        loop_.watch_writable(w.ctl.get(), [this, &w] { flush_control(w); });
    } else if (!pending && w.ctl_watched) {
        w.ctl_watched = false;
        loop_.unwatch(w.ctl.get());
    }
}

void supervisor::close_control(worker& w) {
    if (w.ctl_watched) loop_.unwatch(w.ctl.get());
    w.ctl_watched = false;
    w.ctl.reset();
    w.ctl_out.clear();
    w.ctl_next.clear();
    w.ctl_off = 0;
}

std::optional<control::effective_controls> supervisor::worker_controls(std::string_view id) const {
    for (const auto& w : workers_)
        if (w->id == id) return w->gate.controls();
    return std::nullopt;
}

// --- lifecycle on request --------------------------------------------------------------------

namespace {
template <typename W>
bool in_scope(const control::scope& where, const W& w) {
    return where.kind == control::scope_kind::global ||
           (where.kind == control::scope_kind::pool && w.pool->name == where.name) ||
           (where.kind == control::scope_kind::worker && w.id == where.name);
}
}  // namespace

template <typename F>
void supervisor::for_each_in(const scope& where, F fn) {
    for (auto& w : workers_)
        if (in_scope(where, *w)) fn(*w);
}

void supervisor::ask_to_stop(worker& w) {
    if (w.restart_timer) loop_.cancel(w.restart_timer);
    w.restart_timer = 0;
    if (!w.fsm.stop()) return let_go(w);
    spawn::forward_signal(w.fsm.pid(), o_.stop_signal, true);
    w.kill_timer = loop_.after(o_.grace, [this, &w] {
        w.kill_timer = 0;
        kill_now(w);
    });
}

void supervisor::kill_now(worker& w) {
    if (!w.fsm.live() || w.fsm.pid() <= 0) return;
    logger()->warn("worker {} still running after the grace period: SIGKILL", w.id);
    if (o_.guard.empty())
        spawn::forward_signal(w.fsm.pid(), SIGKILL, true);
    else
        spawn::signal_child(w.fsm.pid(), spawn::guard_kill_signal());  // and its tree
}

template <typename F>
std::optional<std::string> supervisor::act_on_workers(const scope& where, int* count, F act) {
    if (auto p = check_scope(where)) return p;
    if (stopping_) return "telecap is stopping";
    int n = 0;
    for_each_in(where, [&](worker& w) { n += act(w) ? 1 : 0; });
    if (count) *count = n;
    return std::nullopt;
}

// Starts a worker that is done (again), or at once one that waits to restart.
bool supervisor::start_now(worker& w) {
    switch (w.fsm.phase()) {
        case worker_phase::done:
            w.again = false;
            w.fsm.revive();
            start(w);
            return true;
        case worker_phase::backoff:
            loop_.cancel(w.restart_timer);
            start(w);
            return true;
        default:
            return false;
    }
}

std::optional<std::string> supervisor::stop_workers(const scope& where, int* count) {
    return act_on_workers(where, count, [&](worker& w) {
        w.again = false;
        if (w.held) return false;
        w.held = true;
        ask_to_stop(w);
        return true;
    });
}

std::optional<std::string> supervisor::start_workers(const scope& where, int* count) {
    return act_on_workers(where, count, [&](worker& w) {
        const bool was_held = w.held;
        w.held = false;
        // A requested stop under way: start it once it ends.
        if (w.fsm.phase() != worker_phase::stopping) return start_now(w);
        if (was_held) w.again = true;
        return was_held;  // running, or not started yet (it will be): nothing to do
    });
}

std::optional<std::string> supervisor::restart_workers(const scope& where, int* count) {
    return act_on_workers(where, count, [&](worker& w) {
        w.held = false;
        switch (w.fsm.phase()) {
            case worker_phase::running:
                w.again = true;
                ask_to_stop(w);
                return true;
            case worker_phase::stopping:
                w.again = true;
                return true;
            default:
                return start_now(w);
        }
    });
}

int supervisor::workers_in(const scope& where) const {
    int n = 0;
    for (const auto& w : workers_) n += in_scope(where, *w) ? 1 : 0;
    return n;
}

control::status_snapshot supervisor::status() const {
    const auto now = clock::now();
    const auto secs = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
    control::status_snapshot s;
    s.uptime_seconds = secs(now - born_);
    s.stopping = stopping_;
    for (const auto& p : pools_) s.pools.push_back({p->spec.name, p->spec.instances});
    for (const auto& w : workers_) {
        control::worker_status ws;
        ws.id = w->id;
        ws.pool = w->pool->name;
        ws.pid = w->fsm.pid();
        ws.worker_pid = w->fsm.live() ? w->worker_pid : 0;
        // A worker telecap dials but does not run has no process to be "running".
        ws.state = w->pool->remote() && w->fsm.phase() == worker_phase::running
                       ? "remote"
                       : to_string(w->fsm.phase());
        ws.stopped_on_request = w->held;
        ws.restarts = w->fsm.restarts();
        ws.uptime_seconds = w->fsm.live() ? secs(now - w->fsm.started_at()) : 0.0;
        ws.exit_code = w->fsm.exit_code();
        ws.stats = &w->stats;
        for (std::size_t v = 0; v < w->gated.size(); ++v) ws.gated[v] = w->gated[v];
        ws.controls = &w->gate.controls();
        s.workers.push_back(ws);
    }
    if (io_.listeners) s.listeners = io_.listeners();
    if (io_.outputs) s.outputs = io_.outputs();
    s.queue_depth = io_.events ? io_.events->depth() : 0;
    const auto& own = intake_.own();
    s.dropped.queue_full = own.dropped[static_cast<std::size_t>(drop_reason::queue_full)];
    s.dropped.shutdown = own.dropped[static_cast<std::size_t>(drop_reason::shutdown)];
    // Lines the streams dropped (dead or full): each writer once, stdout's and stderr's
    // pass-through may share one.
    const stream_writer* pass[2] = {io_.stderr_pass ? io_.stderr_pass->writer() : nullptr,
                                    io_.stdout_pass ? io_.stdout_pass->writer() : nullptr};
    if (pass[1] == pass[0]) pass[1] = nullptr;
    for (const auto* w : pass)
        if (w) s.dropped.passthrough_lines += w->counters().dropped_lines.load();
    if (io_.rejects && io_.rejects->writer())
        s.dropped.rejects_lines = io_.rejects->writer()->counters().dropped_lines.load();
    if (io_.losses) io_.losses(s.dropped);
    const auto usage = metrics::read_process_usage();
    s.cpu_seconds = usage.cpu_seconds;
    s.rss_bytes = usage.rss_bytes;
    return s;
}

std::optional<std::string> supervisor::metrics_json() const {
    if (!io_.registry) return std::nullopt;
    return metrics::to_json(io_.registry->snapshot());
}

std::optional<std::string> supervisor::reopen_files(int* count) {
    *count = o_.reopen ? o_.reopen() : 0;
    return std::nullopt;
}

std::optional<std::string> supervisor::reload_config() {
    if (!o_.reload) return std::nullopt;
    return o_.reload();
}

}  // namespace telecap
