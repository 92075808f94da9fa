#include "supervise/supervisor.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "capture/event_json.hpp"
#include "metrics/collectors.hpp"
#include "control/gates.hpp"
#include "spawn/descendants.hpp"
#include "spawn/guard.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"
#include "spawn/spawner.hpp"
#include "supervise/lifecycle.hpp"
#include "core/log.hpp"

namespace telecap {

namespace {

using clock = std::chrono::steady_clock;

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// A worker's pipelines' events go through its gates to the supervisor's batch.
class supervisor::sink final : public event_sink {
public:
    sink(supervisor& s, worker& w) : s_(s), w_(w) {}
    void on_event(event& ev) override {
        if (s_.admit(w_, ev)) s_.push(ev);
    }

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

// One pipe from a worker, with its own capture pipeline.
struct supervisor::stream {
    worker* owner = nullptr;
    std::shared_ptr<pool_rt> keep;  // the pipeline reads its catalog
    unique_fd fd;
    std::unique_ptr<passthrough_mux::source> pass;
    std::unique_ptr<rejects_writer::source> rejects;
    std::unique_ptr<capture_pipeline> pipeline;
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
    std::vector<std::unique_ptr<stream>> streams;
    event_loop::timer_id restart_timer = 0;
    std::unique_ptr<sink> out;  // what its pipelines emit to
    control::gate gate;
    // Events the gates removed, by verdict (pass stays 0): asked for, so not data lost.
    std::array<relaxed_counter, static_cast<std::size_t>(control::verdict::count_)> gated{};

    // The control socket's lifecycle commands: `held` stopped on request (not restarted, its
    // exit status ignored, telecap keeps running); `again` to be started once it has exited.
    bool held = false;
    bool again = false;
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

    explicit worker(const spawn::restart_options& r) : fsm(r) {}
    worker_context context() const {
        worker_context ctx;
        ctx.worker_id = id;
        ctx.pool_name = pool->name;
        if (worker_pid > 0) ctx.pid = worker_pid;
        return ctx;
    }
};

supervisor::supervisor(event_loop& loop, supervisor_options o, supervisor_io io)
    : loop_(loop), o_(std::move(o)), io_(std::move(io)), budget_(o_.line_budget),
      rng_(std::random_device{}()), linger_(o_.read_linger) {
    if (!io_.events) throw std::invalid_argument("supervisor: no dispatcher");
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
                const auto c = [&](const char* name, std::uint64_t v, metrics::label_set extra = {}) {
                    auto labels = l;
                    labels.insert(labels.end(), extra.begin(), extra.end());
                    out.push_back({name, std::move(labels), metrics::kind::counter,
                                   static_cast<double>(v)});
                };
                c("telecap_bytes_read_total", w->stats.bytes);
                c("telecap_lines_total", w->stats.lines);
                c("telecap_events_total", w->stats.events);
                c("telecap_passthrough_lines_total", w->stats.passthrough_lines);
                c("telecap_emitter_errors_total", w->stats.emitter_errors);
                c("telecap_worker_restarts_total", w->restarts);
                for (std::size_t r = 0; r < w->stats.rejected.size(); ++r)
                    c("telecap_rejected_total", w->stats.rejected[r],
                      {{"reason", std::string(to_string(static_cast<reject_reason>(r)))}});
                for (std::size_t v = 1; v < w->gated.size(); ++v) {
                    const auto why = control::to_string(static_cast<control::verdict>(v));
                    c("telecap_dropped_total", w->gated[v], {{"reason", std::string(why)}});
                }
            }
            for (std::size_t d = 0; d < own_.dropped.size(); ++d)
                out.push_back({"telecap_dropped_total",
                               {{"reason", std::string(to_string(static_cast<drop_reason>(d)))}},
                               metrics::kind::counter, static_cast<double>(own_.dropped[d])});
            out.push_back({"telecap_queue_depth", {}, metrics::kind::gauge,
                           static_cast<double>(io_.events->depth())});
            out.push_back({"telecap_line_budget_used_bytes", {}, metrics::kind::gauge,
                           static_cast<double>(budget_.used())});
            out.push_back({"telecap_line_budget_cuts_total", {}, metrics::kind::counter,
                           static_cast<double>(budget_.refusals())});
            out.push_back({"telecap_read_lingers_total", {}, metrics::kind::counter,
                           static_cast<double>(loop_.lingers())});
        });
    }
    for (auto* w : {io_.stderr_pass ? io_.stderr_pass->writer() : nullptr,
                    io_.stdout_pass ? io_.stdout_pass->writer() : nullptr,
                    io_.rejects ? io_.rejects->writer() : nullptr})
        if (w) w->on_room([this] { loop_.post([this] { update_backpressure(); }); });
}

