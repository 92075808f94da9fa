#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/commands.hpp"

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
                   "Output, repeatable: jsonl (stdout), jsonl:PATH, log, null (default: jsonl)")
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
    auto console = spdlog::stderr_color_st("telecap");
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
