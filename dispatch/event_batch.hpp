#pragma once
// A batch of events on its way from the loop thread to the dispatch thread, recycled batch
// after batch (dispatcher::take_batch). The capture pipeline normalizes each event straight
// into the batch (it is the pipeline's event_slot_source), into a slot that held an event of
// the same type in an earlier use of the batch: the name parts and keys are already there, so
// a line's event crosses threads without a copy and, once warm, without a heap allocation.

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "telecap/capture/event.hpp"
#include "telecap/capture/handler.hpp"
#include "telecap/capture/normalizer.hpp"

namespace telecap {

class event_batch final : public event_slot_source {
public:
    // `sized`: keep bytes() (a queue bounded in memory needs it; handlers run at once do not).
    explicit event_batch(bool sized = true) : sized_(sized) {}

    // The next free slot for an event of catalog type `type` (npos: unknown); it joins the
    // batch only with commit(). Asking again before commit gives the same slot.
    event& slot(std::size_t type) override;
    // The slot last given by slot() joins the batch, after the others.
    void commit();
    // A copy of `ev` joins the batch (events made outside a pipeline: lifecycle, tests).
    void push(const event& ev);
    void push(event&& ev);

    // A pass-through line after the events in the batch so far (only while a tap asks for
    // them). Not an event: size() and bytes() leave it out, so the queue's bounds (and its
    // drops and back-pressure) are the events' alone; line_bytes() counts it (the intake bounds
    // a batch's lines with it).
    // `overhead`: what the line costs besides its text, counted in line_bytes().
    void push_line(passthrough_line&& line, std::size_t overhead = 0) {
        line_bytes_ += line.text.size() + overhead;
        lines_.emplace_back(order_.size(), std::move(line));
    }
    std::size_t line_bytes() const noexcept { return line_bytes_; }
    // The lines, each after the number of events given with it.
    const std::vector<std::pair<std::size_t, passthrough_line>>& lines() const noexcept {
        return lines_;
    }

    std::size_t size() const noexcept { return order_.size(); }
    bool empty() const noexcept { return order_.empty() && lines_.empty(); }
    // Estimated memory of the events in the batch, for the dispatcher's byte bound (0 unless
    // sized).
    std::size_t bytes() const noexcept { return bytes_; }
    const event& operator[](std::size_t i) const noexcept {
        const auto [pool, index] = order_[i];
        return pools_[pool][index];
    }

    // Empties the batch; the slots keep their contents for the next events of their type.
    void clear() noexcept;

private:
    event& take(std::size_t pool);

    // pools_[0]: pushed events; [1]: unknown types; [t + 2]: catalog type t.
    std::vector<std::vector<event>> pools_;
    std::vector<std::uint32_t> used_;                             // per pool: slots in the batch
    std::vector<std::pair<std::uint32_t, std::uint32_t>> order_;  // (pool, index), in order
    std::vector<std::pair<std::size_t, passthrough_line>> lines_;
    std::size_t line_bytes_ = 0;
    std::size_t last_pool_ = 0;
    std::size_t largest_ = 0;  // the most events the batch ever held
    std::size_t bytes_ = 0;
    bool sized_ = true;
};

}  // namespace telecap
