// OTLP JSON bodies parsed back with RapidJSON: structure, decimal strings, histogram buckets,
// hostile strings and bytes that are not UTF-8, non-finite doubles, trace ids.
#include "export/otlp_json.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/encodings.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <limits>
#include <string>

namespace telecap::exporting {
namespace {

rapidjson::Document parse_strict(const std::string& body) {
    // kParseValidateEncodingFlag: invalid UTF-8 anywhere fails the parse.
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(body.c_str(), body.size());
    EXPECT_FALSE(d.HasParseError()) << "offset " << d.GetErrorOffset() << " in " << body;
    return d;
}

std::vector<metrics::family> sample_families() {
    metrics::family c{"requests", "Requests served", "1", metrics::family_type::counter, {}, {}};
    metrics::point p1;
    p1.labels = {{"path", "/a\"b\\c\n"}, {"bad", std::string("x\xff\xfe y\xc3", 6)}};
    p1.value = 42;
    p1.start_ns = 1000;
    c.points.push_back(p1);
    metrics::family g{"temperature", "", "", metrics::family_type::gauge, {}, {}};
    metrics::point gp;
    gp.value = 21.5;
    metrics::point gn;
    gn.value = std::numeric_limits<double>::quiet_NaN();
    g.points = {gp, gn};
    metrics::family h{"latency_seconds", "Latency", "s", metrics::family_type::histogram,
                      {0.1, 0.5, 1.0},   {}};
    metrics::point hp;
    hp.bucket_counts = {1, 2, 3, 4};
    hp.count = 10;
    hp.sum = 7.25;
    metrics::point bad;  // malformed: skipped
    bad.bucket_counts = {1};
    bad.count = 1;
    h.points = {hp, bad};
    metrics::family empty{"nothing", "", "", metrics::family_type::counter, {}, {}};
    return {c, g, h, empty};
}

TEST(otlp_json, metrics_request_structure) {
    std::size_t points = 0;
    const auto body =
        encode_metrics_request(sample_families(), {{"service.name", "svc"}}, 5000, 777, &points);
    EXPECT_EQ(points, 4u) << "the malformed histogram point is not sent";
    const auto d = parse_strict(body);
    const auto& rm = d["resourceMetrics"][0];
    EXPECT_STREQ(rm["resource"]["attributes"][0]["key"].GetString(), "service.name");
    EXPECT_STREQ(rm["resource"]["attributes"][0]["value"]["stringValue"].GetString(), "svc");
    const auto& sm = rm["scopeMetrics"][0];
    EXPECT_STREQ(sm["scope"]["name"].GetString(), "telecap");
    EXPECT_TRUE(sm["scope"]["version"].IsString());
    const auto& ms = sm["metrics"];
    ASSERT_EQ(ms.Size(), 3u) << "a family without points is left out";

    const auto& sum = ms[0]["sum"];
    EXPECT_EQ(sum["aggregationTemporality"].GetInt(), 2);
    EXPECT_TRUE(sum["isMonotonic"].GetBool());
    const auto& sp = sum["dataPoints"][0];
    EXPECT_STREQ(sp["asInt"].GetString(), "42");
    EXPECT_STREQ(sp["startTimeUnixNano"].GetString(), "1000");
    EXPECT_STREQ(sp["timeUnixNano"].GetString(), "5000");
    EXPECT_STREQ(sp["attributes"][0]["value"]["stringValue"].GetString(), "/a\"b\\c\n");
    EXPECT_EQ(std::string(sp["attributes"][1]["value"]["stringValue"].GetString()),
              "x\xEF\xBF\xBD\xEF\xBF\xBD y\xEF\xBF\xBD");
    EXPECT_STREQ(ms[0]["description"].GetString(), "Requests served");
    EXPECT_STREQ(ms[0]["unit"].GetString(), "1");

    ASSERT_TRUE(ms[1].HasMember("gauge"));
    EXPECT_FALSE(ms[1].HasMember("description")) << "empty strings are left out";
    const auto& gp = ms[1]["gauge"]["dataPoints"];
    EXPECT_DOUBLE_EQ(gp[0]["asDouble"].GetDouble(), 21.5);
    EXPECT_FALSE(gp[0].HasMember("startTimeUnixNano"));
    EXPECT_FALSE(gp[0].HasMember("attributes")) << "no empty arrays";
    EXPECT_STREQ(gp[1]["asDouble"].GetString(), "NaN");

    const auto& hist = ms[2]["histogram"];
    EXPECT_EQ(hist["aggregationTemporality"].GetInt(), 2);
    ASSERT_EQ(hist["dataPoints"].Size(), 1u);
    const auto& hp = hist["dataPoints"][0];
    EXPECT_STREQ(hp["startTimeUnixNano"].GetString(), "777") << "the default start";
    EXPECT_STREQ(hp["count"].GetString(), "10");
    EXPECT_DOUBLE_EQ(hp["sum"].GetDouble(), 7.25);
    ASSERT_EQ(hp["bucketCounts"].Size(), hp["explicitBounds"].Size() + 1);
    std::uint64_t total = 0;
    for (const auto& b : hp["bucketCounts"].GetArray()) total += std::stoull(b.GetString());
    EXPECT_EQ(total, 10u);
    EXPECT_DOUBLE_EQ(hp["explicitBounds"][2].GetDouble(), 1.0);
}

TEST(otlp_json, large_and_fractional_counter_values) {
    metrics::family c{"c", "", "", metrics::family_type::counter, {}, {}};
    metrics::point big;
    big.value = 1e300;
    metrics::point frac;
    frac.value = 0.5;
    c.points = {big, frac};
    const auto d = parse_strict(encode_metrics_request({c}, {}, 1, 1));
    const auto& pts = d["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"];
    EXPECT_DOUBLE_EQ(pts[0]["asDouble"].GetDouble(), 1e300);
    EXPECT_DOUBLE_EQ(pts[1]["asDouble"].GetDouble(), 0.5);
}

event sample_event() {
    event ev;
    ev.name = {"snakepit", "python", "call", "stop"};
    ev.measurements = {{"duration", std::int64_t{-9223372036854775807LL - 1}},
                       {"ratio", std::numeric_limits<double>::infinity()},
                       {"note", std::string("\x01\"\xff", 3)}};
    ev.metadata = {{"worker", std::string("w1")},
                   {"pid", std::int64_t{42}},
                   {"gone", nullptr},
                   {"duration", std::string("duplicate key")}};
    ev.timestamp_ns = 1700000000123456789;
    ev.correlation_id = "req-1";
    return ev;
}

TEST(otlp_json, log_record_per_event) {
    std::string rec;
    append_log_record(rec, sample_event(), 1700000000999);
    const auto d = parse_strict(encode_logs_request({rec, rec}, {{"service.name", "s"}}));
    const auto& recs = d["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    ASSERT_EQ(recs.Size(), 2u);
    const auto& r = recs[0];
    EXPECT_STREQ(r["timeUnixNano"].GetString(), "1700000000123456789");
    EXPECT_STREQ(r["observedTimeUnixNano"].GetString(), "1700000000999");
    EXPECT_EQ(r["severityNumber"].GetInt(), 9);
    EXPECT_STREQ(r["severityText"].GetString(), "INFO");
    EXPECT_STREQ(r["eventName"].GetString(), "snakepit.python.call.stop");
    EXPECT_STREQ(r["body"]["stringValue"].GetString(), "snakepit.python.call.stop");
    EXPECT_FALSE(r.HasMember("traceId")) << "req-1 is no W3C trace id";
    const auto& a = r["attributes"];
    // Two namespaces: the metadata "duration" is kept beside the measurement; null is left out.
    ASSERT_EQ(a.Size(), 7u);
    const char* keys[] = {"measurement.duration", "measurement.ratio", "measurement.note",
                          "metadata.worker",      "metadata.pid",      "metadata.duration",
                          "correlation_id"};
    for (rapidjson::SizeType i = 0; i < 7; ++i) EXPECT_STREQ(a[i]["key"].GetString(), keys[i]);
    EXPECT_STREQ(a[0]["value"]["intValue"].GetString(), "-9223372036854775808");
    EXPECT_STREQ(a[1]["value"]["doubleValue"].GetString(), "Infinity");
    EXPECT_EQ(std::string(a[2]["value"]["stringValue"].GetString()), "\x01\"\xEF\xBF\xBD");
    EXPECT_STREQ(a[3]["value"]["stringValue"].GetString(), "w1");
    EXPECT_STREQ(a[4]["value"]["intValue"].GetString(), "42");
    EXPECT_STREQ(a[5]["value"]["stringValue"].GetString(), "duplicate key");
    EXPECT_STREQ(a[6]["value"]["stringValue"].GetString(), "req-1");
    for (const auto& kv : a.GetArray())
        EXPECT_GT(kv["value"].MemberCount(), 0u) << kv["key"].GetString() << ": no empty AnyValue";
}

TEST(otlp_json, null_correlation_id_in_metadata_is_left_out) {
    event ev;
    ev.name = {"a"};
    ev.metadata = {{"correlation_id", nullptr}, {"node", std::string("n1")}};
    std::string rec;
    append_log_record(rec, ev, 1);
    const auto d = parse_strict(rec);
    ASSERT_EQ(d["attributes"].Size(), 1u);
    EXPECT_STREQ(d["attributes"][0]["key"].GetString(), "metadata.node");
    EXPECT_EQ(rec.find("{}"), std::string::npos) << rec;
}

TEST(otlp_json, correlation_id_attribute_and_trace_id) {
    event ev;
    ev.name = {"a"};
    ev.correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    std::string rec;
    append_log_record(rec, ev, 1);
    const auto d = parse_strict(rec);
    EXPECT_FALSE(d.HasMember("timeUnixNano")) << "no event timestamp: left out";
    EXPECT_STREQ(d["traceId"].GetString(), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_STREQ(d["attributes"][0]["key"].GetString(), "correlation_id");
    EXPECT_STREQ(d["attributes"][0]["value"]["stringValue"].GetString(),
                 "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_TRUE(is_w3c_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
    EXPECT_FALSE(is_w3c_trace_id("00000000000000000000000000000000"));
    EXPECT_FALSE(is_w3c_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
    EXPECT_FALSE(is_w3c_trace_id("4bf92f3577b34da6a3ce929d0e0e473"));
}

TEST(otlp_json, partial_success) {
    std::string msg;
    EXPECT_EQ(read_partial_success(
                  R"({"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"bad"}})",
                  "rejectedLogRecords", msg),
              3u);
    EXPECT_EQ(msg, "bad");
    EXPECT_EQ(read_partial_success(R"({"partialSuccess":{"rejectedDataPoints":2}})",
                                   "rejectedDataPoints", msg),
              2u);
    EXPECT_EQ(read_partial_success(R"({"partialSuccess":{}})", "rejectedLogRecords", msg), 0u);
    EXPECT_EQ(read_partial_success("{}", "rejectedLogRecords", msg), 0u);
    EXPECT_EQ(read_partial_success("", "rejectedLogRecords", msg), 0u);
    EXPECT_EQ(read_partial_success("\x0a\x02", "rejectedLogRecords", msg), 0u);
}

}  // namespace
}  // namespace telecap::exporting
