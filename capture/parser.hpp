#pragma once
// Decoding of one telemetry payload (the line after its prefix) into a flat raw_event.
// RapidJSON, in situ on a private copy, with the iterative parser (deep nesting cannot
// overflow the stack) and a nesting limit; the common forms take a faster reader first,
// which hands anything else back to RapidJSON. Accepts what Python's json.dumps writes,
// including bare NaN, Infinity and -Infinity. Malformed input is data: parse() returns
// false and fills a parse_error; it never throws.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/stats.hpp"

namespace telecap {

enum class raw_kind : std::uint8_t {
    string,  // text: the decoded string (UTF-8, may hold NUL)
    number,  // text: the number as written ("1", "1.5e+16", "NaN", "-Infinity")
    true_,
    false_,
    null,
    nested,  // text: compact JSON of an array or object (metadata only)
    invalid  // an array or object where a measurement was expected
};

struct raw_value {
    raw_kind kind = raw_kind::null;
    std::string_view text;
};

struct raw_member {
    std::string_view key;
    raw_value value;
};

// Views point into the parser's buffers: valid until its next parse().
struct raw_event {
    bool has_event = false;
    bool event_is_array = false;
    std::string_view event;               // the dotted name (event_is_array == false)
    std::vector<std::string_view> parts;  // the parts (event_is_array == true)
    std::vector<raw_member> measurements;
    std::vector<raw_member> metadata;
    bool has_timestamp = false;
    std::string_view timestamp;  // number text
    bool has_correlation_id = false;
    std::string_view correlation_id;
    std::string_view control_seq;  // number text, or empty (docs/control.md)

    void clear() noexcept;
};

struct parse_error {
    reject_reason reason = reject_reason::invalid_json;
    std::size_t offset = 0;  // byte offset in the payload, where known
    std::string detail;      // lower-case, human-readable
};

class event_parser {
public:
    static constexpr std::size_t default_max_depth = 64;
    // fast_path: lines in the common subset of JSON (no escapes, no exponents, no NaN or
    // Infinity) skip RapidJSON's reader, with the same results; false parses every line with
    // RapidJSON (tests compare the two).
    explicit event_parser(std::size_t max_depth = default_max_depth, bool fast_path = true);
    ~event_parser();
    event_parser(event_parser&&) noexcept;
    event_parser& operator=(event_parser&&) noexcept;

    bool parse(std::string_view payload, raw_event& out, parse_error& err);
    // The last parse() was done by the fast reader alone (for tests: the common forms must
    // not fall back to RapidJSON, which gives the same result, only slower).
    bool last_was_fast() const noexcept { return last_fast_; }

private:
    struct reader;  // RapidJSON's reader and buffers, kept so they are allocated once, not per line
    std::unique_ptr<reader> reader_;
    std::size_t max_depth_;
    bool fast_path_;
    bool last_fast_ = false;
};

}  // namespace telecap
