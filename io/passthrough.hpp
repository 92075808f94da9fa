#pragma once
// Pass-through: every byte that is not telemetry, written unchanged to one stream. Several
// sources (the workers' stderr pipes) share a stream through a passthrough_mux, which keeps
// their lines whole: a line arrives as one piece and is appended at once; a line longer than
// max_line arrives in pieces, and while one source streams such a line, the other sources'
// lines wait, each source in its own holding buffer. No line is ever written inside another.
//
// The wait is bounded (passthrough_hold: bytes held in all, or time since the first line began
// to wait, including lines other producers of the stream hold there): past it the long line is
// split. A newline ends it where it is, the held lines go out whole, and the rest of the long
// line goes on later as a new line that begins with the source's label and `continued_marker`
// (counted in long_lines_split()). A last line without a newline (a worker that exits or
// closes its pipe mid-line) gets one, so the next line on the stream does not glue to it
// (counted in partial_lines()). Both are the only alterations of pass-through.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/sinks.hpp"
#include "telecap/capture/stats.hpp"
#include "telecap/io/stream_writer.hpp"

namespace telecap {

// How long, and how much, lines wait for another source's long line.
struct passthrough_hold {
    std::size_t bytes = std::size_t{4} << 20;
    std::chrono::milliseconds time{1000};
};

class passthrough_mux {
public:
    // Begins (after the source's label) the rest of a long line that was split.
    static constexpr std::string_view continued_marker = "[telecap: continued] ";

    // out may be null: pass-through is off (`--passthrough none`).
    explicit passthrough_mux(std::shared_ptr<stream_writer> out, passthrough_hold hold = {})
        : out_(std::move(out)), hold_(hold) {}

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
        friend class passthrough_mux;
        passthrough_mux& mux_;
        std::string label_;
        std::string held_;              // its lines waiting for another source's long line
        std::uint64_t held_lines_ = 0;  // whole lines in held_
        bool held_open_ = false;        // held_ ends with the head of a long line
        bool continued_ = false;        // its long line was split: the rest needs the marker
    };

    std::unique_ptr<source> make_source(std::string label) {
        return std::make_unique<source>(*this, std::move(label));
    }
    stream_writer* writer() const noexcept { return out_.get(); }

    // The producers' input can wait (telecap parse): each write first waits for room in the
    // stream (stream_writer::wait_for_room), so nothing is dropped for lack of room and a line
    // of any length passes in bounded memory. `stop` (optional) ends a wait early.
    void wait_for_room(std::function<bool()> stop = {}) {
        wait_ = true;
        stop_ = std::move(stop);
    }
    // How the mux asks to be called back (tick()) when a held line's time bound passes, for
    // a long line whose source goes quiet. Without it the bound is checked on each write only.
    void set_alarm(std::function<void(std::chrono::steady_clock::time_point)> alarm) {
        alarm_ = std::move(alarm);
    }
    // Splits the open long line if the lines waiting for it are past their bound.
    void tick();

    // Long lines split so that the lines waiting for them could go out. Any thread.
    std::uint64_t long_lines_split() const noexcept { return splits_; }
    // Last lines without a newline that got one. Any thread.
    std::uint64_t partial_lines() const noexcept { return partials_; }

private:
    using clock = std::chrono::steady_clock;
    void write(source* s, std::string_view bytes, bool starts, bool ends);
    void release(source* s);
    void hold(source* s, std::string_view bytes, bool starts, bool ends);
    // Writes a piece to the stream as the owner of the stream's open line (or a whole line).
    void put(source* s, std::string_view bytes, bool starts, bool ends);
    // Ends the open long line here (a newline), marks its source as continued, counts it.
    void split();
    // The held lines go out, source by source, until one of them holds a long line's head:
    // that source owns the stream then, and the others wait on.
    void release_holds();
    bool others_waiting() const;
    void check_bounds();
    void wait_room();

    std::shared_ptr<stream_writer> out_;
    const passthrough_hold hold_;
    source* owner_ = nullptr;       // the source streaming a long line
    std::vector<source*> waiting_;  // sources with held lines, in the order they began to wait
    std::size_t held_bytes_ = 0;
    clock::time_point waiting_since_{};  // since lines began to wait for the owner
    bool timed_ = false;                 // waiting_since_ is set
    std::string scratch_;
    std::string continued_;  // the marker and the rest of a split line
    std::string ended_;      // a last line and the newline it lacked
    bool wait_ = false;
    std::function<bool()> stop_;
    std::function<void(clock::time_point)> alarm_;
    relaxed_counter splits_;
    relaxed_counter partials_;
};

}  // namespace telecap
