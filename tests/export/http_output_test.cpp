// The HTTP and OTLP outputs against a real local receiver: a receiver that is down or slow
// never slows handle(); 503 then 200 loses nothing and duplicates nothing; 429 waits for
// Retry-After; 400 is dropped and counted without a retry; https to a plain server fails in
// TLS, counted; the bodies, headers and paths each output sends; partialSuccess counted.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "capture/event_json.hpp"
#include "export/test_receiver.hpp"
#include "net/gzip.hpp"
#include "net/http_post.hpp"
#include "outputs/http_handler.hpp"
#include "outputs/otlp_handler.hpp"
#include "support/unit_helpers.hpp"
#include "telecap/version.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using exporting::drop_reason;
using exporting::failure_reason;

event numbered(std::int64_t i) {
    event ev;
    ev.name = {"test", "event"};
    ev.measurements = {{"i", i}};
    ev.metadata = {{"worker", std::string("w")}};
    ev.timestamp_ns = 1700000000000000000 + i;
    return ev;
}

// Fast retries and batches, so the tests take milliseconds rather than the defaults' seconds.
exporting::batch_sender_options fast(std::chrono::milliseconds max_elapsed = 5s) {
    exporting::batch_sender_options o;
    o.max_batch_records = 50;
    o.max_batch_delay = 20ms;
    o.retry.initial_backoff = 20ms;
    o.retry.max_backoff = 100ms;
    o.retry.max_elapsed = max_elapsed;
    o.shutdown_grace = 5s;
    return o;
}

net::url parse(const std::string& s) { return *net::parse_url(s); }

// A port nothing listens on: bound, then closed.
int refused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// The "i" of every event in ndjson bodies the receiver answered with 2xx.
std::multiset<std::int64_t> accepted_ids(const std::vector<test::received>& reqs) {
    std::multiset<std::int64_t> ids;
    for (const auto& r : reqs) {
        if (r.answered < 200 || r.answered >= 300) continue;
        std::istringstream in(r.body);
        for (std::string line; std::getline(in, line);) {
            rapidjson::Document d;
            d.Parse(line.c_str());
            ids.insert(d["measurements"]["i"].GetInt64());
        }
    }
    return ids;
}

TEST(http_output, receiver_down_never_slows_handle_and_drops_are_counted) {
    auto o = fast(300ms);
    o.max_batch_records = 1000;  // two batches, each given up after 300 ms of retries
    http_handler h(parse("http://127.0.0.1:" + std::to_string(refused_port()) + "/x"), "", 1500ms,
                   o);
    const auto t0 = clock_type::now();
    for (int i = 0; i < 2000; ++i) h.handle(numbered(i));
    EXPECT_LT(clock_type::now() - t0, 1s) << "handle() must not wait for the network";
    h.finish(clock_type::now() + 3s);
    const auto& c = h.counters();
    EXPECT_EQ(c.items_sent.load(), 0u);
    EXPECT_EQ(h.events_dropped(), 2000u) << h.counters_json();
    EXPECT_GT(c.dropped_count(drop_reason::transport), 0u) << h.counters_json();
    EXPECT_GT(c.failed_count(failure_reason::transport), 0u);
    EXPECT_GT(c.retried.load(), 0u) << "connection refused is retried";
}

TEST(http_output, slow_receiver_never_slows_handle) {
    test::gate gate;
    test::test_receiver rx([&](std::size_t) {
        gate.wait();
        return test::reply{};
    });
    http_handler h(parse(rx.url()), "", 10s, fast());
    h.handle(numbered(0));
    ASSERT_TRUE(gate.wait_arrived(1)) << "the first batch is stuck in the receiver";
    const auto t0 = clock_type::now();
    for (int i = 1; i < 3000; ++i) h.handle(numbered(i));
    EXPECT_LT(clock_type::now() - t0, 1s);
    gate.open();
    h.finish(clock_type::now() + 10s);
    const auto ids = accepted_ids(rx.requests());
    EXPECT_EQ(ids.size(), 3000u) << h.counters_json();
    EXPECT_EQ(h.events_dropped(), 0u);
}

