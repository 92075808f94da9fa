#pragma once
// A bounded multi-producer queue with one consumer that takes everything queued at once.
// Producers choose per push: try_push (never waits; the caller counts the drop) or push_wait
// (waits for room, up to a timeout, so the caller can still react to signals).

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace telecap {

template <typename T>
class bounded_queue {
public:
    explicit bounded_queue(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

    // False when full or closed; `item` is then left as it was.
    bool try_push(T& item) {
        {
            std::lock_guard lock(mu_);
            if (closed_ || items_.size() >= capacity_) return false;
            items_.push_back(std::move(item));
        }
        not_empty_.notify_one();
        return true;
    }

    // Waits up to `timeout` for room. False on timeout or when closed.
    template <typename Rep, typename Period>
    bool push_wait(T& item, std::chrono::duration<Rep, Period> timeout) {
        {
            std::unique_lock lock(mu_);
            if (!not_full_.wait_for(lock, timeout,
                                    [&] { return closed_ || items_.size() < capacity_; }))
                return false;
            if (closed_) return false;
            items_.push_back(std::move(item));
        }
        not_empty_.notify_one();
        return true;
    }

    // Waits until items are queued or the queue is closed, then moves them all into `out`
    // (which must be empty). False when closed and drained.
    bool pop_all(std::deque<T>& out) {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
        if (items_.empty()) return false;
        out.swap(items_);
        lock.unlock();
        not_full_.notify_all();
        return true;
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

    std::size_t size() const {
        std::lock_guard lock(mu_);
        return items_.size();
    }
    std::size_t capacity() const noexcept { return capacity_; }

private:
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<T> items_;
    bool closed_ = false;
};

}  // namespace telecap
