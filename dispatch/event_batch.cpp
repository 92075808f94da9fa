#include "dispatch/event_batch.hpp"

#include <algorithm>
#include <string_view>

namespace telecap {

event& event_batch::take(std::size_t pool) {
    if (pool >= pools_.size()) {
        pools_.resize(pool + 1);
        used_.resize(pool + 1, 0);
    }
    auto& p = pools_[pool];
    if (used_[pool] == p.size()) {
        // A new slot, warmed once for the life of the batch: room for a usual event's parts up
        // front (one allocation per vector instead of one per doubling).
        event& ev = p.emplace_back();
        ev.name.reserve(8);
        ev.measurements.reserve(8);
        ev.metadata.reserve(16);
    }
    last_pool_ = pool;
    return p[used_[pool]];
}

event& event_batch::slot(std::size_t type) {
    return take(type == std::string_view::npos ? 1 : type + 2);
}

void event_batch::commit() {
    const auto pool = static_cast<std::uint32_t>(last_pool_);
    const std::uint32_t index = used_[pool]++;
    order_.emplace_back(pool, index);
    if (sized_) bytes_ += pools_[pool][index].approximate_size();
}

void event_batch::push(const event& ev) {
    take(0) = ev;
    commit();
}

void event_batch::push(event&& ev) {
    take(0) = std::move(ev);
    commit();
}

void event_batch::clear() noexcept {
    // Each pool keeps its peak, so that batches of varying sizes and mixes find their slots warm.
    // Only when the pools together hold more than twice the largest batch (the mix of event
    // types moved) do they give back what their last use did not need, so a batch's storage
    // follows the traffic instead of the peak of every type.
    largest_ = std::max(largest_, order_.size());
    std::size_t slots = 0;
    for (const auto& p : pools_) slots += p.size();
    if (slots > 2 * largest_ + 64)
        for (std::size_t p = 0; p < pools_.size(); ++p)
            if (pools_[p].size() > std::size_t{used_[p]} + 32) pools_[p].resize(used_[p] + 32);
    for (auto& u : used_) u = 0;
    order_.clear();
    lines_.clear();
    line_bytes_ = 0;
    bytes_ = 0;
}

}  // namespace telecap
