#pragma once
// Shell-style globs (Python's fnmatch, case-sensitive) on dotted event names: `*` matches any
// run of characters, dots included; `?` one character; `[seq]` / `[!seq]` a class with
// ranges (`[a-z]`). Snakepit's sampling and filter patterns, and the metrics config's `event`,
// use this form. A pattern without any of `*?[` is an exact name.

#include <optional>
#include <string>
#include <string_view>

namespace telecap {

bool glob_match(std::string_view pattern, std::string_view name) noexcept;

// Why `pattern` is not a valid glob (an unclosed `[`, an empty pattern), or nullopt.
std::optional<std::string> glob_error(std::string_view pattern);

}  // namespace telecap
