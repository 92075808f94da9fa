#pragma once
// A normalized event as a Snakepit gRPC worker puts it on the wire (docs/grpc.md, "Server"):
// `event_parts` = the wire name split on ".", measurements as TelemetryValue (int64, double,
// string), every metadata value as a string, `timestamp_ns`, `correlation_id` "" when none.
// The host's own keys `correlation_id` and `timestamp_ns` are left out of the metadata: they
// are the message's fields. Pure; includes the generated protobuf header (not gRPC's).

#include <cstddef>
#include <string>
#include <string_view>

#include "bridge/snakepit_bridge.pb.h"
#include "capture/catalog.hpp"
#include "capture/event.hpp"
#include "capture/parser.hpp"
#include "capture/wire_names.hpp"

namespace telecap::bridge {

namespace pb = ::snakepit::bridge;

// Fills `out` (cleared first) from `ev`, with `event_parts` from `wire` split on ".". The
// reference for append_event_wire (bridge/event_wire.hpp), which writes the same message's
// bytes without building it: the server sends those, and the tests check the two agree.
void to_proto(const event& ev, std::string_view wire, pb::TelemetryEvent& out);

// The other way, for telecap dialling a gRPC worker (bridge/grpc_client.hpp): `in` as the
// stderr parser would have decoded the same emit, so that the capture normalizer applies the
// same rules to both (parity by construction). The parts go as an array-form name (joined with
// "." by the normalizer), ints and doubles as number text (a double always with a "." or an
// exponent, NaN and infinities as Python's json.dumps writes them), strings as strings, a
// value with none of the three as `invalid` (rejected: bad_measurement); metadata values are
// strings (the worker str()'d them). Map entries come in key order: protobuf maps keep no
// order. timestamp_ns 0 counts as missing (the receive time stands in, as for a line without
// one). The views point into `in` and `numbers`, which must outlive `out`'s use.
void to_raw(const pb::TelemetryEvent& in, raw_event& out, std::vector<char>& numbers);

// A metadata value as Python's str() would give it on the worker: a string as is, an integer
// in decimal, null as "None".
std::string metadata_string(const metadata_value& v);

}  // namespace telecap::bridge
