// append_event_wire (bridge/event_wire.hpp): the bytes it writes parse, with protobuf's own
// parser, into exactly the message to_proto() builds, for every kind of value and size.

#include "bridge/event_wire.hpp"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "bridge/event_proto.hpp"

namespace telecap::bridge {
namespace {

// The message protobuf parses from append_event_wire's bytes equals to_proto's.
void expect_same_message(const event& ev, std::string_view wire) {
    pb::TelemetryEvent expected;
    to_proto(ev, wire, expected);
    std::string bytes = "prefix";  // appended: what was there stays
    append_event_wire(bytes, ev, wire);
    ASSERT_EQ(bytes.substr(0, 6), "prefix");
    pb::TelemetryEvent got;
    ASSERT_TRUE(got.ParseFromString(bytes.substr(6)));
    std::string diff;
    google::protobuf::util::MessageDifferencer d;
    d.ReportDifferencesToString(&diff);
    EXPECT_TRUE(d.Compare(expected, got)) << diff;
}

event sample() {
    event ev;
    ev.name = {"snakepit", "python", "tool", "execution", "stop"};
    ev.measurements = {{"duration", std::int64_t{817077202}},
                       {"ratio", 0.25},
                       {"zero", std::int64_t{0}},
                       {"nothing", 0.0},
                       {"empty", std::string()},
                       {"label", std::string("fast")},
                       {"min", std::numeric_limits<std::int64_t>::min()},
                       {"max", std::numeric_limits<std::int64_t>::max()},
                       {"minus", std::int64_t{-1}},
                       {"inf", -std::numeric_limits<double>::infinity()},
                       {"tiny", std::numeric_limits<double>::denorm_min()}};
    ev.metadata = {{"tool", std::string("search")},
                   {"", std::string("empty key")},
                   {"unicode", std::string("h\xC3\xA9llo \xE2\x82\xAC")},
                   {"python_pid", std::int64_t{4242}},
                   {"negative", std::int64_t{-17}},
                   {"none", nullptr},
                   {"node", std::string("host-a")},
                   {"correlation_id", std::string("abc")},
                   {"timestamp_ns", std::int64_t{1700000000123456789}}};
    ev.timestamp_ns = 1700000000123456789;
    ev.correlation_id = "abc";
    return ev;
}

TEST(EventWire, EveryValueKindParsesIntoTheMessageToProtoBuilds) {
    expect_same_message(sample(), "tool.execution.stop");
}

TEST(EventWire, DefaultsAndEmptiesAsProto3WritesThem) {
    event ev;
    ev.name = {"snakepit", "python", "call", "start"};
    expect_same_message(ev, "python.call.start");  // no value, timestamp 0, no correlation
    ev.correlation_id = "";
    ev.timestamp_ns = -5;
    expect_same_message(ev, "call");   // one part
    expect_same_message(ev, "a..b.");  // empty parts are parts
}

TEST(EventWire, LongStringsTakeMultiByteLengths) {
    event ev = sample();
    ev.measurements.emplace_back(std::string(200, 'k'), std::string(300, 'v'));
    ev.metadata.emplace_back(std::string(20000, 'm'), std::string(70000, 'n'));
    ev.correlation_id = std::string(128, 'c');
    expect_same_message(ev, std::string(130, 'w') + "." + std::string(16384, 'x'));
}

TEST(EventWire, AKeyGivenTwiceEndsWithTheLastValueAsTheMap) {
    event ev = sample();
    ev.measurements.emplace_back("duration", 1.5);
    ev.metadata.emplace_back("tool", std::string("other"));
    expect_same_message(ev, "tool.execution.stop");
}

TEST(EventWire, RandomEventsParseIntoTheSameMessage) {
    std::mt19937_64 rng(7);
    const auto text = [&](std::size_t max) {
        std::string s(rng() % (max + 1), '\0');
        for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
        return s;
    };
    for (int round = 0; round < 300; ++round) {
        event ev;
        ev.name = {"snakepit", "x"};
        for (std::uint64_t i = 0, n = rng() % 6; i < n; ++i) {
            switch (rng() % 3) {
                case 0:
                    ev.measurements.emplace_back(text(12), static_cast<std::int64_t>(rng()));
                    break;
                case 1:
                    ev.measurements.emplace_back(
                        text(12), std::ldexp(double(rng() % 100000), int(rng() % 200) - 100));
                    break;
                default:
                    ev.measurements.emplace_back(text(12), text(200));
            }
        }
        for (std::uint64_t i = 0, n = rng() % 6; i < n; ++i) {
            if (rng() % 2)
                ev.metadata.emplace_back(text(12), text(300));
            else
                ev.metadata.emplace_back(text(12), static_cast<std::int64_t>(rng()));
        }
        ev.timestamp_ns = static_cast<std::int64_t>(rng());
        if (rng() % 2) ev.correlation_id = text(40);
        expect_same_message(ev, text(10) + "." + text(10));
    }
}

}  // namespace
}  // namespace telecap::bridge
