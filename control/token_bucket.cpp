#include "control/token_bucket.hpp"

#include <algorithm>

namespace telecap::control {

bool token_bucket::take(clock::time_point now) noexcept {
    if (rate_ <= 0) return true;
    if (now > last_) {
        const double dt = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + dt * rate_);
        last_ = now;
    }
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
}

}  // namespace telecap::control