supervisor::~supervisor() {
    if (io_.registry && collector_) io_.registry->remove_collector(collector_);
    for (auto* w : {io_.stderr_pass ? io_.stderr_pass->writer() : nullptr,
                    io_.stdout_pass ? io_.stdout_pass->writer() : nullptr,
                    io_.rejects ? io_.rejects->writer() : nullptr})
        if (w) w->on_room({});
}

bool same_process(const pool_spec& a, const pool_spec& b) {
    return a.command == b.command && a.env == b.env && a.cwd == b.cwd && a.restart == b.restart &&
           a.catalog_path == b.catalog_path && a.capture_stdout == b.capture_stdout &&
           a.telemetry_fd == b.telemetry_fd;
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
    w->out = std::make_unique<sink>(*this, *w);
    w->gate = control::gate(rng_());
    configure_gate(*w);
    return w;
}

// --- controls ------------------------------------------------------------------------------

void supervisor::configure_gate(worker& w) {
    w.gate.configure(o_.controls.resolve(w.pool->name, w.id), w.cat->event_count());
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
    const bool presampled = ev.control_seq != 0 && ev.control_seq >= w.ctl_sample_since &&
                            ev.control_seq <= w.ctl_seq;
    const auto v = g.decide(known, wire, now, presampled);
    if (v == control::verdict::pass) return true;
    ++w.gated[static_cast<std::size_t>(v)];
    return false;
}

