#include <fcntl.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "agent/commands.hpp"
#include "agent/run.hpp"
#include "agent/validate.hpp"
#include "core/log.hpp"
#include "spawn/guard.hpp"
#include "spawn/signals.hpp"
#include "telecap/version.hpp"

namespace telecap::agent {

namespace {

// A closed fd 0-2 would be handed out by the next open(): an output file opened as fd 2 would
// then receive pass-through and log lines. Open /dev/null there first (inherited by workers,
// so no CLOEXEC). False if that fails.
bool open_missing_stdio() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        const int got = ::open("/dev/null", O_RDWR);  // the lowest free fd: this one
        if (got < 0) return false;
        if (got != fd) {
            ::dup2(got, fd);
            ::close(got);
        }
    }
    return true;
}

// The CLI's values for settings the shared checks bound (agent/validate.hpp). Integers are
// read as long long so that a negative number reaches the check as itself.
struct cli_values {
    long long max_line = static_cast<long long>(capture_options{}.max_line);
    long long instances = pool_spec{}.instances;
    long long max_restarts = spawn::restart_options{}.max_restarts;
    std::optional<long long> telemetry_fd;  // -1 is a bad value, not "none"
    std::string grpc;                       // --grpc ADDR
    long long queue = static_cast<long long>(run_options{}.queue);
    long long queue_bytes = static_cast<long long>(run_options{}.queue_bytes);
    long long line_budget = static_cast<long long>(run_options{}.line_budget);
    double backoff_min = seconds(spawn::restart_options{}.backoff_min);
    double backoff_max = seconds(spawn::restart_options{}.backoff_max);
    double healthy_after = seconds(spawn::restart_options{}.healthy_after);
    double restart_window = seconds(spawn::restart_options{}.restart_window);
    double grace = seconds(run_options{}.grace);
    double burst_hold = seconds(run_options{}.burst_hold);
    std::string restart = "never", stop_signal = "TERM", overflow = "drop-newest",
                dispatch = "loop";
    // The gates' defaults for every worker (docs/control.md).
    double sample = 1.0;
    std::vector<std::string> sample_patterns, allow, deny;
    std::string rate_limit;

    static double seconds(std::chrono::milliseconds ms) {
        return static_cast<double>(ms.count()) / 1000.0;
    }
};

// Options every capturing command takes.
void add_capture_options(CLI::App& cmd, capture_options& o, cli_values& v, bool with_outputs) {
    cmd.add_option("--catalog", o.catalog_path, "Catalog JSON file (default: built-in Snakepit)")
        ->check(CLI::ExistingFile);
    cmd.add_option("--prefix", o.prefix, "Prefix that marks a telemetry line (not empty)")
        ->capture_default_str();
    cmd.add_option("--max-line", v.max_line,
                   "Longest line in bytes (64 .. 1 GiB); longer telemetry is rejected")
        ->capture_default_str();
    cmd.add_option("--node", o.node, "Metadata node (default: the hostname)");
    cmd.add_option("--pool", o.pool, "Metadata pool_name")->capture_default_str();
    cmd.add_option("--unknown-events", o.unknown_events,
                   "reject|keep: an event name the catalog does not know is rejected "
                   "(unknown_event, passed through as text) or kept as an event under the "
                   "catalog's unknown_event_prefix (default: the catalog's policy, reject for "
                   "the built-in one; docs/catalog.md)");
    if (!with_outputs) return;
    cmd.add_option("--worker-id", o.worker_id, "Metadata worker_id");
    cmd.add_option("--pid", o.pid, "Metadata python_pid");
    cmd.add_option("-o,--output", o.outputs,
                   "Output, repeatable: jsonl (stdout), jsonl:PATH, unix:PATH, log, null, "
                   "prometheus[:HOST:PORT], otlp[:URL] (metrics), otlp-logs[:URL] (events), "
                   "http:URL (events as JSON lines), grpc[:ADDR] (Snakepit's StreamTelemetry, "
                   "docs/grpc.md) (default: jsonl); unix:PATH?max_hosts=16&"
                   "max_backlog=4194304&max_total_backlog=16777216&fd_reserve=64 sets the "
                   "socket's budgets; prometheus serves /metrics on 127.0.0.1:9464 by default; "
                   "otlp and otlp-logs read the OTEL_* variables (docs/metrics.md)")
        ->allow_extra_args(false);
    cmd.add_option("--passthrough", o.passthrough,
                   "Where non-telemetry goes: stderr|stdout|none|PATH")
        ->capture_default_str();
    cmd.add_option("--rejects", o.rejects_path, "Record each rejected line as JSON to PATH");
    cmd.add_option("--stats", o.stats_path, "Write the counters as JSON to PATH at exit");
    cmd.add_option("--metrics", o.metrics_path,
                   "YAML file of the metrics derived from events for the metrics outputs "
                   "(default: the bundled one, see `telecap metrics --print-default`)");
}