TEST(http_output, retries_503_and_loses_nothing) {
    test::test_receiver rx([](std::size_t n) { return test::reply{n == 0 ? 503 : 200, "", ""}; });
    http_handler h(parse(rx.url()), "", 1500ms, fast());
    for (int i = 0; i < 200; ++i) h.handle(numbered(i));
    h.finish(clock_type::now() + 10s);
    const auto ids = accepted_ids(rx.requests());
    std::multiset<std::int64_t> want;
    for (int i = 0; i < 200; ++i) want.insert(i);
    EXPECT_EQ(ids, want) << "every event exactly once";
    EXPECT_EQ(h.counters().retried.load(), 1u);
    EXPECT_EQ(h.counters().items_sent.load(), 200u);
    EXPECT_EQ(h.events_dropped(), 0u) << h.counters_json();
}

TEST(http_output, waits_for_retry_after) {
    test::test_receiver rx([](std::size_t n) { return test::reply{n == 0 ? 429 : 200, "1", ""}; });
    http_handler h(parse(rx.url()), "", 1500ms, fast());
    h.handle(numbered(1));
    ASSERT_TRUE(rx.wait_for([](const auto& r) { return r.size() >= 2 && r[1].answered; }));
    const auto reqs = rx.requests();
    EXPECT_GE(reqs[1].at - reqs[0].at, 1s) << "the backoff alone would be 20 ms";
    h.finish(clock_type::now() + 5s);
    EXPECT_EQ(h.counters().items_sent.load(), 1u);
}

TEST(http_output, http_400_is_dropped_without_retry) {
    test::test_receiver rx([](std::size_t) { return test::reply{400, "", ""}; });
    http_handler h(parse(rx.url()), "", 1500ms, fast());
    for (int i = 0; i < 10; ++i) h.handle(numbered(i));
    h.finish(clock_type::now() + 5s);
    EXPECT_EQ(rx.requests().size(), 1u);
    EXPECT_EQ(h.counters().retried.load(), 0u);
    EXPECT_EQ(h.counters().dropped_count(drop_reason::http_4xx), 10u);
    EXPECT_EQ(h.counters().failed_count(failure_reason::http_4xx), 1u);
    EXPECT_EQ(h.events_dropped(), 10u);
}

TEST(http_output, full_buffer_drops_newest_and_counts) {
    test::gate gate;
    test::test_receiver rx([&](std::size_t) {
        gate.wait();
        return test::reply{};
    });
    auto o = fast();
    o.max_buffer_records = 100;
    http_handler h(parse(rx.url()), "", 10s, o);
    h.handle(numbered(0));
    ASSERT_TRUE(gate.wait_arrived(1));
    for (int i = 1; i <= 150; ++i) h.handle(numbered(i));
    EXPECT_EQ(h.counters().dropped_count(drop_reason::buffer_full), 50u);
    gate.open();
    h.finish(clock_type::now() + 10s);
    const auto ids = accepted_ids(rx.requests());
    EXPECT_EQ(ids.size(), 101u);
    EXPECT_EQ(*ids.rbegin(), 100) << "the newest were dropped, the oldest kept";
}

TEST(http_output, sends_ndjson_lines_with_the_token) {
    test::test_receiver rx;
    const auto out = make_http_output(rx.url("/events"), [](const std::string& name) {
        return name == "TELECAP_HTTP_TOKEN" ? std::optional<std::string>("s3cret") : std::nullopt;
    });
    std::string want;
    for (int i = 0; i < 3; ++i) {
        out->handle(numbered(i));
        append_event_json(want, numbered(i));
    }
    // finish() sends at once what is queued (no 1 s batch delay).
    std::dynamic_pointer_cast<http_handler>(out)->finish(clock_type::now() + 5s);
    const auto reqs = rx.requests();
    ASSERT_FALSE(reqs.empty());
    std::string got;
    for (const auto& r : reqs) got += r.body;
    EXPECT_EQ(got, want) << "the jsonl output's lines, byte for byte";
    EXPECT_EQ(reqs[0].path, "/events");
    EXPECT_EQ(reqs[0].content_type, "application/x-ndjson");
    EXPECT_EQ(reqs[0].authorization, "Bearer s3cret");
    EXPECT_NE(out->counters_json().find("\"events_sent\":3"), std::string::npos)
        << out->counters_json();
}

