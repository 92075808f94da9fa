#pragma once
// Where the capture pipeline (capture/pipeline.hpp) sends what it reads: events, pass-through
// bytes and rejected lines. Small on purpose: the writers in io/ implement these interfaces
// without including the pipeline.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "telecap/capture/event.hpp"
#include "telecap/capture/stats.hpp"

namespace telecap {

class event_slot_source;  // capture/normalizer.hpp

class event_sink {
public:
    virtual ~event_sink() = default;
    // `ev` is in the slot storage (slots(), or the pipeline's own), reused for a later event of
    // the same type; the sink may read it or move from it, and is done with it when on_event
    // returns.
    virtual void on_event(event& ev) = 0;
    // Where the pipeline should normalize events into: a sink that keeps events beyond
    // on_event (a batch on its way to another thread) gives its own storage, so that nothing
    // is copied; null: the pipeline's own slots. Asked once, at the pipeline's construction.
    virtual event_slot_source* slots() { return nullptr; }
};

class passthrough_sink {
public:
    virtual ~passthrough_sink() = default;
    // Bytes exactly as read. A whole line arrives as one call (starts and ends true); a line
    // longer than max_line arrives in pieces between a starts and an ends.
    virtual void write(std::string_view bytes, bool starts_line, bool ends_line) = 0;
};

struct reject_info {
    reject_reason reason;
    std::string_view detail;
    std::uint64_t line_no;  // 1-based, within this stream
    std::size_t offset;     // byte offset in the line, where known
    std::string_view text;  // the line (for an oversize one: its head only)
    bool truncated;         // text is only the head of the line
};

class reject_sink {
public:
    virtual ~reject_sink() = default;
    virtual void on_reject(const reject_info& r) = 0;
};

}  // namespace telecap
