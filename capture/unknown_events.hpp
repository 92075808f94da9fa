#pragma once
// Says once, at warning level, each event name the catalog does not know (so a custom event a
// worker emits is not rejected without a word), with what to do about it. Bounded: after
// `max_names` distinct names it says that it stops naming them, and remembers no more.
// Shared by the pipelines of many streams (pipeline_options::unknown_events); any thread.

#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace telecap {

class unknown_event_notes {
public:
    static constexpr std::size_t default_max_names = 64;
    explicit unknown_event_notes(std::size_t max_names = default_max_names)
        : max_names_(max_names) {}

    // An event named `wire_name` was rejected as unknown_event: warns the first time. `line`:
    // it came as a telemetry line (which goes on as pass-through), not from a gRPC worker.
    void rejected(std::string_view wire_name, bool line = true);
    // The names warned about so far (at most max_names).
    std::size_t names() const;

private:
    const std::size_t max_names_;
    mutable std::mutex mu_;
    std::set<std::string, std::less<>> seen_;
    bool full_ = false;  // said that no more names are warned about
};

}  // namespace telecap
