#pragma once
// A read-mostly string -> index table for the catalog's lookups on the per-line path:
// core/flat_map with a cheap word-based hash, so a lookup costs a few loads and one compare
// instead of std::hash plus a division and a node walk.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/core/flat_map.hpp"

namespace telecap {

// Equality for the short keys and values of the per-line path without a call into libc:
// strings of up to 16 bytes are compared as two (overlapping) words.
[[gnu::always_inline]] inline bool same_string(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = a.size();
    if (n != b.size()) return false;
    const char* x = a.data();
    const char* y = b.data();
    if (n > 16 && n <= 32) {  // dotted event names, as four words
        std::uint64_t xs[4], ys[4];
        std::memcpy(&xs[0], x, 16);
        std::memcpy(&ys[0], y, 16);
        std::memcpy(&xs[2], x + n - 16, 16);
        std::memcpy(&ys[2], y + n - 16, 16);
        return ((xs[0] ^ ys[0]) | (xs[1] ^ ys[1]) | (xs[2] ^ ys[2]) | (xs[3] ^ ys[3])) == 0;
    }
    if (n >= 8 && n <= 16) {
        std::uint64_t x1, x2, y1, y2;
        std::memcpy(&x1, x, 8);
        std::memcpy(&y1, y, 8);
        std::memcpy(&x2, x + n - 8, 8);
        std::memcpy(&y2, y + n - 8, 8);
        return ((x1 ^ y1) | (x2 ^ y2)) == 0;
    }
    if (n >= 4 && n < 8) {
        std::uint32_t x1, x2, y1, y2;
        std::memcpy(&x1, x, 4);
        std::memcpy(&y1, y, 4);
        std::memcpy(&x2, x + n - 4, 4);
        std::memcpy(&y2, y + n - 4, 4);
        return ((x1 ^ y1) | (x2 ^ y2)) == 0;
    }
    if (n < 4) {
        for (std::size_t i = 0; i < n; ++i)
            if (x[i] != y[i]) return false;
        return true;
    }
    return std::memcmp(x, y, n) == 0;
}

class string_table {
public:
    static constexpr std::uint32_t npos = UINT32_MAX;

    // Adds `key` with `value` unless present; returns false if it was present.
    bool insert(std::string_view key, std::uint32_t value) {
        if (contains(key)) return false;
        map_.insert(hash(key), std::string(key)) = value;
        return true;
    }

    std::uint32_t find(std::string_view key) const noexcept {
        const std::uint32_t* v = map_.find(
            hash(key), [key](const std::string& k, std::uint32_t) { return same_string(k, key); });
        return v ? *v : npos;
    }

    bool contains(std::string_view key) const noexcept { return find(key) != npos; }
    std::size_t size() const noexcept { return map_.size(); }

private:
    static std::uint64_t load(const char* p, std::size_t n) noexcept {
        std::uint64_t v = 0;
        std::memcpy(&v, p, n < 8 ? n : 8);
        return v;
    }
    static std::uint64_t hash(std::string_view k) noexcept {
        // First and last eight bytes and the length: enough to tell catalog keys apart.
        std::uint64_t h = load(k.data(), k.size()) * 0x9E3779B97F4A7C15ull;
        if (k.size() > 8) h ^= load(k.data() + k.size() - 8, 8) * 0xC2B2AE3D27D4EB4Full;
        h ^= k.size();
        h ^= h >> 29;
        return h * 0xBF58476D1CE4E5B9ull >> 16;
    }

    flat_map<std::string, std::uint32_t> map_;
};

}  // namespace telecap
