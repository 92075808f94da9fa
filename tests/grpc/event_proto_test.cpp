// The event -> TelemetryEvent table of `-o grpc` (bridge/event_proto.hpp): what a Snakepit
// gRPC worker would have put on the wire for the same emit.

#include "bridge/event_proto.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

namespace telecap::bridge {
namespace {

event make_event(std::vector<std::string> name) {
    event ev;
    ev.name = std::move(name);
    ev.timestamp_ns = 1700000000000000123;
    return ev;
}

std::map<std::string, std::string> metadata_of(const pb::TelemetryEvent& m) {
    return {m.metadata().begin(), m.metadata().end()};
}

TEST(EventProto, PartsAreTheWireNameSplitOnDots) {
    auto ev = make_event({"snakepit", "python", "tool", "execution", "start"});
    pb::TelemetryEvent m;
    to_proto(ev, "tool.execution.start", m);
    ASSERT_EQ(m.event_parts_size(), 3);
    EXPECT_EQ(m.event_parts(0), "tool");
    EXPECT_EQ(m.event_parts(1), "execution");
    EXPECT_EQ(m.event_parts(2), "start");
    EXPECT_EQ(m.timestamp_ns(), 1700000000000000123);
}

TEST(EventProto, MeasurementValuesKeepTheirType) {
    auto ev = make_event({"snakepit", "python", "call", "stop"});
    // A bool arrives normalized to 0/1 (as the gRPC encoder does), so it is an int here.
    ev.measurements = {{"count", std::int64_t{1}},
                       {"duration", 2.5},
                       {"bytes", std::string("12k")},
                       {"collected", std::int64_t{1}},
                       {"rss_bytes", std::numeric_limits<std::int64_t>::min()},
                       {"cpu_percent", std::numeric_limits<double>::infinity()}};
    pb::TelemetryEvent m;
    to_proto(ev, "python.call.stop", m);
    const auto& ms = m.measurements();
    ASSERT_EQ(ms.size(), 6u);
    EXPECT_EQ(ms.at("count").value_case(), pb::TelemetryValue::kIntValue);
    EXPECT_EQ(ms.at("count").int_value(), 1);
    EXPECT_EQ(ms.at("duration").value_case(), pb::TelemetryValue::kFloatValue);
    EXPECT_DOUBLE_EQ(ms.at("duration").float_value(), 2.5);
    EXPECT_EQ(ms.at("bytes").value_case(), pb::TelemetryValue::kStringValue);
    EXPECT_EQ(ms.at("bytes").string_value(), "12k");
    EXPECT_EQ(ms.at("collected").int_value(), 1);
    EXPECT_EQ(ms.at("rss_bytes").int_value(), std::numeric_limits<std::int64_t>::min());
    EXPECT_TRUE(std::isinf(ms.at("cpu_percent").float_value()));
}

TEST(EventProto, MetadataOfEveryTypeBecomesStrings) {
    auto ev = make_event({"snakepit", "python", "call", "start"});
    // As the normalizer leaves them: the worker's values str()'d already, then the host's
    // enrichment with integers and a null correlation id.
    ev.metadata = {{"flag", std::string("True")},
                   {"none", std::string("None")},
                   {"ratio", std::string("1.5")},
                   {"tool", std::string("search")},
                   {"node", std::string("host1")},
                   {"worker_id", std::string("p-0")},
                   {"pool_name", std::string("p")},
                   {"python_pid", std::int64_t{4242}},
                   {"correlation_id", nullptr},
                   {"timestamp_ns", std::int64_t{17}},
                   {"odd", nullptr}};
    pb::TelemetryEvent m;
    to_proto(ev, "python.call.start", m);
    const std::map<std::string, std::string> want{
        {"flag", "True"},   {"none", "None"},       {"ratio", "1.5"},
        {"tool", "search"}, {"node", "host1"},      {"worker_id", "p-0"},
        {"pool_name", "p"}, {"python_pid", "4242"}, {"odd", "None"}};
    // correlation_id and timestamp_ns are the message's own fields, not metadata.
    EXPECT_EQ(metadata_of(m), want);
}

TEST(EventProto, CorrelationIdIsEmptyWhenNone) {
    auto ev = make_event({"snakepit", "python", "call", "start"});
    pb::TelemetryEvent m;
    to_proto(ev, "python.call.start", m);
    EXPECT_EQ(m.correlation_id(), "");
    EXPECT_TRUE(m.metadata().empty());
    ev.correlation_id = "c-1";
    to_proto(ev, "python.call.start", m);
    EXPECT_EQ(m.correlation_id(), "c-1");
    ev.correlation_id = "";  // cannot come from the normalizer, but is still ""
    to_proto(ev, "python.call.start", m);
    EXPECT_EQ(m.correlation_id(), "");
}

TEST(EventProto, ReusedMessageIsClearedFirst) {
    auto a = make_event({"snakepit", "python", "call", "start"});
    a.measurements = {{"count", std::int64_t{1}}};
    a.metadata = {{"tool", std::string("x")}};
    pb::TelemetryEvent m;
    to_proto(a, "python.call.start", m);
    auto b = make_event({"snakepit", "python", "gc", "completed"});
    to_proto(b, "python.gc.completed", m);
    EXPECT_EQ(m.event_parts_size(), 3);
    EXPECT_TRUE(m.measurements().empty());
    EXPECT_TRUE(m.metadata().empty());
}

}  // namespace
}  // namespace telecap::bridge
