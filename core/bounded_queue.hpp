#pragma once
// A bounded multi-producer queue with one consumer, bounded both in items and in bytes (each
// item's cost is estimated by a function given at construction). Items the consumer has taken
// but not yet finished still count against the bounds, so memory stays bounded end to end.
// Producers push batches: one lock and one wake-up per batch, not per item.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace telecap {

template <typename T>
class bounded_queue {
public:
    using cost_fn = std::function<std::size_t(const T&)>;

    bounded_queue(std::size_t max_items, std::size_t max_bytes, cost_fn cost)
        : max_items_(max_items ? max_items : 1), max_bytes_(max_bytes), cost_(std::move(cost)) {}

    // Moves items from batch[from..] while there is room, waiting up to `timeout` for room
    // when there is none. Returns the index of the first item not moved (batch.size() if all
    // were). Nothing is moved once the queue is closed.
    template <typename Rep, typename Period>
    std::size_t push(std::vector<T>& batch, std::size_t from,
                     std::chrono::duration<Rep, Period> timeout) {
        std::size_t moved = 0;
        bool wake = false;
        {
            std::unique_lock lock(mu_);
            const std::size_t before = items_.size();
            const auto deadline = std::chrono::steady_clock::now() + timeout;
            while (from < batch.size() && !closed_) {
                if (!room()) {
                    if (timeout.count() <= 0) break;
                    // The consumer may be asleep waiting for items: wake it for the ones just
                    // queued, or it never makes the room this wait is for.
                    if (moved) not_empty_.notify_one();
                    if (!not_full_.wait_until(lock, deadline, [&] { return closed_ || room(); }))
                        break;
                    continue;
                }
                const std::size_t c = cost_(batch[from]);
                items_.push_back(std::move(batch[from++]));
                ++count_;
                bytes_ += c;
                costs_.push_back(c);
                ++moved;
            }
            // The consumer waits for the first item, or lingers for a batch: wake it when the
            // queue stops being empty or the batch is complete, not for every push.
            wake = moved && (before == 0 || (before < linger_items_ && items_.size() >= linger_items_));
        }
        if (wake) not_empty_.notify_one();
        return from;
    }

    // Waits until items are queued or the queue is closed, then moves them all into `out`
    // (which must be empty). They stay counted until release(). False when closed and drained.
    // A wake() also ends the wait: then `out` may stay empty, and the result is true.
    bool pop_all(std::deque<T>& out) {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [&] { return closed_ || !items_.empty() || woken_; });
        if (linger_.count() > 0 && !closed_ && !woken_ && items_.size() < linger_items_)
            not_empty_.wait_for(lock, linger_, [&] {
                return closed_ || woken_ || items_.size() >= linger_items_ || !room();
            });
        const bool woken = std::exchange(woken_, false);
        if (items_.empty()) return woken;
        out.swap(items_);
        taken_costs_.clear();
        taken_costs_.swap(costs_);
        return true;
    }

    // pop_all waits up to `linger` for a batch of `items` once the first item is there (fewer
    // wake-ups of the consumer when items come one by one); 0: no wait. Set before use.
    void set_linger(std::chrono::microseconds linger, std::size_t items) {
        std::lock_guard lock(mu_);
        linger_ = linger;
        linger_items_ = items ? items : 1;
    }

    // The consumer is done with what pop_all gave it.
    void release() {
        {
            std::lock_guard lock(mu_);
            for (std::size_t c : taken_costs_) bytes_ -= c;
            count_ -= taken_costs_.size();
            taken_costs_.clear();
        }
        not_full_.notify_all();
    }

    // Ends the consumer's wait in pop_all (work other than items is waiting for it).
    void wake() {
        {
            std::lock_guard lock(mu_);
            woken_ = true;
        }
        not_empty_.notify_one();
    }

    // Whether a push would find room now.
    bool has_room() const {
        std::lock_guard lock(mu_);
        return room();
    }

    // No more pushes; the consumer still gets what is queued.
    void close() {
        {
            std::lock_guard lock(mu_);
            closed_ = true;
        }
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    // Items queued or in the consumer's hands.
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return count_;
    }
    std::size_t queued() const {
        std::lock_guard lock(mu_);
        return items_.size();
    }

private:
    // Room for one more; an empty queue always takes one, however large.
    bool room() const { return count_ == 0 || (count_ < max_items_ && bytes_ < max_bytes_); }
    std::chrono::microseconds linger_{0};
    std::size_t linger_items_ = 1;

    const std::size_t max_items_;
    const std::size_t max_bytes_;
    cost_fn cost_;
    mutable std::mutex mu_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<T> items_;
    std::deque<std::size_t> costs_;
    std::deque<std::size_t> taken_costs_;
    std::size_t count_ = 0;  // queued + taken
    std::size_t bytes_ = 0;  // their cost
    bool closed_ = false;
    bool woken_ = false;
};

}  // namespace telecap
