#pragma once
// telecap run's reload (SIGHUP, or `telecap ctl reload`, with --config): reads the config
// again and applies what changed, or nothing when the new config does not validate
// (docs/control.md, "Reload").

#include <functional>
#include <string>

#include "agent/run.hpp"
#include "agent/run_outputs.hpp"
#include "dispatch/dispatcher.hpp"
#include "metrics/registry.hpp"
#include "supervise/supervisor.hpp"

namespace telecap::agent {

class reloader {
public:
    // `reread` reads the config and applies the command line over it, as at startup; it
    // throws usage_error (file:line: problem). `running` is what telecap runs now.
    reloader(std::function<run_options()> reread, run_options running, run_outputs& outputs,
             dispatcher& events, metrics::registry& registry);

    // Reads the config and applies it to `sup` and the outputs; returns the control reply
    // ({"ok":true,"pools":{..},"outputs":{..},"not_applied":[..]} or {"ok":false,"error":..}).
    // Loop thread.
    std::string operator()(supervisor& sup);

    // Called with each catalog of a reload that took effect (the taps' wire names).
    std::function<void(const catalog&)> on_catalog;

private:
    std::function<run_options()> reread_;
    run_options running_;
    run_outputs& outputs_;
    dispatcher& events_;
    metrics::counter& ok_;
    metrics::counter& failed_;
};

// The settings a reload cannot change in a running telecap (they are read once at startup):
// their config keys, where `next` differs from `running`.
std::vector<std::string> settings_not_reloaded(const run_options& running, const run_options& next);

// Each pool's catalog file made explicit: a pool without one of its own gets the run's.
void resolve_catalog_paths(run_options& o);

}  // namespace telecap::agent
