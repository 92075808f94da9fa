#pragma once
// An open-addressing hash table for the lookups on the per-line and per-event paths: a
// power-of-two array of slots, linear probing, at most half full. The caller computes the
// hash (each user has a cheap one that suits its keys) and decides equality on a match of the
// hash, so a lookup can compare against data kept outside the table (a key's parts, a series'
// label values) without building a key. No allocation but when the table grows; clear()
// keeps the slots and the values in them, so a cache that is cleared when full and refilled
// reuses the values' storage.
//
// Contract:
//  - find(h, eq): the value of the first slot whose hash is h and for which eq(key, value)
//    is true, else null. Slots with another hash are skipped without calling eq.
//  - insert(h, key): a slot for a key the caller knows is absent (no check); grows first
//    when the table would pass half full. The returned value holds what the slot held last
//    (V{} at first): assign it. References stay valid until the next insert that grows.
//  - No erase: users that drop entries clear() and insert the rest again.
// K and V must be default-constructible and movable. One thread at a time.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace telecap {

template <typename K, typename V>
class flat_map {
public:
    // `capacity`: slots to start with, rounded up to a power of two (at least 2).
    explicit flat_map(std::size_t capacity = 16) { slots_.resize(round_up(capacity)); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    // Slots; size() may reach capacity() / 2 before an insert grows the table.
    std::size_t capacity() const noexcept { return slots_.size(); }
    // Whether inserting one more key would grow the table (a bounded cache clears instead).
    bool full() const noexcept { return (size_ + 1) * 2 > slots_.size(); }

    template <typename Eq>
    [[gnu::always_inline]] V* find(std::uint64_t h, Eq&& eq) noexcept {
        const std::uint64_t t = tag(h);
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = static_cast<std::size_t>(h) & mask;; i = (i + 1) & mask) {
            slot& s = slots_[i];
            if (s.tag == t && eq(std::as_const(s.key), std::as_const(s.value))) return &s.value;
            if (s.tag == 0) return nullptr;
        }
    }
    template <typename Eq>
    [[gnu::always_inline]] const V* find(std::uint64_t h, Eq&& eq) const noexcept {
        return const_cast<flat_map*>(this)->find(h, std::forward<Eq>(eq));
    }

    V& insert(std::uint64_t h, K key) {
        if (full()) grow();
        slot& s = free_slot(h);
        s.tag = tag(h);
        s.key = std::move(key);
        ++size_;
        return s.value;
    }

    // Forgets every key; the capacity and the slots' keys and values stay (see above).
    void clear() noexcept {
        for (auto& s : slots_) s.tag = 0;
        size_ = 0;
    }

    // Calls f(key, value) for each entry, in slot order.
    template <typename F>
    void for_each(F&& f) {
        for (auto& s : slots_)
            if (s.tag) f(std::as_const(s.key), s.value);
    }

private:
    struct slot {
        std::uint64_t tag = 0;  // the hash with the top bit set; 0: empty
        K key{};
        V value{};
    };

    // The top bit marks a slot full, so every hash has a non-zero tag; the probe start uses
    // the low bits, which the tag keeps.
    static constexpr std::uint64_t tag(std::uint64_t h) noexcept {
        return h | (std::uint64_t{1} << 63);
    }
    static std::size_t round_up(std::size_t n) noexcept {
        std::size_t c = 2;
        while (c < n) c *= 2;
        return c;
    }

    slot& free_slot(std::uint64_t h) noexcept {
        const std::size_t mask = slots_.size() - 1;
        std::size_t i = static_cast<std::size_t>(h) & mask;
        while (slots_[i].tag != 0) i = (i + 1) & mask;
        return slots_[i];
    }

    void grow() {
        std::vector<slot> old(slots_.size() * 2);
        old.swap(slots_);
        for (auto& s : old)
            if (s.tag) {
                slot& d = free_slot(s.tag);
                d = std::move(s);
            }
    }

    std::vector<slot> slots_;
    std::size_t size_ = 0;
};

}  // namespace telecap