std::optional<std::string> supervisor::check_scope(const scope& where) const {
    switch (where.kind) {
        case scope_kind::global: return std::nullopt;
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
    control::merge(target, update);
    reconfigure_changed();
    return std::nullopt;
}

std::optional<std::string> supervisor::reset_controls(const scope& where) {
    if (auto p = check_scope(where)) return p;
    auto& t = o_.controls;
    const auto restore = [&](auto& now, const auto& initial) {
        if (const auto it = initial.find(where.name); it != initial.end())
            now[where.name] = it->second;
        else
            now.erase(where.name);
    };
    switch (where.kind) {
        case scope_kind::global: t.global = initial_controls_.global; break;
        case scope_kind::pool: restore(t.pools, initial_controls_.pools); break;
        case scope_kind::worker: restore(t.workers, initial_controls_.workers); break;
    }
    reconfigure_changed();
    return std::nullopt;
}

void supervisor::reconfigure_changed() {
    // Only the workers whose effective controls changed lose their caches and buckets.
    const auto& t = o_.controls;
    for (auto& w : workers_) {
        const auto e = t.resolve(w->pool->name, w->id);
        if (!(e == w->gate.controls())) w->gate.configure(e, w->cat->event_count());
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
        close_control(w);  // EPIPE: the worker closed it, which is its right
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

// --- reload --------------------------------------------------------------------------------

std::optional<std::string> supervisor::reload(supervisor_reload r, reload_result* out) {
    if (stopping_) return "telecap is stopping";
    if (r.catalogs.size() != r.pools.size()) return "one catalog per pool";
    reload_result res;
    o_.grace = r.grace;
    o_.stop_signal = r.stop_signal;
    o_.label = r.label;
    o_.controls = r.controls;
    initial_controls_ = std::move(r.controls);
    o_.pools = r.pools;

    std::vector<std::shared_ptr<pool_rt>> now;
    std::vector<std::unique_ptr<worker>> born;
    for (std::size_t p = 0; p < r.pools.size(); ++p) {
        auto& spec = r.pools[p];
        std::shared_ptr<pool_rt> old;
        for (const auto& rt : pools_)
            if (rt->spec.name == spec.name) old = rt;
        auto rt = std::make_shared<pool_rt>();
        const bool same = old && same_process(old->spec, spec);
        if (same) {
            rt->cat = old->cat;  // the catalog file is the same: the workers keep theirs
            rt->hold = old->hold;
        } else {
            rt->hold = r.catalogs[p];
            rt->cat = rt->hold.get();
        }
        rt->spec = std::move(spec);
        now.push_back(rt);
        if (!old) {
            for (int i = 0; i < rt->spec.instances; ++i) born.push_back(make_worker(rt, i));
            res.added.push_back(rt->spec.name);
            continue;
        }
        int have = 0;
        for (auto& w : workers_) {
            if (w->retired || w->rt->spec.name != rt->spec.name) continue;
            if (w->slot >= rt->spec.instances) {
                retire(*w);
                continue;
            }
            ++have;
            if (same) {
                const std::lock_guard lock(workers_mu_);
                w->rt = rt;
                w->pool = &rt->spec;
                w->next.reset();  // an earlier reload's change, undone by this one
                continue;
            }
            w->next = rt;  // taken at its next start
            if (w->fsm.live() && !w->held && !w->roll_queued) {
                w->roll_queued = true;
                roll_.push_back(w.get());
            }
        }
        for (int i = have; i < rt->spec.instances; ++i) {
            // The lowest free slots: those of the workers retired above stay taken until
            // they are gone.
            int slot = 0;
            const auto taken = [&](int k) {
                for (const auto& w : workers_)
                    if (!w->retired && w->rt->spec.name == rt->spec.name && w->slot == k)
                        return true;
                for (const auto& w : born)
                    if (w->rt->spec.name == rt->spec.name && w->slot == k) return true;
                return false;
            };
            while (taken(slot)) ++slot;
            born.push_back(make_worker(rt, slot));
        }
        (same ? (old->spec.instances == rt->spec.instances ? res.unchanged : res.resized)
              : res.changed)
            .push_back(rt->spec.name);
    }
    for (const auto& rt : pools_) {
        bool kept = false;
        for (const auto& n : now) kept = kept || n->spec.name == rt->spec.name;
        if (kept) continue;
        res.removed.push_back(rt->spec.name);
        for (auto& w : workers_)
            if (!w->retired && w->rt == rt) retire(*w);
    }
    pools_ = std::move(now);
    reconfigure_changed();
    const bool idle = next_start_ >= workers_.size();
    {
        const std::lock_guard lock(workers_mu_);
        for (auto& w : born) workers_.push_back(std::move(w));
    }
    if (idle) start_next();  // else the start under way reaches them
    roll_next();
    logger()->info("reloaded: {} pools added, {} removed, {} changed, {} resized, {} unchanged",
                   res.added.size(), res.removed.size(), res.changed.size(), res.resized.size(),
                   res.unchanged.size());
    if (out) *out = std::move(res);
    return std::nullopt;
}

void supervisor::retire(worker& w) {
    w.retired = true;
    w.held = true;  // its exit is on request: no restart, no failure
    w.again = false;
    w.next.reset();
    if (w.roll_queued) {
        std::erase(roll_, &w);
        w.roll_queued = false;
    }
    ask_to_stop(w);
    rolled(w);
}

void supervisor::collect_retired() {
    for (std::size_t i = 0; i < workers_.size();) {
        auto& w = *workers_[i];
        if (!w.retired || w.fsm.phase() != worker_phase::done || !w.streams.empty() ||
            w.kill_timer || w.restart_timer || w.ctl) {
            ++i;
            continue;
        }
        const std::lock_guard lock(workers_mu_);
        retired_ += w.stats;
        workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
        if (i < next_start_) --next_start_;
    }
}

// At a worker's start, the new spec a reload gave its pool.
void supervisor::switch_spec(worker& w) {
    // What a previous run's descendants still hold open was read with the old catalog: read
    // what is there and end it, so no event of the old catalog meets the new one's gate.
    drain(w);
    for (auto& s : w.streams) close_stream(*s);
    w.streams.clear();
    {
        const std::lock_guard lock(workers_mu_);
        w.rt = std::move(w.next);
        w.pool = &w.rt->spec;
        w.cat = w.rt->cat;
    }
    w.fsm.set_restart(w.pool->restart);
    configure_gate(w);
}

void supervisor::roll_next() {
    while (!rolling_ && !roll_.empty() && !stopping_) {
        worker& w = *roll_.front();
        roll_.pop_front();
        w.roll_queued = false;
        if (!w.next || w.held) continue;  // restarted meanwhile, or stopped on request
        switch (w.fsm.phase()) {
            case worker_phase::running:
                w.again = true;
                ask_to_stop(w);
                rolling_ = &w;
                break;
            case worker_phase::stopping:
                rolling_ = &w;  // a restart is under way already
                break;
            default: break;  // not running: it takes the new spec when it starts
        }
    }
}

void supervisor::rolled(worker& w) {
    if (rolling_ != &w) return;
    rolling_ = nullptr;
    loop_.post([this] { roll_next(); });
}

// --- lifecycle on request --------------------------------------------------------------------

template <typename F>
void supervisor::for_each_in(const scope& where, F fn) {
    for (auto& w : workers_)
        if (where.kind == scope_kind::global ||
            (where.kind == scope_kind::pool && w->pool->name == where.name) ||
            (where.kind == scope_kind::worker && w->id == where.name))
            fn(*w);
}

void supervisor::ask_to_stop(worker& w) {
    if (w.restart_timer) loop_.cancel(w.restart_timer);
    w.restart_timer = 0;
    if (!w.fsm.stop()) return;
    spawn::forward_signal(w.fsm.pid(), o_.stop_signal, true);
    w.kill_timer = loop_.after(o_.grace, [this, &w] {
        w.kill_timer = 0;
        kill_now(w);
    });
}

void supervisor::kill_now(worker& w) {
    if (!w.fsm.live() || w.fsm.pid() <= 0) return;
    logger()->warn("worker {} still running after the grace period: SIGKILL", w.id);
    if (o_.guard.empty()) spawn::forward_signal(w.fsm.pid(), SIGKILL, true);
    else spawn::signal_child(w.fsm.pid(), spawn::guard_kill_signal());  // and its tree
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
        default: return false;
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
            default: return start_now(w);
        }
    });
}

