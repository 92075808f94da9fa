#pragma once
// UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace telecap {

// Length (2..4) of the valid multi-byte sequence at p, or 0 if the bytes there are not one.
// *p must be >= 0x80.
inline std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
    const unsigned c = *p;
    std::size_t n;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates are not characters
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (static_cast<std::size_t>(end - p) <= n || p[1] < lo || p[1] > hi) return 0;
    for (std::size_t i = 2; i <= n; ++i)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n + 1;
}

// Offset of the first byte that is not part of well-formed UTF-8, or npos.
inline std::size_t first_invalid_utf8(std::string_view s) noexcept {
    const auto* const begin = reinterpret_cast<const unsigned char*>(s.data());
    const auto* p = begin;
    const auto* end = p + s.size();
    while (p < end) {
        // Eight ASCII bytes at a time: the common case of json.dumps output (ensure_ascii).
        while (end - p >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            if (w & 0x8080808080808080ull) break;
            p += 8;
        }
        if (p == end) break;
        if (*p < 0x80) {
            ++p;
        } else if (const std::size_t n = utf8_sequence_length(p, end)) {
            p += n;
        } else {
            return static_cast<std::size_t>(p - begin);
        }
    }
    return std::string_view::npos;
}

inline bool valid_utf8(std::string_view s) noexcept {
    return first_invalid_utf8(s) == std::string_view::npos;
}

}  // namespace telecap
