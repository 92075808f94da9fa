#pragma once
// The normalized event: what a gRPC TelemetryStream event becomes after the host's
// Naming and SafeMetadata steps. Value type; owns all of its data.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace telecap {

// TelemetryValue: one of int64, double or string (bools arrive as 0/1).
using measurement_value = std::variant<std::int64_t, double, std::string>;

// Worker metadata values are always strings (the encoder's str()); the host's
// enrichment adds integers (python_pid, timestamp_ns) and null (correlation_id).
using metadata_value = std::variant<std::string, std::int64_t, std::nullptr_t>;

struct event {
    std::vector<std::string> name;  // event parts, e.g. {"snakepit","python","call","stop"}
    std::vector<std::pair<std::string, measurement_value>> measurements;  // input order
    std::vector<std::pair<std::string, metadata_value>> metadata;         // input order, then host
    std::int64_t timestamp_ns = 0;
    std::optional<std::string> correlation_id;  // "" on the wire becomes nullopt
    // Who named the event, for caches keyed by name: the normalizer sets the catalog entry of
    // its wire name (two events with the same non-null name_id have the same name); null for
    // events made elsewhere. Not part of the event's value (never written out).
    const void* name_id = nullptr;
    // Names the event's keys, for caches keyed by them (the JSON writer's key fragments, used
    // only where its owner trusts the ids): two events with the same keys_id, other than 0 and
    // key_shapes::none, have the same measurement keys and the same metadata keys, in the same
    // order (capture/key_shapes.hpp gives the ids, one per key sequence in the process). The
    // normalizer keeps it while it leaves the keys as they are and asks for the id of the new
    // ones when it changes them; 0 for events made elsewhere. A copy keeps it with the keys;
    // whoever changes an event's keys otherwise sets it to 0. Not part of the event's value
    // (never written out).
    std::uint64_t keys_id = 0;
    // The controls the worker's emitter applied before sending it (the "control_seq" of the
    // line, docs/control.md); 0: none. Not part of the event's value (never written out).
    std::uint64_t control_seq = 0;

    // Dotted form of name ("snakepit.python.call.stop").
    std::string dotted_name() const;
    const measurement_value* measurement(std::string_view key) const noexcept;
    const metadata_value* meta(std::string_view key) const noexcept;
    // True when `prefix` is a leading run of name (an empty prefix matches everything).
    bool matches(const std::vector<std::string>& prefix) const noexcept;
    // Heap and inline bytes this event holds, roughly (for memory-bounded queues).
    std::size_t approximate_size() const noexcept;
};

}  // namespace telecap
