#pragma once
// Pass-through: every byte that is not telemetry, written unchanged to one stream. Several
// sources (the workers' stderr pipes) share a stream through a passthrough_mux, which keeps
// their lines whole: a line arrives as one piece and is appended at once; a line longer than
// max_line arrives in pieces, and while one source streams such a line, the other sources'
// lines wait in a holding buffer (bounded: hold_limit bytes, or hold_time) until it ends.
// Past either bound they go out anyway, so one worker cannot hold the others back for ever.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "telecap/capture/pipeline.hpp"
#include "telecap/io/stream_writer.hpp"

namespace telecap {

class passthrough_mux {
public:
    static constexpr std::size_t hold_limit = std::size_t{4} << 20;
    static constexpr std::chrono::milliseconds hold_time{1000};

    // out may be null: pass-through is off (`--passthrough none`).
    explicit passthrough_mux(std::shared_ptr<stream_writer> out) : out_(std::move(out)) {}

    // One source's view: a passthrough_sink that prefixes each line with `label`.
    class source final : public passthrough_sink {
    public:
        source(passthrough_mux& mux, std::string label) : mux_(mux), label_(std::move(label)) {}
        ~source() override { mux_.release(this); }
        void write(std::string_view bytes, bool starts, bool ends) override {
            mux_.write(this, bytes, starts, ends);
        }
        const std::string& label() const noexcept { return label_; }

    private:
        passthrough_mux& mux_;
        std::string label_;
    };

    std::unique_ptr<source> make_source(std::string label) {
        return std::make_unique<source>(*this, std::move(label));
    }
    stream_writer* writer() const noexcept { return out_.get(); }
    // Lines that waited in the holding buffer past its bounds and went out inside a long line.
    std::uint64_t forced_releases() const noexcept { return forced_; }

private:
    void write(const source* s, std::string_view bytes, bool starts, bool ends);
    void release(const source* s);
    void release_hold();

    std::shared_ptr<stream_writer> out_;
    const source* owner_ = nullptr;  // the source streaming a long line
    std::chrono::steady_clock::time_point owner_since_{};
    std::string hold_;
    std::uint64_t hold_lines_ = 0;
    std::string scratch_;
    std::uint64_t forced_ = 0;
};

}  // namespace telecap
