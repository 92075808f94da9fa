#include "agent/worker_control_relay.hpp"

#include <utility>

namespace telecap::agent {

namespace {

std::optional<std::string> hold(supervisor& sup, std::uint64_t holder, const std::string& worker,
                                const std::string& pool, control::controls update) {
    control::scope where;
    if (!worker.empty()) {
        // Both named: the stream gets the events of that worker if it is in that pool, so
        // its controls may act on that worker only then.
        const auto in = sup.pool_of(worker);
        if (!in) return "no worker \"" + worker + "\"";
        if (!pool.empty() && *in != pool)
            return "worker \"" + worker + "\" is not in pool \"" + pool + "\"";
        where = {control::scope_kind::worker, worker};
    } else if (!pool.empty()) {
        where = {control::scope_kind::pool, pool};
    }
    return sup.hold_controls(holder, where, std::move(update));
}

}  // namespace

void worker_control_relay::apply(std::uint64_t holder, std::string worker, std::string pool,
                                 control::controls update, reply done) {
    submit([holder, worker = std::move(worker), pool = std::move(pool), update = std::move(update),
            done](supervisor& sup) { done(hold(sup, holder, worker, pool, update)); },
           done);
}

void worker_control_relay::release(std::uint64_t holder) {
    submit([holder](supervisor& sup) { sup.release_controls(holder); }, nullptr);
}

std::uint64_t worker_control_relay::next_owner() {
    std::lock_guard lock(mu_);
    return ++owners_;
}

void worker_control_relay::submit(std::function<void(supervisor&)> fn, reply refused) {
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
    loop_->post([sup = sup_, fn = std::move(fn)] { fn(*sup); });
}

void worker_control_relay::attach(event_loop& loop, supervisor& sup) {
    std::lock_guard lock(mu_);
    loop_ = &loop;
    sup_ = &sup;
    for (auto& fn : waiting_) loop.post([&sup, fn = std::move(fn)] { fn(sup); });
    waiting_.clear();
}

void worker_control_relay::detach() {
    std::lock_guard lock(mu_);
    detached_ = true;
    loop_ = nullptr;
    sup_ = nullptr;
}

}  // namespace telecap::agent
