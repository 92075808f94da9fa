#pragma once
// Ids of key sequences (event::keys_id): an event's measurement keys and metadata keys, in
// order. Equal sequences get the same id wherever their events were normalized (each worker's
// pipeline and each batch slot has events of its own), so that a cache keyed by the id (the
// JSON writer's key fragments) holds across them. The normalizer asks only when an event's
// keys change, not per event. Bounded: once a table holds its most sequences, new ones get 0
// (no id: the caches are skipped, nothing else changes), so workers that invent keys line
// after line cannot grow it.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "telecap/capture/event.hpp"

namespace telecap {

class key_shapes {
public:
    explicit key_shapes(std::size_t max_shapes) : max_(max_shapes) {}

    // The id of `ev`'s key sequence (non-zero), or 0 when the table is full. Thread-safe.
    std::uint64_t id(const event& ev);
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return ids_.size();
    }

    // The process's table, for the normalizers: 4,096 sequences.
    static key_shapes& process();

private:
    const std::size_t max_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::uint64_t> ids_;
};

}  // namespace telecap
