#pragma once
// --rejects: each rejected telemetry line as one JSON object per line, naming its source
// (the input file, or the worker id under `telecap run`).

#include <functional>
#include <memory>
#include <string>

#include "telecap/capture/sinks.hpp"
#include "telecap/io/stream_writer.hpp"

namespace telecap {

class rejects_writer {
public:
    explicit rejects_writer(std::shared_ptr<stream_writer> out) : out_(std::move(out)) {}

    // The record of an oversize line keeps at most this much of its head: enough to tell what
    // the line was, and its memory stays small whatever --max-line is.
    static constexpr std::size_t max_head = std::size_t{64} << 10;

    // Appends the record of `r` from `source`.
    void write(const reject_info& r, std::string_view source);
    stream_writer* writer() const noexcept { return out_.get(); }
    // The producers' input can wait (telecap parse): each record first waits for room
    // (stream_writer::wait_for_room) instead of being dropped when the stream is full.
    void wait_for_room(std::function<bool()> stop = {}) {
        wait_ = true;
        stop_ = std::move(stop);
    }

    // A reject_sink for one source (one input file, one worker's stream).
    class source final : public reject_sink {
    public:
        source(rejects_writer& w, std::string name) : w_(w), name_(std::move(name)) {}
        void on_reject(const reject_info& r) override { w_.write(r, name_); }
        void rename(std::string name) { name_ = std::move(name); }

    private:
        rejects_writer& w_;
        std::string name_;
    };

private:
    std::shared_ptr<stream_writer> out_;
    std::string line_;
    bool wait_ = false;
    std::function<bool()> stop_;
};

}  // namespace telecap
