#pragma once
// Eight bytes at a time in a 64-bit word (SWAR), for the per-line scans of numbers.

#include <cstdint>

namespace telecap {

// The high bit of each byte of `w` that is not an ASCII digit '0'..'9', exact for every byte:
// a digit has high nibble 3 and low nibble at most 9, and low nibble + 6 carries into the high
// nibble only from 10 up, never out of its byte.
constexpr std::uint64_t non_digit_bytes(std::uint64_t w) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ull;
    const std::uint64_t bad = ((w & (ones * 0xF0)) ^ (ones * 0x30)) |
                              (((w & (ones * 0x0F)) + ones * 0x06) & (ones * 0xF0));
    return (((bad & (ones * 0x7F)) + ones * 0x7F) | bad) & (ones * 0x80);
}

}  // namespace telecap