std::string supervisor::status_json() const {
    const auto now = clock::now();
    const auto secs = [](clock::duration d) {
        return std::chrono::duration<double>(d).count();
    };
    std::string out = "{\"uptime_seconds\":";
    append_json_double(out, secs(now - born_));
    out += ",\"stopping\":";
    out += stopping_ ? "true" : "false";
    out += ",\"pools\":[";
    for (std::size_t p = 0; p < pools_.size(); ++p) {
        if (p) out += ',';
        out += "{\"name\":";
        append_json_string(out, pools_[p]->spec.name);
        out += ",\"instances\":" + std::to_string(pools_[p]->spec.instances) + "}";
    }
    out += "],\"workers\":{";
    bool first = true;
    for (const auto& w : workers_) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, w->id);
        out += ":{\"pool\":";
        append_json_string(out, w->pool->name);
        out += ",\"pid\":" + std::to_string(w->fsm.live() ? w->worker_pid : 0);
        out += ",\"state\":\"";
        out += to_string(w->fsm.phase());
        out += "\",\"stopped_on_request\":";
        out += w->held ? "true" : "false";
        out += ",\"restarts\":" + std::to_string(w->fsm.restarts());
        out += ",\"uptime_seconds\":";
        append_json_double(out, w->fsm.live() ? secs(now - w->fsm.started_at()) : 0.0);
        if (w->fsm.exit_code()) out += ",\"exit_code\":" + std::to_string(*w->fsm.exit_code());
        out += ",\"events\":" + std::to_string(w->stats.events);
        out += ",\"dropped\":{";
        for (std::size_t v = 1; v < w->gated.size(); ++v) {
            if (v > 1) out += ',';
            out += '"';
            out += control::to_string(static_cast<control::verdict>(v));
            out += "\":" + std::to_string(w->gated[v]);
        }
        out += "},\"controls\":";
        control::append_controls_json(out, w->gate.controls());
        out += '}';
    }
    out += "}}";
    return out;
}

