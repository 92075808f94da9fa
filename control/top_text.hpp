#pragma once
// `telecap top`'s text (docs/top.md): a view (control/top_model.hpp) as lines at a given width
// and height. Pure, like the model: the terminal is agent/top_command.cpp's.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "control/top_model.hpp"

namespace telecap::control::top {

struct text_options {
    std::size_t width = 0;   // columns; 0: no limit (each column as wide as its cells)
    std::size_t height = 0;  // lines; 0: no limit (every row)
    std::string title;       // e.g. the socket's path
    bool keys = false;       // a line with the keys (interactive)
};

// The view as lines (no newlines), none longer than `width`: a summary, the workers' table and
// the outputs' table. Columns that do not fit are left out, the least useful first (gates,
// reject reason, pool, drops, ...); long names are cut, marked with '~'; rows that do not fit
// the height end with "... N more workers".
std::vector<std::string> render(const view& v, const view_options& vo, const text_options& t);

// The columns `s` takes on a terminal: a code point of UTF-8 is 1, an East Asian wide or
// fullwidth one (CJK, Hangul, fullwidth forms, the emoji blocks) 2, a combining mark or a
// zero-width one 0; a byte that is not UTF-8 is 1 (the text shows it as '?').
std::size_t display_width(std::string_view s);

// A rate for a column: "-" unknown, "0", "3.5", "120", "12.3k", "4.5M".
std::string format_rate(double per_second);
// A count: exact below 100,000, then "123k", "4.5M".
std::string format_count(std::uint64_t n);
// A duration: "45s", "12m03s", "3h04m", "5d02h".
std::string format_duration(double seconds);

}  // namespace telecap::control::top
