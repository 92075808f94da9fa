#pragma once
// The wall clock as nanoseconds since the Unix epoch: what timestamp_ns fields carry.

#include <chrono>
#include <cstdint>

namespace telecap {

inline std::int64_t wall_clock_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace telecap
