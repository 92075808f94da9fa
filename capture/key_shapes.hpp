#pragma once
// Ids of key sequences (event::keys_id): an event's measurement keys and metadata keys, in
// order. Equal sequences get the same id wherever their events were normalized (each worker's
// pipeline and each batch slot has events of its own), so that a cache keyed by the id (the
// JSON writer's key fragments) holds across them. The normalizer asks only when an event's
// keys change, not per event. Bounded: a sequence longer than max_sequence_bytes, or one new
// sequence past the table's count or bytes, gets `none` (no id: the caches are skipped, nothing
// else changes), so workers that invent keys line after line cannot grow it.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "telecap/capture/event.hpp"

namespace telecap {

class key_shapes {
public:
    // "Asked, and no id to give": kept by the normalizer while the keys stay the same, so a
    // full table costs nothing per event; to a reader it means what 0 means.
    static constexpr std::uint64_t none = ~std::uint64_t{0};
    // Sequences are written as each key's length (4 bytes) and bytes.
    static constexpr std::size_t max_sequence_bytes = 2048;

    key_shapes(std::size_t max_shapes, std::size_t max_bytes)
        : max_shapes_(max_shapes), max_bytes_(max_bytes) {}

    // The id of `ev`'s key sequence (neither 0 nor none), or none. Thread-safe.
    std::uint64_t id(const event& ev);
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return ids_.size();
    }
    // Calls of id() so far (the normalizer asks only when keys change).
    std::uint64_t asked() const {
        std::lock_guard lock(mu_);
        return asked_;
    }

    // The process's table, for the normalizers: 4,096 sequences, 1 MiB of keys. Never
    // destroyed (a library user's thread may still normalize during exit).
    static key_shapes& process();

private:
    const std::size_t max_shapes_, max_bytes_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::uint64_t> ids_;
    std::size_t bytes_ = 0;
    std::uint64_t asked_ = 0;
};

}  // namespace telecap
