#include "core/glob.hpp"

namespace telecap {

namespace {

// Matches the class starting after '[' at p against c; sets `end` past its ']'. An unclosed
// class is a literal '[' (as fnmatch does).
bool class_match(std::string_view pat, std::size_t p, char c, std::size_t& end, bool& closed) {
    std::size_t i = p;
    bool negate = false;
    if (i < pat.size() && pat[i] == '!') {
        negate = true;
        ++i;
    }
    bool hit = false;
    bool first = true;
    while (i < pat.size() && (first || pat[i] != ']')) {
        first = false;
        const char lo = pat[i];
        if (i + 2 < pat.size() && pat[i + 1] == '-' && pat[i + 2] != ']') {
            const char hi = pat[i + 2];
            if (lo <= c && c <= hi) hit = true;
            i += 3;
        } else {
            if (lo == c) hit = true;
            ++i;
        }
    }
    closed = i < pat.size();
    end = closed ? i + 1 : p;
    return negate ? !hit : hit;
}

}  // namespace

bool glob_match(std::string_view pat, std::string_view s) noexcept {
    // Iterative matching with one backtrack point (the last '*'): linear for the usual
    // patterns, never exponential.
    std::size_t p = 0, i = 0;
    std::size_t star = std::string_view::npos, star_i = 0;
    while (i < s.size()) {
        if (p < pat.size()) {
            const char c = pat[p];
            if (c == '*') {
                star = p++;
                star_i = i;
                continue;
            }
            if (c == '?') {
                ++p;
                ++i;
                continue;
            }
            if (c == '[') {
                std::size_t end = 0;
                bool closed = false;
                const bool hit = class_match(pat, p + 1, s[i], end, closed);
                if (closed) {
                    if (hit) {
                        p = end;
                        ++i;
                        continue;
                    }
                } else if (s[i] == '[') {  // an unclosed '[' is itself
                    ++p;
                    ++i;
                    continue;
                }
            } else if (c == s[i]) {
                ++p;
                ++i;
                continue;
            }
        }
        if (star == std::string_view::npos) return false;
        p = star + 1;
        i = ++star_i;
    }
    while (p < pat.size() && pat[p] == '*') ++p;
    return p == pat.size();
}

std::optional<std::string> glob_error(std::string_view pattern) {
    if (pattern.empty()) return "an empty pattern matches nothing";
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '[') continue;
        std::size_t j = i + 1;
        if (j < pattern.size() && pattern[j] == '!') ++j;
        if (j < pattern.size() && pattern[j] == ']') ++j;  // a leading ']' is a member
        while (j < pattern.size() && pattern[j] != ']') ++j;
        if (j == pattern.size())
            return "unclosed '[' at " + std::to_string(i + 1) + " in \"" + std::string(pattern) +
                   "\"";
        i = j;
    }
    return std::nullopt;
}

}  // namespace telecap
