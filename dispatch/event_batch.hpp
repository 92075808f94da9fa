#pragma once
// A batch of events on its way from the loop thread to the dispatch thread. Batches are
// recycled (dispatcher::take_batch): an event is copied into a slot that held an earlier one,
// so its strings and vectors are reused, and strings that a shorter event does not need are
// kept aside for a longer one. In steady state a line's event crosses threads without a heap
// allocation: a copy of its bytes, not of its structure.

#include <cstddef>
#include <string>
#include <vector>

#include "telecap/capture/event.hpp"

namespace telecap {

class event_batch {
public:
    // Copies `ev` into the next slot. Returns the slot.
    event& push(const event& ev);
    // Moves `ev` in (an event made for this batch only: lifecycle events, tests).
    event& push_moved(event&& ev);

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    // Estimated memory of the events pushed since clear() (event::approximate_size's measure
    // of their bytes), for the dispatcher's byte bound.
    std::size_t bytes() const noexcept { return bytes_; }
    event& operator[](std::size_t i) noexcept { return slots_[i]; }
    const event& operator[](std::size_t i) const noexcept { return slots_[i]; }
    const event* begin() const noexcept { return slots_.data(); }
    const event* end() const noexcept { return slots_.data() + size_; }

    // Empties the batch; the slots keep their storage for the next events.
    void clear() noexcept {
        size_ = 0;
        bytes_ = 0;
    }

private:
    event& next_slot();
    void assign(std::string& dst, const std::string& src);
    std::string spare();
    void keep(std::string& s);
    template <typename Pairs>
    void assign_pairs(Pairs& dst, const Pairs& src);

    std::vector<event> slots_;  // [0, size_) in use; the rest keep storage
    std::vector<std::string> spare_;  // strings a shorter event left, for a longer one
    std::size_t size_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace telecap
