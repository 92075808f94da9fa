#pragma once
// The commands of the CLI. Each returns the process exit code; startup problems throw
// usage_error (exit 2).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/options.hpp"

namespace telecap::agent {

// telecap parse [FILE|-]...: the pipeline over files or stdin. Exit 0, or 1 if an input could
// not be read.
int run_parse(const capture_options& o, const std::vector<std::string>& inputs);

// telecap lint FILE...: prints each rejected telemetry line as FILE:LINE:COL: reason: detail.
// Exit 0 when there is none, 1 when there is any, 2 when an input cannot be read.
int run_lint(const capture_options& o, const std::vector<std::string>& inputs);

// telecap catalog: prints the active catalog as JSON.
int run_catalog(const capture_options& o);

// telecap metrics: --print-default writes the bundled metrics file; --check FILE validates one
// (exit 2 with FILE:LINE: problem when it is bad).
int run_metrics(bool print_default, const std::string& check_path);

// telecap run --check: validates what a start would (the config, catalogs, metrics file,
// files to write) and starts nothing. Prints "FILE: ok: ..." and returns 0; a problem throws
// usage_error (FILE:LINE: problem when the config says where).
struct run_options;
int run_check(const run_options& o, const std::string& config_path);

// telecap ctl: one command to a running telecap's control socket (docs/control.md). Prints the
// reply (readable, or the JSON line with `json`); exit 0, or 1 when the command is refused or
// no server answers. A malformed command line throws usage_error.
struct ctl_options {
    std::string socket;
    std::string command;                   // status, stats, toggle, sample, filter, rate-limit, ...
    std::vector<std::string> args;         // its arguments
    std::vector<std::string> allow, deny;  // filter's lists
    std::string pool, worker;              // the scope; neither: every worker
    bool json = false;
    std::chrono::milliseconds timeout{10000};
    // tap
    std::string format;       // jsonl (default) or log
    std::uint64_t limit = 0;  // events, then exit; 0: no limit
    bool passthrough = false;
};
int run_ctl(const ctl_options& o);

// telecap top: a live view of a running telecap through its control socket (docs/top.md).
// On a terminal, interactive until `q`; with `once`, or when stdout is not a terminal, two
// snapshots `interval` apart printed once as plain text. Exit 0, or 1 when no telecap answers
// (or it goes away).
struct top_options {
    std::string socket;
    std::chrono::milliseconds interval{1000};
    bool once = false;
    std::string pool;  // show this pool's workers only; empty: every pool
};
int run_top(const top_options& o);

// The CLI: parses argv and runs the command.
int main_cli(int argc, char** argv);

}  // namespace telecap::agent
