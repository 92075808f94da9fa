#include "control/worker_control_relay.hpp"

#include <utility>

namespace telecap::control {

void worker_control_relay::apply(std::uint64_t holder, std::string worker, std::string pool,
                                 controls update, reply done) {
    submit([holder, worker = std::move(worker), pool = std::move(pool), update = std::move(update),
            done](held_target& t) { done(t.hold_controls(holder, worker, pool, update)); },
           done);
}

void worker_control_relay::release(std::uint64_t holder) {
    submit([holder](held_target& t) { t.release_controls(holder); }, nullptr);
}

std::uint64_t worker_control_relay::next_owner() {
    std::lock_guard lock(mu_);
    return ++owners_;
}

void worker_control_relay::submit(std::function<void(held_target&)> fn, const reply& refused) {
    std::unique_lock lock(mu_);
    if (detached_) {
        lock.unlock();
        if (refused) refused("telecap is stopping");
        return;
    }
    if (!loop_) {
        waiting_.push_back(std::move(fn));
        return;
    }
    // Under the lock: detach() cannot let the loop go between the check and the post.
    loop_->post([t = target_, fn = std::move(fn)] { fn(*t); });
}

void worker_control_relay::attach(event_loop& loop, held_target& t) {
    std::lock_guard lock(mu_);
    loop_ = &loop;
    target_ = &t;
    for (auto& fn : waiting_) loop.post([&t, fn = std::move(fn)] { fn(t); });
    waiting_.clear();
}

void worker_control_relay::detach() {
    std::lock_guard lock(mu_);
    detached_ = true;
    loop_ = nullptr;
    target_ = nullptr;
}

}  // namespace telecap::control
