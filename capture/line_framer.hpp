#pragma once
// Bytes to lines, for one stream. Chunks may be of any size and split lines anywhere.
// Memory stays bounded: at most max_line + 2 bytes are buffered, whatever the input, and with
// a shared line_budget at most free_hold bytes plus what the budget grants.

#include <cstddef>
#include <string>
#include <string_view>

#include "telecap/capture/line_budget.hpp"

namespace telecap {

class line_sink {
public:
    virtual ~line_sink() = default;
    // A whole line of at most max_line bytes. `eol` is "\n", "\r\n", or "" for a last line
    // without a newline; `line` and `eol` are contiguous in memory. Views die on return.
    virtual void on_line(std::string_view line, std::string_view eol) = 0;
    // A line longer than max_line: `head` holds its first bytes (more than max_line of them),
    // then the rest arrives through on_long_data, then on_long_end with its "\n" (or "" at end
    // of input). Any "\r" before the "\n" arrives as data.
    virtual void on_long_begin(std::string_view head) = 0;
    virtual void on_long_data(std::string_view bytes) = 0;
    virtual void on_long_end(std::string_view eol) = 0;
};

class line_framer {
public:
    // A partial line up to this size is held without asking the budget.
    static constexpr std::size_t free_hold = 4096;

    // `budget` (optional, shared, outlives the framer) bounds what partial lines hold beyond
    // free_hold; a line it cannot hold arrives as a long line (on_long_begin with its first
    // free_hold bytes or more), and cut_by_budget() says why.
    explicit line_framer(std::size_t max_line, line_budget* budget = nullptr)
        : max_line_(max_line), budget_(budget) {}
    ~line_framer();
    line_framer(const line_framer&) = delete;
    line_framer& operator=(const line_framer&) = delete;

    void feed(std::string_view chunk, line_sink& sink);
    // End of input: a last line without a newline is delivered like any other.
    void finish(line_sink& sink);

    std::size_t max_line() const noexcept { return max_line_; }
    std::size_t buffered() const noexcept { return buf_.size(); }
    bool in_long_line() const noexcept { return long_; }
    // The current (or last) long line was cut by the budget, not by max_line.
    bool cut_by_budget() const noexcept { return cut_; }
    // The shared budget's limit, 0 without one.
    std::size_t budget_limit() const noexcept { return budget_ ? budget_->limit() : 0; }

private:
    void emit_line(std::string_view line_with_nl, line_sink& sink);
    // Room for a partial line of `size` bytes: false when the budget refuses it.
    bool reserve(std::size_t size);
    // Gives back a buffer grown past free_hold (and its share of the budget).
    void release();
    // Hands over the line so far as a long line: a head of up to `head_size` bytes, then
    // the rest of `part` (which ends the line when `nl`).
    void go_long(std::string_view part, bool nl, std::size_t head_size, line_sink& sink);

    std::size_t max_line_;
    line_budget* budget_;
    std::size_t charged_ = 0;  // taken from the budget: the capacity beyond free_hold
    std::string buf_;          // a partial line (never more than max_line + 2 bytes)
    bool long_ = false;        // inside a line longer than max_line
    bool cut_ = false;
};

}  // namespace telecap
