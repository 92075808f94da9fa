// The OTLP retry rule: which outcomes are retried, the backoff's growth, cap and jitter,
// Retry-After in both forms, and giving up past max_elapsed.
#include "export/retry.hpp"

#include <gtest/gtest.h>

namespace telecap::exporting {
namespace {

using namespace std::chrono_literals;
using net::transport_error;

net::http_result status(int s, std::string retry_after = {}) {
    net::http_result r;
    r.status = s;
    r.retry_after = std::move(retry_after);
    return r;
}

net::http_result transport(transport_error e) {
    net::http_result r;
    r.error = e;
    return r;
}

const auto epoch =
    std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT

TEST(retry, retries_only_429_502_503_504_and_transport_errors) {
    for (int s = 100; s < 600; ++s) {
        const auto c = classify(s, transport_error::none);
        const bool retryable = s == 429 || s == 502 || s == 503 || s == 504;
        EXPECT_EQ(c.retryable, retryable) << s;
        EXPECT_EQ(c.ok, s >= 200 && s < 300) << s;
        if (!c.ok) {
            EXPECT_EQ(c.reason, s >= 500 ? failure_reason::http_5xx : failure_reason::http_4xx)
                << s;
        }
    }
    for (auto e : {transport_error::connect, transport_error::tls, transport_error::other}) {
        EXPECT_TRUE(classify(0, e).retryable);
        EXPECT_EQ(classify(0, e).reason, failure_reason::transport);
    }
    EXPECT_EQ(classify(0, transport_error::timeout).reason, failure_reason::timeout);
}

TEST(retry, backoff_doubles_up_to_the_cap_within_the_jitter) {
    retry_policy p;  // 1 s initial, x2, 30 s cap, jitter 0.2
    EXPECT_EQ(backoff_delay(p, 1, 0.5), 1000ms);
    EXPECT_EQ(backoff_delay(p, 2, 0.5), 2000ms);
    EXPECT_EQ(backoff_delay(p, 5, 0.5), 16000ms);
    EXPECT_EQ(backoff_delay(p, 6, 0.5), 30000ms);
    EXPECT_EQ(backoff_delay(p, 60, 0.5), 30000ms);
    EXPECT_EQ(backoff_delay(p, 1, 0.0), 800ms);
    EXPECT_EQ(backoff_delay(p, 1, 0.999999), 1199ms);
    EXPECT_EQ(backoff_delay(p, 6, 0.0), 24000ms);
}

TEST(retry, reads_retry_after_in_seconds_and_as_an_http_date) {
    EXPECT_EQ(parse_retry_after("1", epoch), 1000ms);
    EXPECT_EQ(parse_retry_after(" 120 ", epoch), 120000ms);
    EXPECT_EQ(parse_retry_after("0", epoch), 0ms);
    EXPECT_EQ(parse_retry_after("99999999999999999999999", epoch), 86400000ms);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", epoch), 10000ms);
    EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:39 GMT", epoch), 2000ms);
    EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:40 1994", epoch), 3000ms);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", epoch), 0ms) << "past: now";
    EXPECT_FALSE(parse_retry_after("", epoch));
    EXPECT_FALSE(parse_retry_after("-1", epoch));
    EXPECT_FALSE(parse_retry_after("1.5", epoch));
    EXPECT_FALSE(parse_retry_after("soon", epoch));
    EXPECT_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT junk", epoch));
}

TEST(retry, decide_honours_retry_after_over_the_backoff) {
    retry_policy p;
    const auto d = decide(p, status(429, "3"), 0, 0ms, 0.5, epoch);
    EXPECT_EQ(d.what, verdict::retry);
    EXPECT_EQ(d.delay, 3000ms);
    EXPECT_EQ(d.reason, failure_reason::http_4xx);
    const auto b = decide(p, status(503), 2, 0ms, 0.5, epoch);
    EXPECT_EQ(b.what, verdict::retry);
    EXPECT_EQ(b.delay, 4000ms) << "third try: 1 s * 2^2";
    EXPECT_EQ(decide(p, status(503, "nonsense"), 0, 0ms, 0.5, epoch).delay, 1000ms);
}

// A Retry-After of 0 or in the past must not turn the retries into a loop without pauses
// (a receiver answering 503 at once would get thousands of requests a second): the backoff
// is the least wait.
TEST(retry, decide_waits_at_least_the_backoff_when_retry_after_is_zero_or_past) {
    retry_policy p;
    EXPECT_EQ(decide(p, status(503, "0"), 0, 0ms, 0.5, epoch).delay, 1000ms);
    EXPECT_EQ(decide(p, status(429, "Sun, 06 Nov 1994 08:49:30 GMT"), 1, 0ms, 0.5, epoch).delay,
              2000ms);
    EXPECT_EQ(decide(p, status(503, "1"), 2, 0ms, 0.5, epoch).delay, 4000ms)
        << "a Retry-After shorter than the backoff does not shorten it";
}

TEST(retry, decide_drops_what_is_not_retryable_at_once) {
    retry_policy p;
    for (int s : {400, 401, 403, 404, 413, 500, 501, 505}) {
        const auto d = decide(p, status(s, "1"), 0, 0ms, 0.5, epoch);
        EXPECT_EQ(d.what, verdict::drop) << s;
    }
    EXPECT_EQ(decide(p, status(200), 0, 0ms, 0.5, epoch).what, verdict::ok);
    EXPECT_EQ(decide(p, status(204), 0, 0ms, 0.5, epoch).what, verdict::ok);
}

TEST(retry, decide_gives_up_when_the_wait_would_pass_max_elapsed) {
    retry_policy p;
    p.max_elapsed = 10s;
    EXPECT_EQ(decide(p, transport(transport_error::connect), 0, 8999ms, 0.5, epoch).what,
              verdict::retry);
    const auto d = decide(p, transport(transport_error::connect), 0, 9001ms, 0.5, epoch);
    EXPECT_EQ(d.what, verdict::drop);
    EXPECT_EQ(d.reason, failure_reason::transport);
    EXPECT_EQ(decide(p, status(503, "11"), 0, 0ms, 0.5, epoch).what, verdict::drop)
        << "a Retry-After past the limit is not waited for";
    EXPECT_EQ(decide(p, transport(transport_error::timeout), 0, 9500ms, 0.5, epoch).reason,
              failure_reason::timeout);
}

}  // namespace
}  // namespace telecap::exporting
