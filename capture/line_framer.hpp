#pragma once
// Bytes to lines, for one stream. Chunks may be of any size and split lines anywhere.
// Memory stays bounded: at most max_line + 2 bytes are buffered, whatever the input.

#include <cstddef>
#include <string>
#include <string_view>

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
    explicit line_framer(std::size_t max_line) : max_line_(max_line) {}

    void feed(std::string_view chunk, line_sink& sink);
    // End of input: a last line without a newline is delivered like any other.
    void finish(line_sink& sink);

    std::size_t max_line() const noexcept { return max_line_; }
    std::size_t buffered() const noexcept { return buf_.size(); }
    bool in_long_line() const noexcept { return long_; }

private:
    void emit_line(std::string_view line_with_nl, line_sink& sink);

    std::size_t max_line_;
    std::string buf_;    // a partial line (never more than max_line + 2 bytes)
    bool long_ = false;  // inside a line longer than max_line
};

}  // namespace telecap