TEST(http_output, factory_refuses_bad_urls) {
    EXPECT_THROW(make_http_output("localhost:8080"), std::runtime_error);
    EXPECT_THROW(make_http_output("http://h:99999/"), std::runtime_error);
}

// A receiver that answers with a huge body (a misrouted download, a hostile endpoint) must
// not make telecap hold all of it: the status counts, the body is read up to a bound.
TEST(http_output, a_huge_response_body_is_not_held_in_memory) {
    const std::string huge(8u << 20, 'x');
    test::test_receiver rx([&](std::size_t) { return test::reply{200, "", huge}; });
    net::http_client client(parse(rx.url()));
    const auto r = client.post("/v1/logs", "{}", "application/json", {}, 5s);
    EXPECT_FALSE(r.transport_failed()) << r.error_text;
    EXPECT_EQ(r.status, 200);
    EXPECT_LE(r.body.size(), net::max_response_body);
    EXPECT_EQ(r.body, huge.substr(0, r.body.size())) << "what is kept is the body's start";
    // The client is usable for the next request.
    const auto again = client.post("/v1/logs", "{}", "application/json", {}, 5s);
    EXPECT_EQ(again.status, 200);
}

TEST(http_output, a_token_with_a_newline_is_refused_at_startup) {
    const auto env = [](const std::string& k) -> std::optional<std::string> {
        if (k == "TELECAP_HTTP_TOKEN") return std::string("secret\nX-Injected: yes");
        return std::nullopt;
    };
    try {
        make_http_output("http://127.0.0.1:9/x", env);
        ADD_FAILURE() << "a token with a newline was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("TELECAP_HTTP_TOKEN"), std::string::npos) << e.what();
    }
}

TEST(http_output, https_to_a_plain_server_fails_in_tls_and_is_counted) {
    test::test_receiver rx;
    net::http_client client(parse("https://127.0.0.1:" + std::to_string(rx.port())));
    const auto r = client.post("/x", "{}", "application/json", {}, 2s);
    EXPECT_EQ(r.error, net::transport_error::tls) << r.error_text;
    EXPECT_EQ(r.status, 0);

    http_handler h(parse("https://127.0.0.1:" + std::to_string(rx.port()) + "/x"), "", 1500ms,
                   fast(200ms));
    for (int i = 0; i < 5; ++i) h.handle(numbered(i));
    h.finish(clock_type::now() + 3s);
    EXPECT_EQ(h.events_dropped(), 5u) << h.counters_json();
    EXPECT_EQ(h.counters().items_sent.load(), 0u);
}

exporting::otlp_settings settings_for(const test::test_receiver& rx, exporting::otlp_signal s) {
    return exporting::read_otlp_settings(
        s, "", [&](const std::string& name) -> std::optional<std::string> {
            if (name == "OTEL_EXPORTER_OTLP_ENDPOINT") return rx.url("/");
            if (name == "OTEL_EXPORTER_OTLP_HEADERS") return "x-test=yes%21";
            if (name == "OTEL_SERVICE_NAME") return "svc";
            return std::nullopt;
        });
}