// A flag's value against the shared check: "--grace must be ...".
void need(const char* yaml_key, const problem& p) {
    if (p) throw usage_error(setting_name(yaml_key, spelling::cli) + " " + *p);
}

void need_writable_stats(const std::string& path) {
    if (path.empty()) return;
    if (auto p = check_writable(path))
        throw usage_error("cannot write stats to " + path + ": " + *p);
}

// Flags that describe the one pool of `run -- CMD`; with --config the pools say it.
constexpr std::pair<const char*, const char*> pool_flags[] = {
    {"--instances", "instances"},
    {"--restart", "restart"},
    {"--backoff-min", "backoff_min"},
    {"--backoff-max", "backoff_max"},
    {"--healthy-after", "healthy_after"},
    {"--max-restarts", "max_restarts"},
    {"--restart-window", "restart_window"},
    {"--telemetry-fd", "telemetry_fd"},
    {"--capture-stdout", "capture_stdout"},
    {"--pool", "name"},
    {"--grpc", "grpc"},
};

// The pool of `run -- CMD`, from the flags.
pool_spec pool_from_flags(const cli_values& v, const capture_options& o,
                          std::vector<std::string> command, bool capture_stdout) {
    need("restart", check_restart_mode(v.restart));
    need("instances", check_instances(v.instances));
    need("max_restarts", check_max_restarts(v.max_restarts));
    if (v.telemetry_fd) need("telemetry_fd", check_telemetry_fd(*v.telemetry_fd));
    need("backoff_min", check_seconds(v.backoff_min));
    need("backoff_max", check_seconds(v.backoff_max));
    need("healthy_after", check_seconds(v.healthy_after));
    need("restart_window", check_seconds(v.restart_window));
    pool_spec p;
    p.name = o.pool;
    p.command = std::move(command);
    p.instances = static_cast<int>(v.instances);
    p.capture_stdout = capture_stdout;
    p.telemetry_fd = v.telemetry_fd ? static_cast<int>(*v.telemetry_fd) : -1;
    if (!v.grpc.empty()) need("grpc", check_grpc_address(v.grpc));
    p.grpc = v.grpc;
    if (p.remote()) need("grpc", check_remote_worker(p));
    p.restart.mode = *spawn::parse_restart_mode(v.restart);
    p.restart.max_restarts = static_cast<int>(v.max_restarts);
    p.restart.backoff_min = to_millis(v.backoff_min);
    p.restart.backoff_max = to_millis(v.backoff_max);
    p.restart.healthy_after = to_millis(v.healthy_after);
    p.restart.restart_window = to_millis(v.restart_window);
    return p;
}

// --sample/--sample-pattern, --allow/--deny and --rate-limit over the config's top-level
// `control:`; each kind given replaces that kind whole (a filter is both lists, as in
// Snakepit). The values are checked by validate() with the rest.
template <typename Given>
void apply_control_flags(const cli_values& v, run_options& ro, Given given) {
    auto& g = ro.controls.global;
    if (given("--sample") || given("--sample-pattern"))
        g.sample = control::sampling{v.sample, v.sample_patterns};
    if (given("--allow") || given("--deny")) g.filt = control::filter{v.allow, v.deny};
    if (given("--rate-limit")) {
        control::rate_limit r;
        if (auto p = control::parse_rate_limit(v.rate_limit, r))
            throw usage_error("--rate-limit " + *p);
        g.limit = r;
    }
}

// Edits from a to b (insert, delete, replace, swap two neighbours): how far a typo is.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                                d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

