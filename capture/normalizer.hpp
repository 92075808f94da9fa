#pragma once
// Normalization of a decoded event, exactly as the gRPC path's host side does it
// (Naming.from_parts, cast_measurements, SafeMetadata.enrich). Pure: no I/O, no clock.

#include <cstdint>
#include <optional>
#include <string>

#include "capture/catalog.hpp"
#include "capture/event.hpp"
#include "capture/parser.hpp"

namespace telecap {

// The host's context for one worker, merged over the worker's metadata (the host wins).
struct worker_context {
    std::string node;                      // node: --node, default the hostname
    std::optional<std::string> worker_id;  // worker_id: absent when unknown (parse mode)
    std::string pool_name = "default";     // pool_name
    std::optional<std::int64_t> pid;       // python_pid: the worker's OS pid, when known
};

class normalizer {
public:
    explicit normalizer(const catalog& cat) : catalog_(cat) {}

    // Fills `out` from `raw`; `receive_time_ns` stands in for a missing timestamp_ns.
    // Returns false with `err` set when the gRPC path would drop the event.
    bool normalize(const raw_event& raw, const worker_context& ctx, std::int64_t receive_time_ns,
                   event& out, parse_error& err);

private:
    const catalog& catalog_;
    std::string name_;  // scratch: the dotted name of an array-form event
};

// Python's str() of a JSON scalar as the gRPC encoder would apply it to metadata:
// true -> "True", null -> "None", NaN -> "nan", Infinity -> "inf"; numbers keep their text.
std::string metadata_string(const raw_value& v);

}  // namespace telecap
