#pragma once
// What one StreamTelemetry call of `-o grpc` asked for and what happened to its events: plain
// data for --stats and the registry (no gRPC or protobuf header).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace telecap::bridge {

// Which events a stream asked for by call metadata (`telecap-worker`, `telecap-pool`); empty:
// any.
struct selection {
    std::string worker;
    std::string pool;
};

// Why an event admitted by a stream's gates did not reach its client: the queue was full, or
// the call ended (the client left, its deadline passed, telecap stopped) with it still queued.
enum class stream_drop : std::uint8_t { queue_full, closed, count_ };
std::string_view to_string(stream_drop d) noexcept;

struct stream_info {
    std::uint64_t id = 0;  // 1, 2, ... in arrival order
    std::string peer;      // gRPC's peer string ("ipv4:127.0.0.1:40000")
    selection select;
    bool open = true;
    std::size_t queued = 0;
    std::uint64_t sent = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(stream_drop::count_)> dropped{};
    // Removed by the stream's own controls, by gate verdict.
    std::uint64_t disabled = 0, sampled = 0, filtered = 0;
    std::uint64_t controls_applied = 0, controls_rejected = 0;
    // Back-pressure: events held past a full queue (then sent, or counted as closed when the
    // call ended first).
    std::uint64_t held = 0;
};

}  // namespace telecap::bridge
