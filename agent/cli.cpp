#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/commands.hpp"
#include "agent/run.hpp"
#include "spawn/signals.hpp"

namespace telecap::agent {

namespace {

// Options every capturing command takes.
void add_capture_options(CLI::App& cmd, capture_options& o, bool with_outputs) {
    cmd.add_option("--catalog", o.catalog_path, "Catalog JSON file (default: built-in Snakepit)")
        ->check(CLI::ExistingFile);
    cmd.add_option("--prefix", o.prefix, "Prefix that marks a telemetry line")
        ->capture_default_str()
        ->check([](const std::string& s) { return s.empty() ? "the prefix must not be empty" : ""; });
    cmd.add_option("--max-line", o.max_line, "Longest line in bytes; longer telemetry is rejected")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 30));
    cmd.add_option("--node", o.node, "Metadata node (default: the hostname)");
    cmd.add_option("--pool", o.pool, "Metadata pool_name")->capture_default_str();
    if (!with_outputs) return;
    cmd.add_option("--worker-id", o.worker_id, "Metadata worker_id");
    cmd.add_option("--pid", o.pid, "Metadata python_pid");
    cmd.add_option("-o,--output", o.outputs,
                   "Output, repeatable: jsonl (stdout), jsonl:PATH, unix:PATH, log, null "
                   "(default: jsonl)")
        ->allow_extra_args(false);
    cmd.add_option("--passthrough", o.passthrough, "Where non-telemetry goes: stderr|stdout|none|PATH")
        ->capture_default_str();
    cmd.add_option("--rejects", o.rejects_path, "Record each rejected line as JSON to PATH");
    cmd.add_option("--stats", o.stats_path, "Write the counters as JSON to PATH at exit");
}

}  // namespace

int main_cli(int argc, char** argv) {
    // A closed output pipe is an error to count, not a reason to die.
    std::signal(SIGPIPE, SIG_IGN);
    auto console = spdlog::stderr_color_mt("telecap");  // the loop, dispatch and socket threads all log
    console->set_pattern("telecap: %^%l%$: %v");
    spdlog::set_default_logger(console);

    CLI::App app{"telecap: turns TELEMETRY: lines on a worker's stderr into normalized events",
                 "telecap"};
    app.set_version_flag("--version", std::string("telecap ") + TELECAP_VERSION);
    app.require_subcommand(1);
    std::string log_level = "warn";
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
        ->capture_default_str();

    capture_options o;
    std::vector<std::string> inputs;

    auto* parse = app.add_subcommand("parse", "Run the pipeline over files or stdin");
    add_capture_options(*parse, o, true);
    parse->add_option("inputs", inputs, "Input files (- or none: stdin)");

    auto* lint = app.add_subcommand("lint", "Report each rejected telemetry line; exit 1 if any");
    add_capture_options(*lint, o, false);
    lint->add_option("--stats", o.stats_path, "Write the counters as JSON to PATH at exit");
    lint->add_option("inputs", inputs, "Input files (- or none: stdin)");

    auto* cat = app.add_subcommand("catalog", "Print the active catalog as JSON");
    cat->add_option("--catalog", o.catalog_path, "Catalog JSON file (default: built-in)")
        ->check(CLI::ExistingFile);

    auto* run = app.add_subcommand("run", "Spawn, supervise and capture workers: run [OPTIONS] -- CMD [ARGS...]");
    add_capture_options(*run, o, true);
    run_options ro;
    pool_spec cli_pool;
    cli_pool.restart.mode = spawn::restart_mode::never;
    std::string config_path, restart = "never", stop_signal, overflow = "drop-newest";
    double backoff_min = 0.1, backoff_max = 30, healthy_after = 10, restart_window = 60,
           grace = 10;
    run->add_option("--config", config_path, "YAML config with pools of workers")
        ->check(CLI::ExistingFile);
    run->add_option("--instances", cli_pool.instances, "Number of workers to run")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000));
    run->add_option("--restart", restart, "never|on-failure|always")->capture_default_str();
    run->add_option("--backoff-min", backoff_min, "First restart delay, seconds")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    run->add_option("--backoff-max", backoff_max, "Longest restart delay, seconds")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    run->add_option("--healthy-after", healthy_after, "A run this long resets the backoff, seconds")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    run->add_option("--max-restarts", cli_pool.restart.max_restarts,
                    "Give up after this many restarts within --restart-window")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    run->add_option("--restart-window", restart_window, "Window for --max-restarts, seconds")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    run->add_option("--stop-signal", stop_signal,
                    "Signal sent to the workers when telecap is told to stop")
        ->default_str("TERM");
    run->add_option("--grace", grace, "Seconds between the stop signal and SIGKILL")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    run->add_option("--queue", ro.queue, "Events queued for the dispatcher at most")
        ->capture_default_str()->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
    run->add_option("--queue-bytes", ro.queue_bytes, "Event memory the queue may hold at most")
        ->capture_default_str()->check(CLI::Range(std::size_t{1} << 16, std::size_t{1} << 34));
    run->add_option("--overflow", overflow, "When the queue is full: drop-newest|block")
        ->capture_default_str();
    run->add_flag("--label", ro.label, "Prefix pass-through lines with [worker-id]");
    run->add_flag("--capture-stdout", cli_pool.capture_stdout, "Also scan the workers' stdout");
    run->add_option("--telemetry-fd", cli_pool.telemetry_fd,
                    "Read telemetry from a dedicated pipe on this fd; stderr is pass-through only")
        ->check(CLI::Range(3, 1023));
    run->add_option("command", cli_pool.command, "The worker command (after --)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "telecap: %s\nRun 'telecap --help' or 'telecap COMMAND --help'.\n",
                     e.what());
        return 2;
    }
    spdlog::set_level(spdlog::level::from_str(log_level));

    try {
        if (*parse) return run_parse(o, inputs);
        if (*lint) return run_lint(o, inputs);
        if (*cat) return run_catalog(o);
        if (*run) {
            const auto secs = [](double s) {
                return std::chrono::milliseconds(static_cast<long long>(s * 1000));
            };
            const auto mode = spawn::parse_restart_mode(restart);
            if (!mode) throw usage_error("--restart must be never, on-failure or always");
            cli_pool.restart.mode = *mode;
            cli_pool.restart.backoff_min = secs(backoff_min);
            cli_pool.restart.backoff_max = secs(backoff_max);
            cli_pool.restart.healthy_after = secs(healthy_after);
            cli_pool.restart.restart_window = secs(restart_window);
            cli_pool.name = o.pool;
            ro.grace = secs(grace);
            if (overflow == "block") ro.overflow = overflow_policy::block;
            else if (overflow != "drop-newest")
                throw usage_error("--overflow must be drop-newest or block");
            if (!stop_signal.empty()) {
                ro.stop_signal = spawn::parse_signal(stop_signal);
                if (ro.stop_signal <= 0)
                    throw usage_error("--stop-signal: \"" + stop_signal + "\" is not a signal");
            }
            ro.capture = o;
            if (!config_path.empty()) {
                if (!cli_pool.command.empty())
                    throw usage_error("give either --config or a command after --, not both");
                load_config(config_path, ro);
            } else {
                if (cli_pool.command.empty())
                    throw usage_error("nothing to run: telecap run [OPTIONS] -- CMD [ARGS...]");
                ro.pools.push_back(cli_pool);
            }
            return run_workers(ro);
        }
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
