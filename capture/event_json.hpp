#pragma once
// The output contract: one event as one line of JSON (valid UTF-8, stable key order):
// {"event":[...],"measurements":{...},"metadata":{...},"timestamp_ns":N,"correlation_id":S|null}
// Non-finite doubles are written as the strings "NaN", "Infinity", "-Infinity" (protobuf's
// JSON mapping); finite doubles keep a "." or an exponent so they read back as doubles.

#include <array>
#include <cstddef>
#include <cstdint>
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

// One rendering of an event for every output that writes it as a JSON line (the jsonl outputs,
// the unix socket and http outputs, taps): during one bus dispatch the first of them renders
// the line and publishes it here, the others copy it (a tap beside a jsonl output costs a copy,
// not a second rendering). Kept per thread (the bus's); an entry is keyed by the event's
// address and lives only inside a dispatch: handler_bus::dispatch opens a scope that forgets it
// on entry and on exit, and nothing is published or found outside one, so an event changed in
// place or a handler called directly never sees a line of another event. A publisher keeps
// the bytes unchanged until its next handle() (it hands its batch over before appending).
namespace shared_event_json {
// The line published for `ev` in this dispatch (with its newline), or empty.
std::string_view find(const event& ev) noexcept;
void publish(const event& ev, std::string_view line) noexcept;
class dispatch_scope {
public:
    dispatch_scope() noexcept;
    ~dispatch_scope();
    dispatch_scope(const dispatch_scope&) = delete;
    dispatch_scope& operator=(const dispatch_scope&) = delete;
};
}  // namespace shared_event_json

// The event's JSON line (with its newline): the one published in this dispatch, or rendered
// into `scratch` (replacing its content) and published.
std::string_view shared_event_json_line(const event& ev, std::string& scratch);

// Writes a stream of events as JSON lines, byte for byte as append_event_json, into a buffer
// of its own that is reused: no allocation per event once it has grown to a batch. The
// `{"event":[...],"measurements":{` head of each name is rendered once and kept per name_id
// (checked against the event's name on each use, so a reused id never yields a stale name,
// unless trust_name_ids() says no id is ever reused); with trust_keys_ids(), so are the key
// fragments of the events' keys_id, copied instead of each key escaped again.
class event_json_writer {
public:
    // Returns the line written (valid until the next change to this writer).
    std::string_view append(const event& ev);
    // Its owner promises that no name_id is ever reused for another name (every catalog the
    // events come from outlives the writer): the cached head is used without comparing names,
    // about 200 instructions an event.
    void trust_name_ids() noexcept { trust_name_ids_ = true; }
    // Its owner promises that every event's keys_id names its keys (the events come from
    // telecap's normalizers and nobody edits their keys): the keys of an event are then copied
    // from the fragments kept for its keys_id. Without it every key is written.
    void trust_keys_ids() noexcept { trust_keys_ids_ = true; }
    // The line published for `ev` in this dispatch copied (shared_event_json), else append()
    // and publish it.
    std::string_view append_shared(const event& ev);

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
        // The key fragments (comma, quoted key, colon) of the events whose keys_id is
        // `keys_id` (0: none kept): fragment i is key_text[key_at[i], key_at[i + 1]), then 32
        // bytes of padding. Kept from the second event in a row with that keys_id on, so
        // events of one name whose keys alternate cost no more than without.
        std::uint64_t keys_id = 0;
        std::uint64_t keys_seen = 0;  // the keys_id of the last event written without them
        std::size_t measurements = 0, metadata = 0;
        std::vector<std::size_t> key_at;
        std::string key_text;
    };
    name_head& head_slot(const event& ev);
    // Keeps the key fragments of the body just written, at marks_, for `ev`'s keys_id.
    void keep_keys(name_head& head, const event& ev);

    std::string buf_;  // buf_[0, used_) is written; the rest is scratch room
    std::size_t used_ = 0;
    bool trust_name_ids_ = false;
    bool trust_keys_ids_ = false;
    // By name_id; cleared when half full (names are few), keeping the heads' storage.
    flat_map<const void*, name_head> heads_{64};
    std::vector<std::size_t> marks_;  // where the keys of the body being kept went (keep_keys)
};

}  // namespace telecap
