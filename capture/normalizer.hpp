#pragma once
// Normalization of a decoded event, exactly as the gRPC path's host side does it
// (Naming.from_parts, cast_measurements, SafeMetadata.enrich). Pure: no I/O, no clock.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "telecap/capture/catalog.hpp"
#include "telecap/capture/event.hpp"
#include "telecap/capture/key_shapes.hpp"
#include "telecap/capture/parser.hpp"

namespace telecap {

// The host's context for one worker, merged over the worker's metadata (the host wins).
struct worker_context {
    std::string node;                      // node: --node, default the hostname
    std::optional<std::string> worker_id;  // worker_id: absent when unknown (parse mode)
    std::string pool_name = "default";     // pool_name
    std::optional<std::int64_t> pid;       // python_pid: the worker's OS pid, when known
};

// Where the normalizer writes an event of a given type: storage kept from line to line, so
// that a line finds the name parts and keys of an earlier event of its type already in place,
// and normalizing it mostly compares where it would otherwise copy. `type` is the catalog's
// index of the event (npos: an event the catalog does not know).
// A slot is written by normalize() alone (never edited elsewhere; one moved from is empty), so
// one whose name_id is the event's catalog entry already holds that entry's name parts, and
// only measurement keys that entry's catalog knows: normalize() trusts both (no comparison of
// the parts, no allowlist lookup for a key found in its place).
class event_slot_source {
public:
    virtual event& slot(std::size_t type) = 0;

protected:
    ~event_slot_source() = default;
};

// One event per type of the catalog (and one for unknown events), reused line after line.
class event_slots final : public event_slot_source {
public:
    explicit event_slots(const catalog& cat) : events_(cat.event_count() + 1) {}
    event& slot(std::size_t type) noexcept override {
        return events_[type < events_.size() - 1 ? type : events_.size() - 1];
    }

private:
    std::vector<event> events_;
};

class normalizer {
public:
    // `shapes`: where the events' keys_id come from (the process's table but in tests).
    explicit normalizer(const catalog& cat, key_shapes& shapes = key_shapes::process())
        : catalog_(cat), shapes_(shapes) {}

    // Fills `out` from `raw`; `receive_time_ns` stands in for a missing timestamp_ns.
    // Returns false with `err` set when the gRPC path would drop the event.
    bool normalize(const raw_event& raw, const worker_context& ctx, std::int64_t receive_time_ns,
                   event& out, parse_error& err);
    // The same, into the slot of the event's type; null when the event is dropped.
    event* normalize(const raw_event& raw, const worker_context& ctx, std::int64_t receive_time_ns,
                     event_slot_source& slots, parse_error& err);

    // The wire name of the event last given to normalize() (valid while its raw_event is).
    std::string_view last_wire_name() const noexcept { return wire_; }

private:
    // The wire name of `raw` (joined from its parts if need be) and its catalog entry, if any.
    const catalog::wire_event* resolve(const raw_event& raw, std::string_view& wire);
    // `slot`: `out` is a slot of an event_slot_source (see there).
    bool fill(const raw_event& raw, const catalog::wire_event* we, std::string_view wire,
              const worker_context& ctx, std::int64_t receive_time_ns, event& out, parse_error& err,
              bool slot);

    const catalog& catalog_;
    key_shapes& shapes_;
    std::string name_;  // scratch: the dotted name of an array-form event
    std::string_view wire_;
};

// Python's str() of a JSON scalar as the gRPC encoder would apply it to metadata:
// true -> "True", null -> "None", NaN -> "nan", Infinity -> "inf"; numbers keep their text.
std::string metadata_string(const raw_value& v);

}  // namespace telecap
