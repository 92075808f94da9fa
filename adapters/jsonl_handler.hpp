#pragma once
// Output: events as JSON lines (the output contract, capture/event_json.hpp) to a file
// descriptor or a file. Buffered; flushed when the dispatcher runs dry and at exit.
// A write error throws, so the bus detaches the output and counts the failure.

#include <memory>
#include <string>

#include "capture/bus.hpp"
#include "core/fd_writer.hpp"

namespace telecap {

class jsonl_handler final : public handler {
public:
    explicit jsonl_handler(fd_writer out) : out_(std::move(out)) {}
    // Throws std::system_error when the file cannot be opened (startup).
    static std::shared_ptr<jsonl_handler> open(const std::string& path);

    void handle(const event& ev) override;
    void flush() override;

private:
    fd_writer out_;
};

// Output: discards events (for benchmarks and for runs that only want pass-through or stats).
class null_handler final : public handler {
public:
    void handle(const event&) override {}
};

}  // namespace telecap
