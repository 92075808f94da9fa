#pragma once
// The OTLP/HTTP retry rule, as pure functions (no clock, no randomness of their own: the
// caller passes both, so tests pin them).
// - 2xx: delivered.
// - 429, 502, 503, 504 and transport errors (refused, timeout, TLS, reset): retried, after
//   an exponential backoff with jitter: initial * multiplier^(n-1), capped at max_backoff,
//   then scaled by a random factor in [1 - jitter, 1 + jitter]; or after the server's
//   Retry-After (delta-seconds or an HTTP-date) when that is longer (0 or a date in the past
//   never makes the retries come faster than the backoff).
// - Any other status (400, 401, 404, 413, 500, 501, ...): dropped, never retried.
// - A retry whose wait would end past max_elapsed since the first attempt is not made: the
//   data is dropped with the reason of the last failure.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "telecap/net/http_post.hpp"

namespace telecap::exporting {

// Why an export failed; the names are the counters' labels.
enum class failure_reason : std::uint8_t { http_4xx, http_5xx, transport, timeout, shutdown };
inline constexpr std::size_t failure_reason_count = 5;
std::string_view to_string(failure_reason r) noexcept;

struct retry_policy {
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{30000};
    double multiplier = 2.0;
    double jitter = 0.2;  // 0 .. 1
    std::chrono::milliseconds max_elapsed{60000};
};

struct classification {
    bool ok = false;
    bool retryable = false;
    failure_reason reason = failure_reason::transport;  // when !ok
};

// What one response (or transport error) means, before any timing.
classification classify(int status, net::transport_error err) noexcept;

// Retry-After as a delay from `now`: delta-seconds ("120") or an HTTP-date (IMF-fixdate,
// RFC 850 or asctime form). A date in the past gives 0. nullopt when absent or unreadable.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The backoff before retry number `retry` (1 for the first retry); `unit_random` in [0, 1).
std::chrono::milliseconds backoff_delay(const retry_policy& p, unsigned retry,
                                        double unit_random) noexcept;

enum class verdict : std::uint8_t { ok, retry, drop };

struct decision {
    verdict what = verdict::ok;
    failure_reason reason = failure_reason::transport;  // retry and drop
    std::chrono::milliseconds delay{0};                 // retry: wait this long first
};

// The whole rule for one attempt's outcome. `retries_done`: retries already made for this
// data; `elapsed`: since its first attempt.
decision decide(const retry_policy& p, const net::http_result& r, unsigned retries_done,
                std::chrono::milliseconds elapsed, double unit_random,
                std::chrono::system_clock::time_point now);

}  // namespace telecap::exporting
