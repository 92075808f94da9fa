#pragma once
// A normalized event written straight as the bytes of a serialized `TelemetryEvent`
// (bridge/snakepit_bridge.proto), with the same content as to_proto() (bridge/event_proto.hpp)
// gives: the same fields, map entries in the event's order (a key given twice: both entries,
// and a parser keeps the last, as to_proto's map does). No protobuf object, no allocation once
// `out` has grown: the `-o grpc` server sends these bytes as they are, where building and
// serializing a message cost it a dozen allocations per event (docs/grpc.md, "Performance").
// No protobuf or gRPC header here.

#include <string>
#include <string_view>

#include "capture/event.hpp"

namespace telecap::bridge {

// Appends the serialized TelemetryEvent of `ev`, with `event_parts` from `wire` split on ".".
void append_event_wire(std::string& out, const event& ev, std::string_view wire);

}  // namespace telecap::bridge
