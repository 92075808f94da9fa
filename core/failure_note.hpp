#pragma once
// An output's failures for handler::errors() and handler::last_error() (`ctl status`, `telecap
// top`): how many so far and the last one's words. Written by the output's own threads, read
// by any thread.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace telecap {

class failure_note {
public:
    void add(std::string what) {
        std::lock_guard lk(mu_);
        last_ = std::move(what);
        count_.fetch_add(1, std::memory_order_relaxed);
    }
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
    std::string last() const {
        std::lock_guard lk(mu_);
        return last_;
    }

private:
    mutable std::mutex mu_;
    std::string last_;
    std::atomic<std::uint64_t> count_{0};
};

}  // namespace telecap
