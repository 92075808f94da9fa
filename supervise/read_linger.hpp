#pragma once
// When the loop should wait a moment before reading the workers' pipes again. A worker that
// writes one line per write(2) as fast as it can, read by a loop that is faster than it, is
// read one or two lines at a time: a wake-up, a read and a pipe lock shared with the writer
// per line, on both sides. Waiting a little (the linger) lets the lines pile up, so each read
// takes many of them, and the writer no longer has a reader to wake on every write. Nagle's
// idea for pipes. It applies only while reads come back small *and* often: a worker that
// writes now and then is read at once (no added latency), and a flood fills whole buffers.
// Pure: time comes in as an argument.

#include <chrono>
#include <cstddef>

namespace telecap {

class read_linger {
public:
    using clock = std::chrono::steady_clock;

    // `linger`: how long to wait (0: never); `small`: a turn that read less than this is
    // small; `busy_gap`: a turn that read something within this long after the previous one
    // that did means the workers are writing continuously.
    explicit read_linger(std::chrono::microseconds linger, std::size_t small = 32 * 1024,
                         std::chrono::microseconds busy_gap = std::chrono::milliseconds(1))
        : linger_(linger), small_(small), busy_gap_(busy_gap) {}

    bool enabled() const noexcept { return linger_.count() > 0; }

    // A loop turn ended at `now` having read `bytes` from the workers. Returns how long the
    // next turn should wait before reading (0: not at all).
    std::chrono::microseconds after_turn(std::size_t bytes, clock::time_point now) noexcept {
        if (bytes == 0 || !enabled()) return std::chrono::microseconds(0);
        const bool busy = have_last_ && now - last_ <= busy_gap_;
        have_last_ = true;
        last_ = now;
        return busy && bytes < small_ ? linger_ : std::chrono::microseconds(0);
    }

private:
    std::chrono::microseconds linger_;
    std::size_t small_;
    std::chrono::microseconds busy_gap_;
    clock::time_point last_{};
    bool have_last_ = false;
};

}  // namespace telecap