std::string supervisor::handle_control(std::string_view line) {
    control::request r;
    if (auto e = control::parse_request(line, r)) return control::error_reply(*e);
    int n = 0;
    std::optional<std::string> problem;
    switch (r.cmd) {
        case control::command::status: {
            const std::string s = status_json();  // an object with members: spliced in
            return "{\"ok\":true," + s.substr(1);
        }
        case control::command::stats:
            if (!io_.registry) return control::error_reply("no registry to read");
            return control::ok_reply(",\"metrics\":" + metrics::to_json(io_.registry->snapshot()));
        case control::command::toggle:
        case control::command::sample:
        case control::command::filter:
        case control::command::rate_limit:
            problem = set_controls(r.where, r.update);
            if (!problem) for_each_in(r.where, [&](worker&) { ++n; });
            break;
        case control::command::reset:
            problem = reset_controls(r.where);
            if (!problem) for_each_in(r.where, [&](worker&) { ++n; });
            break;
        case control::command::start: problem = start_workers(r.where, &n); break;
        case control::command::stop: problem = stop_workers(r.where, &n); break;
        case control::command::restart: problem = restart_workers(r.where, &n); break;
        case control::command::reload:
            if (!o_.reload) return control::error_reply("telecap was started without --config: "
                                                        "there is nothing to reload");
            return o_.reload();
    }
    if (problem) return control::error_reply(*problem);
    return control::ok_reply(",\"workers\":" + std::to_string(n));
}

// --- events --------------------------------------------------------------------------------

void supervisor::push(event& ev) {
    pending_.push_back(std::move(ev));
    if (pending_.size() >= 256) flush_pending();
}

void supervisor::flush_pending() {
    if (pending_.empty()) return;
    const std::size_t next = io_.events->submit(pending_, 0);
    if (next == pending_.size()) {
        pending_.clear();
        return;
    }
    if (o_.overflow == overflow_policy::drop_newest || escape_) {
        own_.dropped_for(escape_ ? drop_reason::shutdown : drop_reason::queue_full) +=
            pending_.size() - next;
        pending_.clear();
        return;
    }
    // Block mode: keep the rest, stop reading until the dispatcher has room.
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(next));
    if (!want_room_) {
        want_room_ = true;
        io_.events->when_room([this] {
            loop_.post([this] {
                want_room_ = false;
                flush_pending();
                update_backpressure();
            });
        });
    }
}

bool supervisor::output_congested() const {
    for (auto* w : {io_.stderr_pass ? io_.stderr_pass->writer() : nullptr,
                    io_.stdout_pass ? io_.stdout_pass->writer() : nullptr,
                    io_.rejects ? io_.rejects->writer() : nullptr})
        if (w && w->congested()) return true;
    return false;
}

void supervisor::update_backpressure() {
    const bool pause = o_.overflow == overflow_policy::block && !escape_ &&
                       (!pending_.empty() || output_congested());
    if (pause == paused_) return;
    paused_ = pause;
    if (pause) ++pauses_;
    for (auto& w : workers_)
        for (auto& s : w->streams)
            if (s->fd) loop_.set_reading(s->fd.get(), !pause);
}

