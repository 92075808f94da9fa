#pragma once
// The limits of every setting, shared by the CLI and the YAML loader so both accept the same
// values and say the same words. A check returns the problem as the phrase that follows the
// setting's name ("must be between 64 and 1073741824 (1 GiB), not 10"), or nothing; the
// caller puts the name in front ("--max-line ..." or "pools.yaml:3: max_line ...").

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "agent/run.hpp"
#include "outputs/unix_socket_handler.hpp"

namespace telecap::agent {

using problem = std::optional<std::string>;

// How a message names a setting: the YAML key ("max_line") or the flag ("--max-line").
enum class spelling { yaml, cli };
std::string setting_name(std::string_view yaml_key, spelling s);

inline constexpr long long min_max_line = 64;
inline constexpr long long max_max_line = 1LL << 30;  // 1 GiB
inline constexpr long long max_queue = 1LL << 24;
inline constexpr long long min_queue_bytes = 1LL << 16;  // 64 KiB
inline constexpr long long max_queue_bytes = 1LL << 34;  // 16 GiB
inline constexpr double max_seconds = 86400;             // 1 day
inline constexpr std::chrono::milliseconds min_backoff{10};

problem check_max_line(long long bytes);
problem check_queue(long long events);
problem check_queue_bytes(long long bytes);
problem check_line_budget(long long bytes);  // same bounds as queue_bytes
problem check_prefix(std::string_view prefix);
// grace, backoff_min, backoff_max, healthy_after, restart_window: 0 .. 1 day, finite.
problem check_seconds(double seconds);
problem check_burst_hold(double seconds);  // 0 .. 10 seconds
problem check_instances(long long n);
problem check_telemetry_fd(long long fd);
// A pool's `grpc` (run --grpc): HOST:PORT or unix:PATH, PORT may be {port}. In the executable
// built without the gRPC bridge it throws grpc_needed (agent/options.hpp): the command line
// then runs in telecap-grpc.
problem check_grpc_address(std::string_view address);
// A pool with `grpc` and no command (a worker telecap does not start): its address must be
// fixed (no {port}: there is no command to give a port to), one instance, no telemetry fd.
problem check_remote_worker(const pool_spec& p);
problem check_max_restarts(long long n);
problem check_cwd(const std::string& dir);  // must exist and be a directory
problem check_env_key(std::string_view key);
problem check_env_value(std::string_view value);
problem check_restart_mode(std::string_view text);  // never|on-failure|always
problem check_overflow(std::string_view text);      // drop-newest|block
problem check_dispatch(std::string_view text);      // loop|thread
problem check_stop_signal(std::string_view text);
problem check_unknown_events(std::string_view text);  // reject|keep

// A unix output's argument, "PATH[?name=N&name=N...]" (PATH cannot hold a '?'): the socket
// path and its budgets, max_hosts (1 .. 65536), max_backlog (4096 .. 1 GiB),
// max_total_backlog (4096 .. 16 GiB, not less than max_backlog) and fd_reserve (1 .. 65536),
// each a whole number of hosts, bytes or fds; the others keep their defaults. The problem
// reads after the spec ("max_hosts must be between 1 and 65536, not 0").
struct unix_output_spec {
    std::string path;
    unix_socket_options options;
};
problem parse_unix_output(std::string_view arg, unix_output_spec& out);
// What is wrong with an output spec before it is opened (only unix: has options to check),
// as a whole message naming the spec.
problem check_output(std::string_view spec);

// Seconds that passed check_seconds, rounded to milliseconds (no overflow: at most 1 day).
std::chrono::milliseconds to_millis(double seconds);
overflow_policy parse_overflow(std::string_view text);  // after check_overflow
dispatch_mode parse_dispatch(std::string_view text);    // after check_dispatch

// Rules across one pool's restart settings. These return the whole message, names included.
// backoff_min must be at least 10 ms when workers restart (a crash loop would spin).
problem check_backoff_min(const spawn::restart_options& r, spelling s);
// backoff_max must not be less than backoff_min.
problem check_backoff_order(const spawn::restart_options& r, spelling s);

// One scope's controls (control/controls.hpp): a NaN sampling rate, a bad glob, a bad rate
// limit. The problem reads after "control" or "pool \"p\" control".
problem check_controls(const control::controls& c);

// Every rule over assembled options (each field, then the cross-field ones); the first
// problem as a whole message, names included.
problem validate(const capture_options& o, spelling s);
problem validate(const run_options& o, spelling s);

// Whether `path` can be written later (--stats at exit): opens it for writing without
// truncating it, and removes it again if it did not exist. The problem is the OS's reason.
problem check_writable(const std::string& path);

}  // namespace telecap::agent
