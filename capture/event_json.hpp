#pragma once
// The output contract: one event as one line of JSON (valid UTF-8, stable key order):
// {"event":[...],"measurements":{...},"metadata":{...},"timestamp_ns":N,"correlation_id":S|null}
// Non-finite doubles are written as the strings "NaN", "Infinity", "-Infinity" (protobuf's
// JSON mapping); finite doubles keep a "." or an exponent so they read back as doubles.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/event.hpp"
#include "telecap/core/flat_map.hpp"

namespace telecap {

// Appends the event and a "\n" to `out`.
void append_event_json(std::string& out, const event& ev);

// Appends `s` as a JSON string literal. Bytes that are not valid UTF-8 become U+FFFD, so the
// result is always valid UTF-8 (used for rejected lines, which may be anything).
void append_json_string(std::string& out, std::string_view s);
// ["a","b",...]: each escaped as append_json_string does.
void append_json_string_array(std::string& out, const std::vector<std::string>& list);

void append_json_double(std::string& out, double d);

// Writes a stream of events as JSON lines, byte for byte as append_event_json, into a buffer
// of its own that is reused: no allocation per event once it has grown to a batch. The
// `{"event":[...],"measurements":{` head of each name is rendered once and kept per name_id
// (checked against the event's name on each use, so a reused id never yields a stale name).
class event_json_writer {
public:
    void append(const event& ev);

    std::size_t size() const noexcept { return used_; }
    bool empty() const noexcept { return used_ == 0; }
    std::string_view view() const noexcept { return {buf_.data(), used_}; }
    // Moves what was written into `out` (its old content is discarded; no copy) and starts
    // over, keeping `out`'s old capacity for the next batch.
    void take(std::string& out);
    void clear() noexcept { used_ = 0; }

private:
    struct name_head {
        std::vector<std::string> name;
        std::string text;      // the head, then 16 bytes of padding
        std::size_t size = 0;  // of the head
    };
    name_head& head_slot(const event& ev);

    std::string buf_;  // buf_[0, used_) is written; the rest is scratch room
    std::size_t used_ = 0;
    // By name_id; cleared when half full (names are few), keeping the heads' storage.
    flat_map<const void*, name_head> heads_{64};
};

}  // namespace telecap