TEST(otlp_output, logs_batches_records_to_v1_logs_and_counts_partial_success) {
    test::test_receiver rx([](std::size_t) {
        return test::reply{200, "",
                           R"({"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"x"}})"};
    });
    otlp_logs_handler h(settings_for(rx, exporting::otlp_signal::logs), fast());
    for (int i = 0; i < 3; ++i) h.handle(numbered(i));
    h.finish(clock_type::now() + 5s);
    const auto reqs = rx.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].path, "/v1/logs");
    EXPECT_EQ(reqs[0].content_type, "application/json");
    EXPECT_EQ(reqs[0].custom_header, "yes!");
    rapidjson::Document d;
    d.Parse(reqs[0].body.c_str());
    ASSERT_FALSE(d.HasParseError());
    EXPECT_STREQ(
        d["resourceLogs"][0]["resource"]["attributes"][0]["value"]["stringValue"].GetString(),
        "svc");
    EXPECT_EQ(d["resourceLogs"][0]["scopeLogs"][0]["logRecords"].Size(), 3u);
    EXPECT_EQ(h.counters().items_sent.load(), 2u);
    EXPECT_EQ(h.counters().dropped_count(drop_reason::rejected), 1u);
    EXPECT_EQ(h.counters().retried.load(), 0u) << "a partial success is not retried";
    EXPECT_EQ(h.events_dropped(), 1u);
}

