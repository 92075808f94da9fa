#pragma once
// A token bucket: at most `burst` events at once, refilled at `rate` events per second. Time
// comes in as an argument (no clock inside), so tests drive it with an injected clock.

#include <chrono>

namespace telecap::control {

class token_bucket {
public:
    using clock = std::chrono::steady_clock;

    token_bucket() = default;  // unlimited: take() always succeeds
    // rate > 0 and burst >= 1 (control::check_rate_limit); starts full.
    token_bucket(double rate, double burst, clock::time_point now) noexcept
        : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

    // Takes one token if there is one. `now` must not go backwards (a smaller one is ignored).
    bool take(clock::time_point now) noexcept;
    double tokens() const noexcept { return tokens_; }

private:
    double rate_ = 0;  // 0: unlimited
    double burst_ = 0;
    double tokens_ = 0;
    clock::time_point last_{};
};

}  // namespace telecap::control