// The first option on the command line that neither the subcommand nor telecap itself has,
// as a message with the nearest known one: "unknown option --restrat for run: did you mean
// --restart?". Options that take a value skip it; nothing after "--" is looked at.
std::optional<std::string> unknown_option(CLI::App& app, int argc, char** argv) {
    CLI::App* sub = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--") break;
        if (arg.size() < 2 || arg[0] != '-') {
            if (!sub) {
                for (auto* c : app.get_subcommands({}))
                    if (c->get_name() == arg) sub = c;
                if (!sub) return std::nullopt;  // CLI11 says it: not a command
            }
            continue;
        }
        const std::string name = arg.substr(0, arg.find('='));
        const CLI::Option* opt = sub ? sub->get_option_no_throw(name) : nullptr;
        if (!opt) opt = app.get_option_no_throw(name);
        if (opt) {
            if (opt->get_expected_min() > 0 && name == arg) ++i;  // its value
            continue;
        }
        // At most two edits away, one for a short name ("--foo" is not "--pool").
        const std::size_t letters = name.size() - name.find_first_not_of('-');
        std::size_t best_distance = std::clamp<std::size_t>(letters / 3, 1, 2) + 1;
        std::string best;
        const auto consider = [&](const CLI::App& from) {
            for (const auto* o : from.get_options())
                for (const auto& l : o->get_lnames()) {
                    const std::size_t dist = edit_distance(name, "--" + l);
                    if (dist < best_distance) {
                        best_distance = dist;
                        best = "--" + l;
                    }
                }
        };
        if (sub) consider(*sub);
        consider(app);
        std::string msg = "unknown option " + name;
        if (sub) msg += " for " + sub->get_name();
        msg += best.empty() ? "" : ": did you mean " + best + "?";
        return msg;
    }
    return std::nullopt;
}

// The command line needs the gRPC bridge, which this executable was built without: the same
// command line runs in telecap-grpc (same pid, same fds, the signal mask telecap started with),
// found as telecap-guard is. Keeping gRPC's 48 shared libraries out of this executable keeps
// every other command's start (about 8 ms) and memory (about 6 MiB) as in a build without
// gRPC (docs/grpc.md). Nothing has been made yet: outputs are checked before any is.
int run_grpc_variant(char** argv, const sigset_t& initial_mask, const grpc_needed& why) {
    const auto path = spawn::find_telecap_executable(grpc_executable_name, grpc_path_env);
    if (!path) {
        std::fprintf(stderr, "telecap: %s\n", why.what());
        return 2;
    }
    std::fflush(nullptr);
    ::pthread_sigmask(SIG_SETMASK, &initial_mask, nullptr);
    ::execv(path->c_str(), argv);
    std::fprintf(stderr, "telecap: cannot run %s: %s\n", path->c_str(), std::strerror(errno));
    return 1;
}

}  // namespace

