#include "spawn/restart_policy.hpp"

#include <algorithm>
#include <cmath>

namespace telecap::spawn {

using std::chrono::milliseconds;

std::optional<restart_mode> parse_restart_mode(std::string_view text) noexcept {
    if (text == "never" || text == "no") return restart_mode::never;
    if (text == "on-failure" || text == "on_failure") return restart_mode::on_failure;
    if (text == "always") return restart_mode::always;
    return std::nullopt;
}

const char* to_string(restart_mode mode) noexcept {
    switch (mode) {
        case restart_mode::never:
            return "never";
        case restart_mode::on_failure:
            return "on-failure";
        case restart_mode::always:
            return "always";
    }
    return "unknown";
}

restart_tracker::restart_tracker(restart_options options) noexcept : options_(options) {
    options_.backoff_min = std::max(options_.backoff_min, milliseconds{0});
    options_.backoff_max = std::max(options_.backoff_max, options_.backoff_min);
    options_.healthy_after = std::max(options_.healthy_after, milliseconds{0});
    options_.restart_window = std::max(options_.restart_window, milliseconds{0});
    options_.max_restarts = std::max(options_.max_restarts, 0);
    options_.jitter = std::isnan(options_.jitter) ? 0.0 : std::clamp(options_.jitter, 0.0, 1.0);
    next_backoff_ = options_.backoff_min;
}

int restart_tracker::restarts_within_window(clock::time_point now) const noexcept {
    return static_cast<int>(
        std::count_if(recent_restarts_.begin(), recent_restarts_.end(),
                      [&](clock::time_point t) { return now - t < options_.restart_window; }));
}

restart_tracker::decision restart_tracker::on_exit(bool failed, clock::time_point started_at,
                                                   clock::time_point now, double random01) {
    decision d;
    const std::string what = failed ? "failed" : "exited cleanly";
    if (options_.mode == restart_mode::never) {
        d.reason = what + ", restart mode is never";
        return d;
    }
    if (options_.mode == restart_mode::on_failure && !failed) {
        d.reason = what + ", restart mode is on-failure";
        return d;
    }

    // A long enough run means whatever made it crash-loop is over: start the backoff afresh.
    if (now - started_at >= options_.healthy_after) next_backoff_ = options_.backoff_min;

    while (!recent_restarts_.empty() && now - recent_restarts_.front() >= options_.restart_window) {
        recent_restarts_.pop_front();
    }
    if (static_cast<int>(recent_restarts_.size()) >= options_.max_restarts) {
        d.give_up = true;
        d.reason = what + ", giving up after " + std::to_string(recent_restarts_.size()) +
                   " restarts within " + std::to_string(options_.restart_window.count()) + "ms";
        return d;
    }
    recent_restarts_.push_back(now);

    const double r = std::isnan(random01) ? 0.5 : std::clamp(random01, 0.0, 1.0);
    const double factor = 1.0 + options_.jitter * (2.0 * r - 1.0);
    // Clamp in double first: llround of a value beyond the range of long long is undefined.
    const double scaled = static_cast<double>(next_backoff_.count()) * factor;
    if (scaled >= static_cast<double>(options_.backoff_max.count())) {
        d.delay = options_.backoff_max;
    } else {
        d.delay = std::clamp(milliseconds{std::llround(scaled)}, options_.backoff_min,
                             options_.backoff_max);
    }
    d.restart = true;
    d.reason = what + ", restart " + std::to_string(recent_restarts_.size()) + " of " +
               std::to_string(options_.max_restarts) + " in " + std::to_string(d.delay.count()) +
               "ms";

    // Saturating doubling: backoff_max may be close to the type's limit.
    next_backoff_ = next_backoff_ > options_.backoff_max / 2
                        ? options_.backoff_max
                        : std::min(next_backoff_ * 2, options_.backoff_max);
    return d;
}

}  // namespace telecap::spawn
