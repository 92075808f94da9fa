#include "bridge/stream_state.hpp"

#include <algorithm>
#include <utility>

namespace telecap::bridge {

std::string_view to_string(stream_drop d) noexcept {
    return d == stream_drop::queue_full ? "queue_full" : "closed";
}

stream_state::stream_state(std::uint64_t id, std::string peer, selection select,
                           std::size_t capacity, std::size_t known_names, std::size_t start_at,
                           clock::duration stall)
    : capacity_(capacity),
      known_names_(known_names),
      start_at_(start_at),
      stall_(stall),
      gate_(0x9e3779b97f4a7c15ULL ^ id) {
    info_.id = id;
    info_.peer = std::move(peer);
    info_.select = std::move(select);
    gate_.configure(controls_, known_names_);
    progress_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

bool stream_state::selects(std::string_view worker, std::string_view pool) const noexcept {
    // Set once at construction: read without the lock.
    return (info_.select.worker.empty() || info_.select.worker == worker) &&
           (info_.select.pool.empty() || info_.select.pool == pool);
}

stream_state::action stream_state::take_from_batch() {
    action a;
    a.write = std::move(batch_.front());
    batch_.pop_front();
    batch_left_.store(batch_.size(), std::memory_order_relaxed);
    a.more = !batch_.empty();
    return a;
}

stream_state::action stream_state::next_locked() {
    if (broken_.load(std::memory_order_relaxed)) {
        info_.dropped[static_cast<std::size_t>(stream_drop::closed)] += batch_.size();
        batch_.clear();
        batch_left_.store(0, std::memory_order_relaxed);
    } else if (batch_.empty()) {
        if (queue_.empty()) queue_.swap(held_);  // held behind a batch that took the queue
        if (!queue_.empty()) {
            batch_.swap(queue_);  // all of it, for the writer to take without the lock
            batch_left_.store(batch_.size(), std::memory_order_relaxed);
            queue_.swap(held_);  // what came past the full queue is next
        }
    }
    if (!batch_.empty()) {
        if (!writing_)  // a write started from idle is progress: its completion is not late yet
            progress_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        writing_ = true;
        return take_from_batch();
    }
    action a;
    writing_ = false;
    if (!finished_ && (broken_ || finishing_)) {
        finished_ = true;
        a.finish = broken_ ? finish_status::cancelled : finish_status::ok;
    }
    return a;
}

stream_state::action stream_state::kick() {
    std::lock_guard lock(mu_);
    if (writing_ || queue_.empty()) return {};
    return next_locked();
}

stream_state::action stream_state::on_metadata_sent(bool ok) {
    std::lock_guard lock(mu_);
    if (ok) {
        progress_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    } else {
        broken_ = true;
        drop_queued_locked();
    }
    return next_locked();
}

stream_state::action stream_state::on_write_done(bool ok) {
    if (ok) {
        sent_.fetch_add(1, std::memory_order_relaxed);
        progress_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        // The batch goes on without the lock. A cancel meanwhile makes the writes fail; the
        // flag only spares writing the rest of the batch to a call that has ended.
        if (!batch_.empty() && !broken_.load(std::memory_order_relaxed)) return take_from_batch();
    }
    std::lock_guard lock(mu_);
    if (!ok) {
        // The client is gone or the call was cancelled: what is left will never arrive.
        broken_ = true;
        info_.dropped[static_cast<std::size_t>(stream_drop::closed)] += 1;
        drop_queued_locked();
    }
    return next_locked();
}

stream_state::action stream_state::on_cancel() {
    std::lock_guard lock(mu_);
    if (!broken_) {
        broken_ = true;
        // The batch is the writer's: counted when its write in flight completes.
        drop_queued_locked();
    }
    if (writing_) return {};  // the write in flight fails, and its completion finishes
    return next_locked();
}

stream_state::action stream_state::finish() {
    std::lock_guard lock(mu_);
    finishing_ = true;
    if (writing_) return {};
    return next_locked();
}

void stream_state::on_done() {
    std::lock_guard lock(mu_);
    done_ = true;
    info_.open = false;
    info_.dropped[static_cast<std::size_t>(stream_drop::closed)] += batch_.size();
    drop_queued_locked();
    batch_.clear();
    batch_left_.store(0, std::memory_order_relaxed);
}

void stream_state::drop_queued_locked() {
    info_.dropped[static_cast<std::size_t>(stream_drop::closed)] += queue_.size() + held_.size();
    queue_.clear();
    held_.clear();
}

std::size_t stream_state::waiting_locked() const {
    return queue_.size() + held_.size() + batch_left_.load(std::memory_order_relaxed);
}

bool stream_state::stalled_locked(clock::time_point now) const {
    const clock::time_point last{clock::duration(progress_.load(std::memory_order_relaxed))};
    return writing_ && now - last >= stall_;
}

bool stream_state::holding_too_long_locked(clock::time_point now) const {
    return !held_.empty() && now - held_since_ >= stall_;
}

bool stream_state::behind(clock::time_point now) const {
    std::lock_guard lock(mu_);
    if (finishing_ || broken_ || finished_) return false;
    return waiting_locked() >= std::max<std::size_t>(1, capacity_ / 2) && !stalled_locked(now) &&
           !holding_too_long_locked(now);
}

bool stream_state::done() const {
    std::lock_guard lock(mu_);
    return done_;
}

stream_info stream_state::info() const {
    std::lock_guard lock(mu_);
    stream_info out = info_;
    out.queued = waiting_locked();
    out.sent = sent_.load(std::memory_order_relaxed);
    return out;
}

std::optional<std::string> stream_state::refuse(std::string why) {
    std::lock_guard lock(mu_);
    ++info_.controls_rejected;
    return why;
}

std::optional<std::string> to_update(const ::snakepit::bridge::TelemetryControl& c,
                                     control::controls& out) {
    namespace pb = ::snakepit::bridge;
    out = {};
    switch (c.control_case()) {
        case pb::TelemetryControl::kToggle:
            // proto3: a toggle left at its default means enabled=false.
            out.enabled = c.toggle().enabled();
            return std::nullopt;
        case pb::TelemetryControl::kSampling: {
            control::sampling s;
            s.rate = c.sampling().sampling_rate();  // proto3 default: 0, every event dropped
            s.patterns.assign(c.sampling().event_patterns().begin(),
                              c.sampling().event_patterns().end());
            auto problem = control::check(s);
            out.sample = std::move(s);
            return problem;
        }
        case pb::TelemetryControl::kFilter: {
            control::filter f;
            f.allow.assign(c.filter().allow().begin(), c.filter().allow().end());
            f.deny.assign(c.filter().deny().begin(), c.filter().deny().end());
            auto problem = control::check(f);
            out.filt = std::move(f);
            return problem;
        }
        default:
            return "a control message with none of toggle, sampling or filter";
    }
}

void stream_state::applied() {
    std::lock_guard lock(mu_);
    ++info_.controls_applied;
}

std::optional<std::string> stream_state::apply(const ::snakepit::bridge::TelemetryControl& c) {
    control::controls update;
    auto problem = to_update(c, update);
    std::lock_guard lock(mu_);
    if (problem) {
        ++info_.controls_rejected;
        return problem;
    }
    ++info_.controls_applied;
    if (update.enabled) controls_.enabled = *update.enabled;
    if (update.sample) controls_.sample = std::move(*update.sample);
    if (update.filt) controls_.filt = std::move(*update.filt);
    gate_.configure(controls_, known_names_);
    return std::nullopt;
}

}  // namespace telecap::bridge
