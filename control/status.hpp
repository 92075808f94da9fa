#pragma once
// What `ctl status` and `--stats`' "workers" say about the pools and workers: a snapshot the
// supervisor fills in, written as JSON here (docs/control.md, docs/contract.md section 7).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/stats.hpp"
#include "telecap/control/controls.hpp"
#include "telecap/control/gates.hpp"

namespace telecap::control {

struct worker_status {
    std::string_view id;
    std::string_view pool;
    long pid = 0;         // the process telecap waits for (its guard, when there is one)
    long worker_pid = 0;  // the worker's own, 0 when not running
    std::string_view state;
    bool stopped_on_request = false;
    int restarts = 0;
    double uptime_seconds = 0;  // 0 when not running
    std::optional<int> exit_code;
    const capture_stats* stats = nullptr;
    // Events its gates removed, by verdict (pass stays 0).
    std::array<std::uint64_t, static_cast<std::size_t>(verdict::count_)> gated{};
    const effective_controls* controls = nullptr;
};

struct pool_status {
    std::string_view name;
    int instances = 0;
};

// A network endpoint telecap serves (a Prometheus output), with the address it is bound to.
struct listener_status {
    std::string output;  // "prometheus"
    std::string url;     // "http://127.0.0.1:9464/metrics"
};

// One output as run (its id as in --stats' "outputs"), with its counters now.
struct output_status {
    std::string output;
    std::uint64_t events = 0;   // handed to it by the handler bus
    std::uint64_t dropped = 0;  // events it could not deliver
    std::uint64_t errors = 0;   // failed writes or requests
    std::string last_error;     // "" when none
};

// The run's losses so far, by reason (docs/control.md, "status"): events lost on their way to
// the outputs (--stats' "dropped" reasons: the queue to the dispatcher full, still queued at
// the stop, an output that could not take them, the removed outputs' included) and by the taps
// (their own, not data lost), and lines the pass-through and rejects streams dropped.
struct run_losses {
    std::uint64_t queue_full = 0, shutdown = 0, output = 0, tap = 0;  // events
    std::uint64_t passthrough_lines = 0, rejects_lines = 0;           // lines
};

struct status_snapshot {
    double uptime_seconds = 0;
    bool stopping = false;
    std::vector<pool_status> pools;
    std::vector<worker_status> workers;
    std::vector<listener_status> listeners;
    std::vector<output_status> outputs;
    std::uint64_t queue_depth = 0;  // events queued for the outputs
    run_losses dropped;
    // telecap's own CPU time (user + system, all threads) and resident memory now; negative
    // when unknown.
    double cpu_seconds = -1;
    double rss_bytes = -1;
};

// {"uptime_seconds":..,"stopping":..,"pools":[..],"workers":{..},"listeners":[..],
//  "outputs":[..],"queue_depth":..,"process":{..},"dropped":{..},"dropped_lines":{..}}
// (docs/control.md).
std::string status_json(const status_snapshot& s);
// {"<worker id>": {"pool":..,"pid":..,"state":..,"restarts":..,"lines":..,...}, ...}: the
// "workers" member of --stats.
std::string workers_json(const std::vector<worker_status>& workers);

}  // namespace telecap::control
