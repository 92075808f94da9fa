#pragma once
// Normalization of a decoded event, exactly as the gRPC path's host side does it
// (Naming.from_parts, cast_measurements, SafeMetadata.enrich). Pure: no I/O, no clock.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "telecap/capture/catalog.hpp"
#include "telecap/capture/event.hpp"
#include "telecap/capture/parser.hpp"

namespace telecap {

// The host's context for one worker, merged over the worker's metadata (the host wins).
struct worker_context {
    std::string node;                      // node: --node, default the hostname
    std::optional<std::string> worker_id;  // worker_id: absent when unknown (parse mode)
    std::string pool_name = "default";     // pool_name
    std::optional<std::int64_t> pid;       // python_pid: the worker's OS pid, when known
};

// Events kept from line to line, one per event type of the catalog (and one for unknown
// events): a line finds the name parts and keys of the last event of its type already in
// place, so normalizing it mostly compares where it would otherwise copy.
class event_slots {
public:
    explicit event_slots(const catalog& cat) : events_(cat.event_count() + 1) {}
    // The slot for the catalog's event `type`, or for unknown events when type is npos.
    event& slot(std::size_t type) noexcept {
        return events_[type < events_.size() - 1 ? type : events_.size() - 1];
    }

private:
    std::vector<event> events_;
};

class normalizer {
public:
    explicit normalizer(const catalog& cat) : catalog_(cat) {}

    // Fills `out` from `raw`; `receive_time_ns` stands in for a missing timestamp_ns.
    // Returns false with `err` set when the gRPC path would drop the event.
    bool normalize(const raw_event& raw, const worker_context& ctx, std::int64_t receive_time_ns,
                   event& out, parse_error& err);
    // The same, into the slot of the event's type; null when the event is dropped. The slots
    // must have been made for this normalizer's catalog.
    event* normalize(const raw_event& raw, const worker_context& ctx,
                     std::int64_t receive_time_ns, event_slots& slots, parse_error& err);

private:
    // The wire name of `raw` (joined from its parts if need be) and its catalog entry, if any.
    const catalog::wire_event* resolve(const raw_event& raw, std::string_view& wire);
    bool fill(const raw_event& raw, const catalog::wire_event* we, std::string_view wire,
              const worker_context& ctx, std::int64_t receive_time_ns, event& out,
              parse_error& err);

    const catalog& catalog_;
    std::string name_;  // scratch: the dotted name of an array-form event
};

// Python's str() of a JSON scalar as the gRPC encoder would apply it to metadata:
// true -> "True", null -> "None", NaN -> "nan", Infinity -> "inf"; numbers keep their text.
std::string metadata_string(const raw_value& v);

}  // namespace telecap