void supervisor::lifecycle(std::string_view short_name, worker& w,
                           std::vector<std::pair<std::string, measurement_value>> measurements,
                           std::vector<std::pair<std::string, metadata_value>> extra) {
    auto ctx = w.context();
    ctx.node = o_.node;
    event ev = lifecycle_event(*w.cat, short_name, ctx, std::move(measurements), std::move(extra),
                               wall_ns());
    push(ev);
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
    spawn::child_spec spec;
    spec.argv = w.pool->command;
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
        ++w.restarts;
        lifecycle("worker_restarted", w,
                  {{"restart_count", std::int64_t{w.fsm.runs() - 1}}, {"system_time", wall_ns()}},
                  {{"new_pid", std::to_string(w.worker_pid)}});
    }
    lifecycle("worker_spawned", w, {{"system_time", wall_ns()}}, {});

    worker_context ctx = w.context();
    ctx.node = o_.node;
    const std::string label = o_.label ? "[" + w.id + "] " : "";
    const auto add = [&](unique_fd fd, passthrough_mux* mux, bool recognize) {
        if (!fd) return;
        auto s = std::make_unique<stream>();
        s->owner = &w;
        s->keep = w.rt;
        s->fd = std::move(fd);
        ::fcntl(s->fd.get(), F_SETFL, ::fcntl(s->fd.get(), F_GETFL) | O_NONBLOCK);
        if (mux) s->pass = mux->make_source(label);
        if (io_.rejects) s->rejects = std::make_unique<rejects_writer::source>(*io_.rejects, w.id);
        pipeline_options po = o_.pipeline;
        po.recognize = recognize;
        po.budget = &budget_;
        s->pipeline = std::make_unique<capture_pipeline>(*w.cat, ctx, po, w.out.get(),
                                                         s->pass.get(), s->rejects.get(), w.stats);
        stream* raw = s.get();
        loop_.watch(raw->fd.get(), [this, raw] { read_stream(*raw); });
        if (paused_) loop_.set_reading(raw->fd.get(), false);
        w.streams.push_back(std::move(s));
    };
    // With a dedicated telemetry fd, stderr is pass-through only: what a worker merely logs
    // can never inject an event.
    const bool dedicated = w.pool->telemetry_fd >= 0;
    add(child->release_stderr(), io_.stderr_pass, !dedicated);
    add(child->release_stdout(), io_.stdout_pass, !dedicated);
    add(child->release_telemetry(), io_.stderr_pass, true);
    child->release();  // the loop reaps it
    rolled(w);
}

void supervisor::read_stream(stream& s) {
    // Bounded per wake-up so one flooding worker cannot starve the others.
    for (int i = 0; i < 8; ++i) {
        const ssize_t n = ::read(s.fd.get(), buf_, sizeof buf_);
        if (n > 0) {
            s.pipeline->feed({buf_, static_cast<std::size_t>(n)});
            turn_bytes_ += static_cast<std::size_t>(n);
            // A short read emptied the pipe: with a linger, the next turn waits for more
            // anyway, so the read that would only say EAGAIN is saved.
            if (linger_.enabled() && static_cast<std::size_t>(n) < sizeof buf_ / 4) return;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        close_stream(s);  // EOF, or an error that ends the stream all the same
        return;
    }
}

void supervisor::close_stream(stream& s) {
    if (!s.fd) return;
    loop_.unwatch(s.fd.get());
    s.fd.reset();
    s.pipeline->finish();  // a last line without a newline still counts
}

void supervisor::drain(worker& w) {
    // Whatever the worker wrote before it died is in the pipe: read it all now.
    for (auto& s : w.streams)
        while (s->fd) {
            const auto before = s->pipeline->context().pid;
            (void)before;
            const ssize_t n = ::read(s->fd.get(), buf_, sizeof buf_);
            if (n > 0) {
                s->pipeline->feed({buf_, static_cast<std::size_t>(n)});
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                break;  // a descendant still holds the pipe open: it is read as usual
            } else {
                close_stream(*s);
            }
        }
}

void supervisor::exited(worker& w, int status) {
    const int code = spawn::exit_code_from_status(status);
    close_control(w);
    if (w.fsm.pid() > 0) {
        if (workers_up_) workers_up_->add(-1);
        drain(w);
        std::vector<std::pair<std::string, metadata_value>> extra{
            {"exit_code", std::to_string(code)}};
        if (WIFSIGNALED(status)) extra.emplace_back("reason", spawn::signal_name(WTERMSIG(status)));
        else extra.emplace_back("reason", std::string(code == 0 ? "normal" : "exit"));
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
        w.fsm.revive();
        start(w);
        return;
    }
    rolled(w);  // not started again now: the roll goes on without it
    switch (w.fsm.phase()) {
        case worker_phase::backoff: {
            const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
                w.fsm.restart_at() - clock::now());
            logger()->info("worker {} exited ({}), restarting in {} ms", w.id, code, delay.count());
            w.restart_timer = loop_.at(w.fsm.restart_at(), [this, &w] { start(w); });
            break;
        }
        case worker_phase::done:
            if (!w.fsm.gave_up().empty()) logger()->error("worker {} gave up: {}", w.id, w.fsm.gave_up());
            break;
        default: break;
    }
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
    kill_timer_ = loop_.after(o_.grace, [this] { on_grace_end(); });
    for (auto& w : workers_) {
        if (w->restart_timer) loop_.cancel(w->restart_timer);
        w->restart_timer = 0;
        if (w->fsm.stop()) spawn::forward_signal(w->fsm.pid(), o_.stop_signal, true);
    }
}

