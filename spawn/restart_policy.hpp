#pragma once
// When to restart an exited worker, and after how long. Pure: no syscalls, no clock reads and
// no RNG of its own; time and randomness come in as arguments, so tests are deterministic.

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace telecap::spawn {

enum class restart_mode { never, on_failure, always };

// "never" (or "no"), "on-failure" (or "on_failure"), "always"; nullopt for anything else.
std::optional<restart_mode> parse_restart_mode(std::string_view text) noexcept;
// "never", "on-failure", "always".
const char* to_string(restart_mode mode) noexcept;

struct restart_options {
    restart_mode mode = restart_mode::never;
    // Delays grow from backoff_min, doubling per consecutive restart, up to backoff_max.
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{30000};
    // A run at least this long resets the delay to backoff_min.
    std::chrono::milliseconds healthy_after{10000};
    // Give up when a restart would make more than max_restarts within restart_window (Erlang
    // supervisor intensity/period). max_restarts = 0 gives up on the first exit.
    std::chrono::milliseconds restart_window{60000};
    int max_restarts = 5;
    // Each delay is scaled by a factor in [1 - jitter, 1 + jitter], then clamped to
    // [backoff_min, backoff_max]. Spreads out workers that fail together.
    double jitter = 0.2;

    bool operator==(const restart_options&) const = default;
};

// The restart state of one worker. The caller handles stops it asked for itself (no restart
// while stopping); every other exit goes through on_exit.
class restart_tracker {
public:
    using clock = std::chrono::steady_clock;

    struct decision {
        bool restart = false;
        std::chrono::milliseconds delay{0};  // wait this long before restarting
        bool give_up = false;                // restart intensity exceeded: the worker is failed
        std::string reason;                  // lower-case, for logs
    };

    // Out-of-range options are clamped: negative durations to 0, backoff_max to at least
    // backoff_min, jitter to [0, 1], max_restarts to at least 0.
    explicit restart_tracker(restart_options options) noexcept;

    // The worker that started at started_at has exited at now. failed: non-zero exit code or
    // killed by a signal. random01 in [0, 1] drives the jitter (0.5 means none).
    decision on_exit(bool failed, clock::time_point started_at, clock::time_point now,
                     double random01);

    // The base delay the next restart would use, before jitter.
    std::chrono::milliseconds next_backoff() const noexcept { return next_backoff_; }
    // Restarts recorded within the window ending at `now`.
    int restarts_within_window(clock::time_point now) const noexcept;
    const restart_options& options() const noexcept { return options_; }

private:
    restart_options options_;
    std::chrono::milliseconds next_backoff_;
    std::deque<clock::time_point> recent_restarts_;  // oldest first
};

}  // namespace telecap::spawn
