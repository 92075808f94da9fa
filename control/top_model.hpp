#pragma once
// The model of `telecap top` (docs/top.md): a `status` reply parsed into a snapshot, two
// snapshots into rates (a view: rows filtered by pool and sorted), a view into lines of text at
// a given width and height. Pure: no I/O, no clock, no terminal; agent/top_command.cpp does
// those.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telecap::control::top {

struct worker_sample {
    std::string id, pool, state;
    long pid = 0;
    bool stopped_on_request = false;
    double uptime_seconds = 0;
    std::uint64_t restarts = 0, lines = 0, events = 0;
    std::vector<std::pair<std::string, std::uint64_t>> rejected;  // by reason
    std::uint64_t removed = 0;  // events the gates removed, every reason
    std::string gates;          // "on", "off", or what removes events ("sample 0.1,deny 2")
};

struct output_sample {
    std::string id;
    std::uint64_t events = 0, dropped = 0, errors = 0;
    std::string last_error;
};

// One loss of the run (status' "dropped" and "dropped_lines"): events or lines, by reason.
struct loss_sample {
    std::string reason;  // "queue_full", "output", "tap", "passthrough lines", ...
    std::uint64_t count = 0;
};

// One `status` reply. Counters are totals since telecap (or the worker) started.
struct snapshot {
    double uptime_seconds = 0;  // telecap's: the clock the rates are taken on
    bool stopping = false;
    std::vector<std::string> pools;
    std::vector<worker_sample> workers;
    std::vector<output_sample> outputs;
    std::uint64_t queue_depth = 0;
    double cpu_seconds = -1, rss_bytes = -1;  // -1: not in the reply (an older telecap)
    std::vector<loss_sample> losses;          // in the reply's order; empty: an older telecap
};

// A status reply line into `out`; the problem when it is not one ({"ok":false,...}: its error).
std::optional<std::string> parse_status(std::string_view reply, snapshot& out);

// The few words of a worker's gates, from the reply's "controls" object's values.
struct gate_settings {
    bool enabled = true;
    double sampling_rate = 1;
    std::size_t sampling_patterns = 0, allow = 0, deny = 0;
    double events_per_second = 0;
};
std::string gates_summary(const gate_settings& g);

enum class sort_key { activity, events, rejects, drops, restarts, uptime, name };
inline constexpr std::size_t sort_key_count = 7;
std::string_view to_string(sort_key k) noexcept;
sort_key next(sort_key k) noexcept;

struct view_options {
    sort_key sort = sort_key::activity;
    bool reverse = false;
    std::string pool;  // only this pool's workers; empty: every pool
};

// A rate is negative when unknown (the first snapshot, telecap restarted in between).
struct worker_row {
    const worker_sample* w = nullptr;
    double lines_per_s = -1, events_per_s = -1, rejects_per_s = -1;
    std::string top_reject;  // the reason with most rejects in the interval, "" when none
};

struct output_row {
    const output_sample* o = nullptr;
    double sent_per_s = -1;
};

struct loss_row {
    const loss_sample* l = nullptr;
    double per_s = -1;
};

struct view {
    double interval_seconds = 0;  // 0: one snapshot only, no rates
    const snapshot* now = nullptr;
    std::vector<worker_row> workers;  // the pool's, sorted
    std::size_t workers_total = 0, workers_running = 0;
    std::vector<output_row> outputs;
    double lines_per_s = -1, events_per_s = -1, rejects_per_s = -1;  // over the rows shown
    double cpu_percent = -1;                                         // of one core
    std::string gates;             // "198 on, 2 off": how many workers have which gates
    std::vector<loss_row> losses;  // the run's, every reason
};

// The rates between `before` (nullptr: none yet) and `now`, which must outlive the view. A
// counter lower than before (a worker restarted with fresh counters, one removed and added
// again) counts from 0; a worker missing from `before` is new and counts from 0 too; when
// telecap's uptime did not grow (telecap restarted, or the same snapshot twice) there are no
// rates.
view make_view(const snapshot* before, const snapshot& now, const view_options& o);

// The pool after `current` in the snapshot's pools, "" (every pool) after the last.
std::string next_pool(const snapshot& s, const std::string& current);

}  // namespace telecap::control::top
