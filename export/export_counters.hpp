#pragma once
// The counters every exporting output keeps (OTLP metrics, OTLP logs, HTTP): atomics, read
// from any thread at any time.
// - requests: HTTP attempts made; ok: exports the receiver accepted (2xx); retried: attempts
//   that failed retryably and were tried again; failed{reason}: exports given up.
// - items (events or points): sent, and dropped{reason}: buffer_full (the bounded buffer was
//   full), http_4xx / http_5xx / transport / timeout (their export was given up), shutdown
//   (still queued or retrying when the shutdown deadline passed), rejected (the receiver
//   accepted the export but reported them in partialSuccess).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "telecap/export/retry.hpp"

namespace telecap::exporting {

enum class drop_reason : std::uint8_t {
    buffer_full,
    http_4xx,
    http_5xx,
    transport,
    timeout,
    shutdown,
    rejected
};
inline constexpr std::size_t drop_reason_count = 7;
std::string_view to_string(drop_reason r) noexcept;
drop_reason drop_reason_for(failure_reason r) noexcept;

struct export_counters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> retried{0};
    std::array<std::atomic<std::uint64_t>, failure_reason_count> failed{};
    std::atomic<std::uint64_t> items_sent{0};
    std::array<std::atomic<std::uint64_t>, drop_reason_count> dropped{};

    std::uint64_t failed_count(failure_reason r) const noexcept {
        return failed[static_cast<std::size_t>(r)].load();
    }
    std::uint64_t dropped_count(drop_reason r) const noexcept {
        return dropped[static_cast<std::size_t>(r)].load();
    }
    std::uint64_t dropped_total() const noexcept;
    // Requests that did not succeed: retried, or failed for good.
    std::uint64_t errors() const noexcept {
        std::uint64_t n = retried.load();
        for (const auto& f : failed) n += f.load();
        return n;
    }
    void add_failed(failure_reason r) noexcept { failed[static_cast<std::size_t>(r)].fetch_add(1); }
    void add_dropped(drop_reason r, std::uint64_t n) noexcept {
        dropped[static_cast<std::size_t>(r)].fetch_add(n);
    }

    // {"requests":N,"ok":N,"retried":N,"failed":{"http_4xx":N,...},
    //  "<items>_sent":N,"<items>_dropped":{"buffer_full":N,...}} with items "events" or "points".
    std::string to_json(std::string_view items) const;
};

}  // namespace telecap::exporting