TEST(otlp_output, metrics_export_now_and_a_final_export_at_finish) {
    test::test_receiver rx;
    std::atomic<int> calls{0};
    metrics::family_source source = [&] {
        metrics::family f{"requests", "Requests", "1", metrics::family_type::counter, {}, {}};
        metrics::point p;
        p.value = ++calls;
        f.points.push_back(p);
        return std::vector<metrics::family>{f};
    };
    otlp_metrics_handler h(settings_for(rx, exporting::otlp_signal::metrics), source, fast());
    h.export_now();
    ASSERT_TRUE(rx.wait_for([](const auto& r) { return r.size() == 1 && r[0].answered; }));
    h.finish(clock_type::now() + 5s);
    const auto reqs = rx.requests();
    ASSERT_EQ(reqs.size(), 2u) << "the final export at finish";
    EXPECT_EQ(reqs[1].path, "/v1/metrics");
    rapidjson::Document d;
    d.Parse(reqs[1].body.c_str());
    ASSERT_FALSE(d.HasParseError());
    const auto& m = d["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    EXPECT_STREQ(m["sum"]["dataPoints"][0]["asInt"].GetString(), "2");
    EXPECT_EQ(h.counters().items_sent.load(), 2u);
    EXPECT_NE(h.counters_json().find("\"points_sent\":2"), std::string::npos) << h.counters_json();
}

TEST(otlp_output, a_large_export_goes_out_in_requests_of_bounded_size) {
    test::test_receiver rx;
    const std::size_t n = 2 * otlp_points_per_request + 500;
    metrics::family_source source = [&] {
        metrics::family f{"requests", "Requests", "1", metrics::family_type::counter, {}, {}};
        for (std::size_t i = 0; i < n; ++i) {
            metrics::point p;
            p.labels = {{"id", std::to_string(i)}};
            p.value = static_cast<double>(i);
            f.points.push_back(p);
        }
        metrics::family g{"up", "Up", "1", metrics::family_type::gauge, {}, {}};
        g.points.emplace_back();
        return std::vector<metrics::family>{f, g};
    };
    otlp_metrics_handler h(settings_for(rx, exporting::otlp_signal::metrics), source, fast());
    h.export_now();
    ASSERT_TRUE(rx.wait_for([](const auto& r) {
        return r.size() == 3 && r[0].answered && r[1].answered && r[2].answered;
    }));
    std::set<std::string> ids;
    std::size_t gauges = 0;
    for (const auto& req : rx.requests()) {
        rapidjson::Document d;
        d.Parse(req.body.c_str());
        ASSERT_FALSE(d.HasParseError());
        std::size_t in_request = 0;
        for (const auto& m : d["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].GetArray()) {
            if (m.HasMember("gauge")) {
                gauges += m["gauge"]["dataPoints"].Size();
                in_request += m["gauge"]["dataPoints"].Size();
                continue;
            }
            for (const auto& p : m["sum"]["dataPoints"].GetArray()) {
                ids.insert(p["attributes"][0]["value"]["stringValue"].GetString());
                ++in_request;
            }
        }
        EXPECT_LE(in_request, otlp_points_per_request);
    }
    EXPECT_EQ(ids.size(), n);  // every series once
    EXPECT_EQ(gauges, 1u);
    // Counted by the sender once it has read the reply, which may be just after the receiver
    // recorded it as answered.
    const auto until = clock_type::now() + 10s;
    while (h.counters().items_sent.load() < n + 1 && clock_type::now() < until)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(h.counters().items_sent.load(), n + 1);
}

TEST(otlp_output, metrics_interval_from_the_environment) {
    test::test_receiver rx;
    auto s = settings_for(rx, exporting::otlp_signal::metrics);
    s.export_interval = 30ms;
    otlp_metrics_handler h(
        std::move(s), [] { return std::vector<metrics::family>{}; }, fast());
    EXPECT_TRUE(rx.wait_for([](const auto& r) { return r.size() >= 2; }))
        << "two exports by the interval alone";
}

TEST(otlp_output, disabled_by_otel_sdk_disabled) {
    const auto env = [](const std::string& name) -> std::optional<std::string> {
        return name == "OTEL_SDK_DISABLED" ? std::optional<std::string>("true") : std::nullopt;
    };
    const auto h = make_otlp_logs_output("", env);
    h->handle(numbered(1));
    EXPECT_EQ(h->counters_json(), "{\"disabled\":true}");
    EXPECT_THROW(make_otlp_metrics_output("", {}, exporting::process_env()), std::invalid_argument);
    EXPECT_THROW(make_otlp_logs_output("bad url"), std::runtime_error);
}

// The same variables as settings_for, plus `extra`.
exporting::otlp_settings settings_with(const test::test_receiver& rx, exporting::otlp_signal s,
                                       std::map<std::string, std::string> extra) {
    return exporting::read_otlp_settings(
        s, "", [&](const std::string& name) -> std::optional<std::string> {
            if (auto it = extra.find(name); it != extra.end()) return it->second;
            if (name == "OTEL_EXPORTER_OTLP_ENDPOINT") return rx.url("/");
            return std::nullopt;
        });
}

std::string gunzip(const std::string& in) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
}

TEST(gzip, round_trip) {
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "{\"key\":\"value " + std::to_string(i) + "\"},";
    const auto z = net::gzip_compress(text);
    ASSERT_GE(z.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f) << "a gzip member";
    EXPECT_EQ(static_cast<unsigned char>(z[1]), 0x8b);
    EXPECT_LT(z.size(), text.size() / 4);
    EXPECT_EQ(gunzip(z), text);
    EXPECT_EQ(gunzip(net::gzip_compress("")), "");
}

TEST(otlp_output, gzip_bodies_with_content_encoding) {
    test::test_receiver rx;
    otlp_logs_handler h(settings_with(rx, exporting::otlp_signal::logs,
                                      {{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"}}),
                        fast());
    for (int i = 0; i < 3; ++i) h.handle(numbered(i));
    h.finish(clock_type::now() + 5s);
    const auto reqs = rx.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].content_encoding, "gzip");
    rapidjson::Document d;  // (the receiver's httplib inflated it)
    d.Parse(reqs[0].body.c_str());
    ASSERT_FALSE(d.HasParseError()) << reqs[0].body;
    EXPECT_EQ(d["resourceLogs"][0]["scopeLogs"][0]["logRecords"].Size(), 3u);
    EXPECT_EQ(h.counters().items_sent.load(), 3u);
}

TEST(otlp_output, user_agent_and_resource_identity) {
    test::test_receiver rx;
    otlp_logs_handler h(settings_with(rx, exporting::otlp_signal::logs, {}), fast());
    h.handle(numbered(1));
    h.finish(clock_type::now() + 5s);
    const auto reqs = rx.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].user_agent, std::string("telecap/") + version_string);
    EXPECT_EQ(reqs[0].content_encoding, "") << "no compression unless asked";
    rapidjson::Document d;
    d.Parse(reqs[0].body.c_str());
    std::map<std::string, std::string> attrs;
    for (const auto& a : d["resourceLogs"][0]["resource"]["attributes"].GetArray())
        attrs[a["key"].GetString()] = a["value"]["stringValue"].GetString();
    for (const char* k : {"service.name", "host.name", "service.instance.id", "process.pid",
                          "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version"})
        EXPECT_FALSE(attrs[k].empty()) << k;
    EXPECT_EQ(attrs["process.pid"], std::to_string(::getpid()));
}

