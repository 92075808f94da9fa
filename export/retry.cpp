#include "export/retry.hpp"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

namespace telecap::exporting {

std::string_view to_string(failure_reason r) noexcept {
    switch (r) {
        case failure_reason::http_4xx:
            return "http_4xx";
        case failure_reason::http_5xx:
            return "http_5xx";
        case failure_reason::transport:
            return "transport";
        case failure_reason::timeout:
            return "timeout";
        case failure_reason::shutdown:
            return "shutdown";
    }
    return "transport";
}

classification classify(int status, net::transport_error err) noexcept {
    if (err != net::transport_error::none)
        return {false, true,
                err == net::transport_error::timeout ? failure_reason::timeout
                                                     : failure_reason::transport};
    if (status >= 200 && status < 300) return {true, false, failure_reason::transport};
    const bool retryable = status == 429 || status == 502 || status == 503 || status == 504;
    // 1xx/3xx (a redirect is not followed) count with 4xx: the request was not accepted and
    // sending it again will not change that.
    return {false, retryable, status >= 500 ? failure_reason::http_5xx : failure_reason::http_4xx};
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::uint64_t secs = 0;
        const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
        // A value too large to read is as good as "a day": the caller's max_elapsed decides.
        if (ec == std::errc::result_out_of_range || secs > 86400)
            secs = 86400;
        else if (ec != std::errc{} || ptr != value.data() + value.size())
            return std::nullopt;
        return std::chrono::milliseconds(secs * 1000);
    }
    // HTTP-date (RFC 9110 5.6.7): the preferred form and the two obsolete ones. strptime
    // reads English names in the C locale, which a library never changes.
    const std::string s(value);
    static constexpr const char* formats[] = {"%a, %d %b %Y %H:%M:%S GMT",
                                              "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"};
    for (const char* f : formats) {
        struct tm tm {};
        const char* end = ::strptime(s.c_str(), f, &tm);
        if (end == nullptr || *end != '\0') continue;
        const time_t t = ::timegm(&tm);
        if (t == static_cast<time_t>(-1)) return std::nullopt;
        const auto when = std::chrono::system_clock::from_time_t(t);
        if (when <= now) return std::chrono::milliseconds(0);
        return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
    }
    return std::nullopt;
}

std::chrono::milliseconds backoff_delay(const retry_policy& p, unsigned retry,
                                        double unit_random) noexcept {
    const double base = static_cast<double>(p.initial_backoff.count()) *
                        std::pow(p.multiplier, retry > 0 ? static_cast<double>(retry - 1) : 0.0);
    const double capped = std::min(base, static_cast<double>(p.max_backoff.count()));
    const double r = std::clamp(unit_random, 0.0, 1.0);
    const double factor = 1.0 - p.jitter + 2.0 * p.jitter * r;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(0.0, capped * factor)));
}

decision decide(const retry_policy& p, const net::http_result& r, unsigned retries_done,
                std::chrono::milliseconds elapsed, double unit_random,
                std::chrono::system_clock::time_point now) {
    const auto c = classify(r.status, r.error);
    if (c.ok) return {verdict::ok, failure_reason::transport, {}};
    if (!c.retryable) return {verdict::drop, c.reason, {}};
    std::chrono::milliseconds delay = backoff_delay(p, retries_done + 1, unit_random);
    // Retry-After lengthens the wait, never shortens it: "0" or a date in the past would
    // otherwise retry at once, as fast as the receiver answers, until max_elapsed.
    if (!r.transport_failed())
        if (auto ra = parse_retry_after(r.retry_after, now)) delay = std::max(delay, *ra);
    if (elapsed + delay > p.max_elapsed) return {verdict::drop, c.reason, {}};
    return {verdict::retry, c.reason, delay};
}

}  // namespace telecap::exporting