int main_cli(int argc, char** argv) {
    // What telecap-grpc must start with, if the command line turns out to need it.
    sigset_t initial_mask;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &initial_mask);
    // Before anything opens a file.
    if (!open_missing_stdio()) return 1;
    // A closed output pipe is an error to count, not a reason to die.
    std::signal(SIGPIPE, SIG_IGN);
    auto console =
        spdlog::stderr_color_mt("telecap");  // the loop, dispatch and socket threads all log
    console->set_pattern("telecap: %^%l%$: %v");
    spdlog::set_default_logger(console);
    telecap::set_logger(console);

    CLI::App app{"telecap: turns TELEMETRY: lines on a worker's stderr into normalized events",
                 "telecap"};
    app.set_version_flag("--version", std::string("telecap ") + TELECAP_VERSION_STRING);
    app.require_subcommand(1);
    // Before the subcommands, which inherit it: `telecap run --log-level debug -- ...` (a
    // global option after the subcommand) goes to the global option.
    app.fallthrough();
    std::string log_level = "warn";
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
        ->capture_default_str();

    capture_options o;
    cli_values v;
    std::vector<std::string> inputs;

    auto* parse = app.add_subcommand("parse", "Run the pipeline over files or stdin");
    add_capture_options(*parse, o, v, true);
    parse->add_option("inputs", inputs, "Input files (- or none: stdin)");

    auto* lint = app.add_subcommand("lint", "Report each rejected telemetry line; exit 1 if any");
    add_capture_options(*lint, o, v, false);
    lint->add_option("--stats", o.stats_path, "Write the counters as JSON to PATH at exit");
    lint->add_option("inputs", inputs, "Input files (- or none: stdin)");

    auto* cat = app.add_subcommand("catalog", "Print the active catalog as JSON");
    cat->add_option("--catalog", o.catalog_path, "Catalog JSON file (default: built-in)")
        ->check(CLI::ExistingFile);
    cat->add_option("--unknown-events", o.unknown_events,
                    "reject|keep over the catalog's unknown_event policy");

    auto* met = app.add_subcommand("metrics", "Print or check a metrics file (--metrics)");
    bool print_default = false;
    std::string check_path;
    auto* print_flag =
        met->add_flag("--print-default", print_default, "Print the bundled default metrics file");
    auto* check_opt = met->add_option("--check", check_path, "Check a metrics file; exit 2 if bad");
    print_flag->excludes(check_opt);
    check_opt->excludes(print_flag);

    auto* run = app.add_subcommand(
        "run", "Spawn, supervise and capture workers: run [OPTIONS] -- CMD [ARGS...]");
    add_capture_options(*run, o, v, true);
    std::string config_path;
    std::vector<std::string> command;
    bool label = false, capture_stdout = false;
    run->add_option("--config", config_path,
                    "YAML config with pools of workers; flags given here override its settings")
        ->check(CLI::ExistingFile);
    run->add_option("--instances", v.instances, "Number of workers to run (1 .. 10000)")
        ->capture_default_str();
    run->add_option("--restart", v.restart, "never|on-failure|always")->capture_default_str();
    run->add_option("--backoff-min", v.backoff_min,
                    "First restart delay, seconds (at least 0.01 when restarting)")
        ->capture_default_str();
    run->add_option("--backoff-max", v.backoff_max, "Longest restart delay, seconds")
        ->capture_default_str();
    run->add_option("--healthy-after", v.healthy_after,
                    "A run this long resets the backoff, seconds")
        ->capture_default_str();
    run->add_option("--max-restarts", v.max_restarts,
                    "Give up after this many restarts within --restart-window")
        ->capture_default_str();
    run->add_option("--restart-window", v.restart_window, "Window for --max-restarts, seconds")
        ->capture_default_str();
    run->add_option("--stop-signal", v.stop_signal,
                    "Signal sent to the workers when telecap is told to stop")
        ->capture_default_str();
    run->add_option("--grace", v.grace, "Seconds between the stop signal and SIGKILL (0 .. 86400)")
        ->capture_default_str();
    run->add_option("--queue", v.queue, "Events queued for the dispatcher at most (1 .. 2^24)")
        ->capture_default_str();
    run->add_option("--queue-bytes", v.queue_bytes,
                    "Event memory the queue may hold at most (64 KiB .. 16 GiB)")
        ->capture_default_str();
    run->add_option("--line-budget", v.line_budget,
                    "Memory for the partial lines of all workers together; a line that does "
                    "not fit goes on as an over-long one (64 KiB .. 16 GiB)")
        ->capture_default_str();
    run->add_option("--overflow", v.overflow, "When the queue is full: drop-newest|block")
        ->capture_default_str();
    run->add_option("--burst-hold", v.burst_hold,
                    "drop-newest: seconds a burst may wait while a -o grpc stream is about to "
                    "drop, in the workers' pipes (never once one is half full) or, with "
                    "--dispatch thread, in its queue (never past half full), instead of being "
                    "dropped; 0: never (0 .. 10)")
        ->capture_default_str();
    run->add_option("--dispatch", v.dispatch,
                    "Where the outputs run: loop (on the thread that reads the workers: the "
                    "least CPU per event) or thread (a thread of their own, behind --queue)")
        ->capture_default_str();
    bool check_only = false;
    run->add_flag("--check", check_only,
                  "Check the config and flags as a start would (YAML, catalogs, metrics, "
                  "outputs, paths, commands) and start nothing: exit 0, or 2 with FILE:LINE");
    run->add_flag("--label", label, "Prefix pass-through lines with [worker-id]");
    run->add_flag("--capture-stdout", capture_stdout, "Also scan the workers' stdout");
    run->add_option("--telemetry-fd", v.telemetry_fd,
                    "Read telemetry from a dedicated pipe on this fd (3 .. 1023); stderr is "
                    "pass-through only");
    run->add_option("--grpc", v.grpc,
                    "Also dial each worker's gRPC StreamTelemetry at HOST:PORT or unix:PATH, as "
                    "Snakepit's host does; {port}: a free port per worker, put into the command "
                    "where it has {port}; with no command, dial a worker running elsewhere "
                    "(docs/grpc.md)");
    run->add_option("--sample", v.sample,
                    "Keep each event with this probability (0 .. 1, clamped; default 1)");
    run->add_option("--sample-pattern", v.sample_patterns,
                    "Repeatable glob on wire names: only matching events are sampled")
        ->allow_extra_args(false);
    run->add_option("--allow", v.allow,
                    "Repeatable glob on wire names: only matching events pass (default: all)")
        ->allow_extra_args(false);
    run->add_option("--deny", v.deny, "Repeatable glob on wire names: matching events never pass")
        ->allow_extra_args(false);
    run->add_option("--rate-limit", v.rate_limit,
                    "N[/BURST]: at most N events per second per worker and event name, BURST "
                    "at once (default N)");
    std::string control_socket;
    run->add_option("--control", control_socket,
                    "Listen for control commands on this Unix socket (docs/control.md)");
    run->add_option("command", command, "The worker command (after --)");

    auto* ctl = app.add_subcommand(
        "ctl", "Send a command to a running telecap's control socket (telecap run --control)");
    ctl_options co;
    double ctl_timeout = 10;
    ctl->add_option("--socket", co.socket, "The control socket (run --control PATH)")->required();
    ctl->add_option("--pool", co.pool, "Apply to this pool's workers only");
    ctl->add_option("--worker", co.worker, "Apply to this worker only");
    ctl->add_flag("--json", co.json, "Print the reply as the server's JSON line");
    ctl->add_option("--allow", co.allow, "filter: a glob that may pass (repeatable)")
        ->allow_extra_args(false);
    ctl->add_option("--deny", co.deny, "filter: a glob that never passes (repeatable)")
        ->allow_extra_args(false);
    ctl->add_option("--timeout", ctl_timeout, "Seconds to wait for the reply")
        ->capture_default_str();
    ctl->add_option("--format", co.format,
                    "tap: jsonl (as -o jsonl, the default) or log (as -o log)");
    ctl->add_option("--limit", co.limit, "tap: exit after N events");
    ctl->add_flag("--passthrough", co.passthrough,
                  "tap: the workers' pass-through lines too, in their places among the events");
    ctl->add_option("command", co.command,
                    "status | stats | toggle on|off | sample RATE [PATTERN...] | filter | "
                    "rate-limit N[/BURST] | reset | start | stop | restart | reload (with "
                    "run --config: read the config again) | reopen | tap [PATTERN...] (stream "
                    "the events, after the gates, to stdout until Ctrl-C or --limit)")
        ->required();
    ctl->add_option("args", co.args, "The command's arguments");

    auto* topc = app.add_subcommand(
        "top", "A live view of a running telecap: workers, outputs, rates (docs/top.md)");
    top_options to;
    double top_interval_ms = 1000;
    topc->add_option("--socket", to.socket, "The control socket (run --control PATH)")->required();
    topc->add_option("--interval", top_interval_ms,
                     "Milliseconds between two snapshots (the rates' window; 10 .. 3600000)")
        ->capture_default_str();
    topc->add_flag("--once", to.once,
                   "Print one plain-text snapshot (rates over --interval) and exit; also what "
                   "top does when stdout is not a terminal");
    topc->add_option("--pool", to.pool, "Show this pool's workers only (p cycles the pools)");
    topc->footer(
        "Keys: q quit, s sort (activity, events, rejects, drops, restarts, uptime, name), r "
        "reverse, p next pool. Exit 1 when no telecap answers or it goes away.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // CLI11 names what it could not place ("not expected: 1 sleep"), often not the flag
        // that was wrong: name that flag when there is one.
        const auto unknown = unknown_option(app, argc, argv);
        std::fprintf(stderr, "telecap: %s\nRun 'telecap --help' or 'telecap COMMAND --help'.\n",
                     unknown ? unknown->c_str() : e.what());
        return 2;
    }
    spdlog::set_level(spdlog::level::from_str(log_level));

    try {
        if (!o.unknown_events.empty())
            need("unknown_events", check_unknown_events(o.unknown_events));
        if (*cat) return run_catalog(o);
        if (*met) return run_metrics(print_default, check_path);
        if (*topc) {
            if (!(top_interval_ms >= 10 && top_interval_ms <= 3600000))
                throw usage_error("--interval must be 10 .. 3600000 milliseconds");
            to.interval = std::chrono::milliseconds(static_cast<long long>(top_interval_ms));
            return run_top(to);
        }
        if (*ctl) {
            need("timeout", check_seconds(ctl_timeout));
            co.timeout = to_millis(ctl_timeout);
            return run_ctl(co);
        }
        // A bad metrics file is a startup error whether or not an exporter uses it.
        if (!o.metrics_path.empty()) (void)load_metrics(o.metrics_path);
        need("max_line", check_max_line(v.max_line));
        o.max_line = static_cast<std::size_t>(v.max_line);
        need("prefix", check_prefix(o.prefix));
        if (*parse || *lint) need_writable_stats(o.stats_path);
        if (*parse) return run_parse(o, inputs);
        if (*lint) return run_lint(o, inputs);
        if (*run) {
            const auto given = [&](const char* flag) { return run->count(flag) > 0; };
            const bool with_config = !config_path.empty();
            if (with_config) {
                if (!command.empty())
                    throw usage_error("give either --config or a command after --, not both");
                // Silently ignored before: say where the setting goes instead.
                for (const auto& [flag, key] : pool_flags)
                    if (given(flag))
                        throw usage_error(std::string(flag) +
                                          " applies to a command after --; with --config set `" +
                                          key + ":` in the pool");
            } else if (command.empty() && v.grpc.empty()) {
                throw usage_error(
                    "nothing to run: telecap run [OPTIONS] -- CMD [ARGS...] (or --grpc ADDR "
                    "alone, to dial a gRPC worker running elsewhere)");
            }
            need("grace", check_seconds(v.grace));
            need("queue", check_queue(v.queue));
            need("queue_bytes", check_queue_bytes(v.queue_bytes));
            need("line_budget", check_line_budget(v.line_budget));
            need("overflow", check_overflow(v.overflow));
            need("burst_hold", check_burst_hold(v.burst_hold));
            need("dispatch", check_dispatch(v.dispatch));
            need("stop_signal", check_stop_signal(v.stop_signal));

            // The config over the defaults, then every flag given over both (outputs add up).
            // A reload (SIGHUP, ctl reload) does the same again.
            const auto build = [&]() {
                run_options ro;
                if (with_config) load_config(config_path, ro, check_only);
                auto& c = ro.capture;
                if (given("--catalog")) c.catalog_path = o.catalog_path;
                if (given("--prefix")) c.prefix = o.prefix;
                if (given("--max-line")) c.max_line = o.max_line;
                if (given("--node")) c.node = o.node;
                if (given("--passthrough")) c.passthrough = o.passthrough;
                if (given("--rejects")) c.rejects_path = o.rejects_path;
                if (given("--stats")) c.stats_path = o.stats_path;
                if (given("--metrics")) c.metrics_path = o.metrics_path;
                if (given("--unknown-events")) c.unknown_events = o.unknown_events;
                c.outputs.insert(c.outputs.begin(), o.outputs.begin(), o.outputs.end());
                c.pool = o.pool;
                c.worker_id = o.worker_id;
                c.pid = o.pid;
                if (given("--grace")) ro.grace = to_millis(v.grace);
                if (given("--stop-signal")) ro.stop_signal = spawn::parse_signal(v.stop_signal);
                if (given("--queue")) ro.queue = static_cast<std::size_t>(v.queue);
                if (given("--queue-bytes"))
                    ro.queue_bytes = static_cast<std::size_t>(v.queue_bytes);
                if (given("--line-budget"))
                    ro.line_budget = static_cast<std::size_t>(v.line_budget);
                if (given("--overflow")) ro.overflow = parse_overflow(v.overflow);
                if (given("--burst-hold")) ro.burst_hold = to_millis(v.burst_hold);
                if (given("--dispatch")) ro.dispatch = parse_dispatch(v.dispatch);
                if (label) ro.label = true;
                apply_control_flags(v, ro, given);
                if (given("--control")) ro.control_socket = control_socket;
                if (!with_config)
                    ro.pools.push_back(pool_from_flags(v, o, command, capture_stdout));
                if (auto p = validate(ro, with_config ? spelling::yaml : spelling::cli))
                    throw usage_error(*p);
                return ro;
            };
            run_options ro = build();
            if (check_only) return run_check(ro, config_path);
            if (with_config) ro.reread = build;
            auto& c = ro.capture;
            need_writable_stats(c.stats_path);
            if (!c.metrics_path.empty()) (void)load_metrics(c.metrics_path);
            return run_workers(ro);
        }
    } catch (const grpc_needed& e) {
        return run_grpc_variant(argv, initial_mask, e);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "telecap: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "telecap: %s\n", e.what());
        return 1;
    }
    return 2;
}

}  // namespace telecap::agent