TEST(otlp_output, an_error_reply_body_is_in_the_log_bounded_and_escaped) {
    test::log_capture log;
    test::test_receiver rx([](std::size_t) {
        return test::reply{400, "", "bad \"thing\"\n\x01" + std::string(2000, 'x')};
    });
    otlp_logs_handler h(settings_with(rx, exporting::otlp_signal::logs, {}), fast());
    h.handle(numbered(1));
    h.finish(clock_type::now() + 5s);
    EXPECT_TRUE(log.contains("HTTP 400: \"bad \\\"thing\\\"\\x0a\\x01xxx")) << log.text();
    EXPECT_TRUE(log.contains("xxx\"..., not retryable")) << log.text();
    EXPECT_FALSE(log.contains(std::string(600, 'x'))) << "at most 512 bytes of it";
}

TEST(otlp_output, a_metrics_export_that_lost_points_says_so) {
    metrics::family_source source = [] {
        metrics::family f{"requests", "", "1", metrics::family_type::counter, {}, {}};
        f.points.push_back(metrics::point{});
        return std::vector<metrics::family>{f};
    };
    auto s = exporting::read_otlp_settings(exporting::otlp_signal::metrics,
                                           "http://127.0.0.1:" + std::to_string(refused_port()),
                                           [](const std::string&) { return std::nullopt; });
    otlp_metrics_handler h(std::move(s), source, fast(200ms));
    h.export_now();
    h.finish(clock_type::now() + 3s);
    EXPECT_EQ(h.items_lost(), 2u) << h.counters_json();  // the export and the final one
    EXPECT_EQ(h.events_dropped(), 0u) << "points are not events";
}

TEST(otlp_output, metric_export_timeout_ends_the_retries) {
    metrics::family_source source = [] {
        metrics::family f{"requests", "", "1", metrics::family_type::counter, {}, {}};
        f.points.push_back(metrics::point{});
        return std::vector<metrics::family>{f};
    };
    auto s = exporting::read_otlp_settings(exporting::otlp_signal::metrics,
                                           "http://127.0.0.1:" + std::to_string(refused_port()),
                                           [](const std::string& n) -> std::optional<std::string> {
                                               if (n == "OTEL_METRIC_EXPORT_TIMEOUT") return "300";
                                               return std::nullopt;
                                           });
    otlp_metrics_handler h(std::move(s), source, fast(60s));
    const auto t0 = clock_type::now();
    h.export_now();
    h.finish(clock_type::now() + 20s);
    EXPECT_LT(clock_type::now() - t0, 5s) << "60 s of retries cut to the export timeout";
    EXPECT_EQ(h.counters().dropped_count(drop_reason::transport), 2u) << h.counters_json();
}

TEST(http_client, a_name_that_does_not_resolve_says_so) {
    net::http_client client(parse("http://no-such-host.invalid:4318"));
    const auto r = client.post("/v1/logs", "{}", "application/json", {}, 2s);
    EXPECT_EQ(r.error, net::transport_error::connect);
    EXPECT_EQ(r.error_text.rfind("cannot resolve no-such-host.invalid: ", 0), 0u) << r.error_text;
    net::http_client refused(parse("http://127.0.0.1:" + std::to_string(refused_port())));
    const auto r2 = refused.post("/", "{}", "application/json", {}, 2s);
    EXPECT_NE(r2.error_text.find("could not connect to http://127.0.0.1:"), std::string::npos)
        << r2.error_text;
}

}  // namespace
}  // namespace telecap
