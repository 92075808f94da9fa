// The supervisor's reload: a config read again, applied to running pools.
#include <algorithm>

#include "core/log.hpp"
#include "supervise/supervisor.hpp"
#include "supervise/supervisor_parts.hpp"

namespace telecap {

bool same_process(const pool_spec& a, const pool_spec& b) {
    return a.command == b.command && a.env == b.env && a.cwd == b.cwd && a.restart == b.restart &&
           a.catalog_path == b.catalog_path && a.capture_stdout == b.capture_stdout &&
           a.telemetry_fd == b.telemetry_fd && a.grpc == b.grpc;
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
    held_.clear();  // the config's controls: what gRPC streams had set is dropped, as ctl's is
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
        if (!w.retired || w.fsm.phase() != worker_phase::done || intake_.reading(&w) ||
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
    intake_.drain(&w);
    intake_.close(&w);
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
            default:
                break;  // not running: it takes the new spec when it starts
        }
    }
}

void supervisor::rolled(worker& w) {
    if (rolling_ != &w) return;
    rolling_ = nullptr;
    loop_.post([this] { roll_next(); });
}

}  // namespace telecap
