#pragma once
// telecap run: spawn, supervise and capture worker processes.

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/options.hpp"
#include "control/controls.hpp"
#include "spawn/restart_policy.hpp"
#include "supervise/supervisor.hpp"

namespace telecap::agent {

struct run_options {
    capture_options capture;
    std::vector<pool_spec> pools;
    int stop_signal = SIGTERM;  // sent to every worker group when telecap is told to stop
    std::chrono::milliseconds grace{10000};
    std::size_t queue = 65536;
    std::size_t queue_bytes = std::size_t{16} << 20;  // event memory bound of the queue
    // Where the handlers run: on the loop thread (caller) or a dispatch thread of their own.
    dispatch_mode dispatch = dispatch_mode::caller;
    std::size_t line_budget = std::size_t{8} << 20;  // partial lines of all workers together
    overflow_policy overflow = overflow_policy::drop_newest;
    // drop-newest: how long a burst may wait while an output is about to drop, in the
    // workers' pipes (intake_options::burst_hold) or the dispatch thread's queue
    // (dispatcher_options::burst_hold).
    std::chrono::milliseconds burst_hold{100};
    bool label = false;
    // The gates' defaults: the config's top-level and per-pool `control:`, the CLI's
    // --sample/--allow/--deny/--rate-limit over the top level (docs/control.md).
    control::control_table controls;
    std::string control_socket;  // --control PATH: the control socket; empty: none
    // With --config: reads it again with the command line over it, as at startup (throws
    // usage_error). SIGHUP and `ctl reload` call it. Empty: nothing to reload.
    std::function<run_options()> reread;
};

// Reads a YAML config into `o` (pools, and run-wide settings it names). Throws usage_error
// naming the file, the line and the problem. Values may hold ${VAR} and ${VAR:-default}
// (from the environment; $${ for a literal ${); relative paths (outputs' files, catalog,
// metrics, passthrough, rejects, stats, a pool's cwd) are from the config file's folder. The
// files named are checked where they are named: catalogs and the metrics file load, the files
// to write can be written. `check` (run --check) also checks that each pool's command can be
// found.
void load_config(const std::string& path, run_options& o, bool check = false);

// When telecap writes events or pass-through to its own stdout (the default `-o jsonl`,
// `jsonl:PATH` naming that stream, `--passthrough stdout`), a worker that inherited the same
// stdout would write into the middle of those lines: every pool then captures its workers'
// stdout (as `capture_stdout: true`), which goes through the one writer of that stream, line
// by line. Returns whether it did. Called at startup and on each reload, so a reload that
// does not change the outputs restarts nobody.
bool capture_stdout_if_shared(run_options& o);

// Runs the pools until every worker has exited for good, or telecap is told to stop.
// Returns the exit code: the first failing worker's status (128+N for signal N, 127/126 when
// it could not be executed), else 0.
int run_workers(const run_options& o);

}  // namespace telecap::agent
