#pragma once
// The output contract: one event as one line of JSON (valid UTF-8, stable key order):
// {"event":[...],"measurements":{...},"metadata":{...},"timestamp_ns":N,"correlation_id":S|null}
// Non-finite doubles are written as the strings "NaN", "Infinity", "-Infinity" (protobuf's
// JSON mapping); finite doubles keep a "." or an exponent so they read back as doubles.

#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/event.hpp"

namespace telecap {

// Appends the event and a "\n" to `out`.
void append_event_json(std::string& out, const event& ev);

// Appends `s` as a JSON string literal. Bytes that are not valid UTF-8 become U+FFFD, so the
// result is always valid UTF-8 (used for rejected lines, which may be anything).
void append_json_string(std::string& out, std::string_view s);
// ["a","b",...]: each escaped as append_json_string does.
void append_json_string_array(std::string& out, const std::vector<std::string>& list);

void append_json_double(std::string& out, double d);

}  // namespace telecap
