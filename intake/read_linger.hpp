#pragma once
// When the loop should wait a moment before reading the workers' pipes again. A worker that
// writes one line per write(2) as fast as it can, read by a loop that is faster than it, is
// read one or two lines at a time: a wake-up, a read and a pipe lock shared with the writer
// per line, on both sides, and a batch of one event for the dispatcher. Waiting a little (the
// linger) lets the lines pile up, so each read takes many of them. Nagle's idea for pipes.
// It applies only while reads come back small *and* turn after turn: a worker that writes now
// and then is read at once (no added latency), and a flood fills whole buffers. The decision
// comes from what the reads return, so it adapts to the machine: while a turn after a linger
// still reads little, the next linger doubles (up to `max`); a big read resets it.
// Pure: time comes in as an argument.

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace telecap {

class read_linger {
public:
    using clock = std::chrono::steady_clock;

    // `linger`: the first wait (0: never); `max`: the longest; `small`: a turn that read less
    // than this is small; `busy_gap`: a turn that read something within this long (plus the
    // linger it waited) after the previous one that did means the workers write continuously.
    explicit read_linger(std::chrono::microseconds linger,
                         std::chrono::microseconds max = std::chrono::microseconds(1000),
                         std::size_t small = 32 * 1024,
                         std::chrono::microseconds busy_gap = std::chrono::milliseconds(1))
        : linger_(linger),
          max_(std::max(max, linger)),
          small_(small),
          busy_gap_(busy_gap),
          current_(linger) {}

    bool enabled() const noexcept { return linger_.count() > 0; }

    // A loop turn ended at `now` having read `bytes` from the workers. Returns how long the
    // next turn should wait before reading (0: not at all).
    std::chrono::microseconds after_turn(std::size_t bytes, clock::time_point now) noexcept {
        if (bytes == 0 || !enabled()) return std::chrono::microseconds(0);
        const auto gap = busy_gap_ + (lingered_ ? current_ : std::chrono::microseconds(0));
        const bool busy = have_last_ && now - last_ <= gap;
        have_last_ = true;
        last_ = now;
        if (!busy || bytes >= small_) {
            current_ = linger_;
            lingered_ = false;
            return std::chrono::microseconds(0);
        }
        // Waited, and still a quarter of `small` or less: the writer is slow for this wait.
        if (lingered_ && bytes < small_ / 4) current_ = std::min(current_ * 2, max_);
        lingered_ = true;
        return current_;
    }

private:
    std::chrono::microseconds linger_;
    std::chrono::microseconds max_;
    std::size_t small_;
    std::chrono::microseconds busy_gap_;
    std::chrono::microseconds current_;
    clock::time_point last_{};
    bool have_last_ = false;
    bool lingered_ = false;
};

}  // namespace telecap
