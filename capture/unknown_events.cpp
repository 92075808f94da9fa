#include "capture/unknown_events.hpp"

#include "core/log.hpp"

namespace telecap {

namespace {
// A worker's name in a message: bounded, and without control characters (a log line each).
std::string printable(std::string_view name) {
    std::string out;
    for (const char c : name.substr(0, 200))
        out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    if (name.size() > 200) out += "...";
    return out;
}
}  // namespace

void unknown_event_notes::rejected(std::string_view wire_name, bool line) {
    std::lock_guard lock(mu_);
    if (seen_.find(wire_name) != seen_.end()) return;
    if (seen_.size() >= max_names_) {
        if (!full_)
            logger()->warn(
                "more than {} distinct unknown event names: the others are not named (each is "
                "counted as unknown_event in --stats)",
                max_names_);
        full_ = true;
        return;
    }
    seen_.emplace(wire_name);
    logger()->warn(
        "unknown event \"{}\" rejected (unknown_event, counted; {}): to keep it, add it to a "
        "catalog (--catalog FILE; `telecap catalog` prints the active one; docs/catalog.md) or "
        "use --unknown-events keep",
        printable(wire_name),
        line ? "the line goes on as pass-through" : "from a gRPC worker, --rejects records it");
}

std::size_t unknown_event_notes::names() const {
    std::lock_guard lock(mu_);
    return seen_.size();
}

}  // namespace telecap
