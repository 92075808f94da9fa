#pragma once
// One memory budget for the partial lines of many streams (telecap run's workers). Each
// stream's framer holds up to line_framer::free_hold bytes of a partial line on its own; beyond
// that it takes from the budget, and when the budget is spent the line is handled as an
// over-long one (streamed through, a telemetry line rejected as oversize) instead of growing.
// So memory is bounded by streams x free_hold + the budget, not by streams x max_line.
// Thread-safe: framers of several threads may share one.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace telecap {

class line_budget {
public:
    explicit line_budget(std::size_t limit) noexcept : limit_(limit) {}

    // Takes n bytes if the total stays within the limit.
    bool try_take(std::size_t n) noexcept {
        std::size_t cur = used_.load(std::memory_order_relaxed);
        do {
            if (n > limit_ - std::min(cur, limit_)) {
                refusals_.fetch_add(1, std::memory_order_relaxed);
                return false;
            }
        } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
        return true;
    }
    // Takes n bytes whatever the total (an allocator's rounding of a granted request).
    void take(std::size_t n) noexcept { used_.fetch_add(n, std::memory_order_relaxed); }
    void give(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

    std::size_t limit() const noexcept { return limit_; }
    std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    // Requests refused: lines cut short by the budget.
    std::uint64_t refusals() const noexcept { return refusals_.load(std::memory_order_relaxed); }

private:
    const std::size_t limit_;
    std::atomic<std::size_t> used_{0};
    std::atomic<std::uint64_t> refusals_{0};
};

}  // namespace telecap