void supervisor::on_grace_end() {
    killed_ = true;
    for (auto& w : workers_)
        if (w->fsm.live() && w->fsm.pid() > 0) {
            logger()->warn("worker {} still running after the grace period: SIGKILL", w->id);
            if (o_.guard.empty()) spawn::forward_signal(w->fsm.pid(), SIGKILL, true);
            else spawn::signal_child(w->fsm.pid(), spawn::guard_kill_signal());  // and its tree
        }
    // Back-pressure ends with the grace period: what cannot be queued now is dropped.
    if (o_.overflow == overflow_policy::block) {
        escape_ = true;
        flush_pending();
        update_backpressure();
    }
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
    if (const auto d = linger_.after_turn(turn_bytes_, clock::now()); d.count() > 0)
        loop_.linger(d);
    turn_bytes_ = 0;
    for (auto& w : workers_) std::erase_if(w->streams, [](const auto& s) { return !s->fd; });
    collect_retired();
    flush_pending();
    update_backpressure();
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
    sweep();
    for (auto& w : workers_) {
        drain(*w);
        for (auto& s : w->streams) close_stream(*s);  // no-op for those drained to EOF
        w->streams.clear();
    }
    // The last batch: in block mode it may wait for room, with the same bound a stuck handler
    // gets at shutdown.
    if (!pending_.empty()) {
        std::size_t next = 0;
        if (o_.overflow == overflow_policy::block && !escape_)
            next = io_.events->submit_wait(
                pending_, 0, std::max<std::chrono::milliseconds>(o_.grace, std::chrono::seconds(5)));
        else
            next = io_.events->submit(pending_, 0);
        own_.dropped_for(o_.overflow == overflow_policy::block ? drop_reason::shutdown
                                                                : drop_reason::queue_full) +=
            pending_.size() - next;
        pending_.clear();
    }
    for (auto& w : workers_)
        if (!w->held && w->fsm.exit_code() && *w->fsm.exit_code() != 0)
            return *w->fsm.exit_code();  // a stop on request is not a failure
    return 0;
}

capture_stats supervisor::totals() const {
    capture_stats t = own_;
    const std::lock_guard lock(workers_mu_);
    t += retired_;
    for (const auto& w : workers_) t += w->stats;
    return t;
}

std::string supervisor::workers_json() const {
    std::string out = "{";
    for (const auto& w : workers_) {
        if (out.size() > 1) out += ',';
        append_json_string(out, w->id);
        out += ":{\"pool\":";
        append_json_string(out, w->pool->name);
        out += ",\"pid\":" + std::to_string(w->fsm.pid());
        out += ",\"state\":\"";
        out += to_string(w->fsm.phase());
        out += "\",\"restarts\":" + std::to_string(w->fsm.restarts());
        if (w->fsm.exit_code()) out += ",\"exit_code\":" + std::to_string(*w->fsm.exit_code());
        out += ",\"lines\":" + std::to_string(w->stats.lines);
        out += ",\"events\":" + std::to_string(w->stats.events);
        out += ",\"passthrough_lines\":" + std::to_string(w->stats.passthrough_lines);
        out += ",\"rejected\":" + std::to_string(w->stats.rejected_total());
        out += ",\"dropped\":{";
        for (std::size_t v = 1; v < w->gated.size(); ++v) {
            if (v > 1) out += ',';
            out += '"';
            out += control::to_string(static_cast<control::verdict>(v));
            out += "\":" + std::to_string(w->gated[v]);
        }
        out += '}';
        out += '}';
    }
    out += '}';
    return out;
}

}  // namespace telecap
