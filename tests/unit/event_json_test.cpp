// event_json: the output contract (one JSON object per line, valid UTF-8, stable key order).
#include "capture/event_json.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace telecap {
namespace {

using namespace std::string_literals;

event sample_event() {
    event ev;
    ev.name = {"snakepit", "python", "tool", "execution", "stop"};
    ev.measurements = {{"duration", std::int64_t{1500}},
                       {"ratio", 0.25},
                       {"count", std::int64_t{1}},
                       {"label", std::string("fast")}};
    ev.metadata = {{"tool", std::string("search")},
                   {"node", std::string("host-a")},
                   {"pool_name", std::string("default")},
                   {"python_pid", std::int64_t{4242}},
                   {"correlation_id", std::string("abc")},
                   {"timestamp_ns", std::int64_t{1700000000123456789}}};
    ev.timestamp_ns = 1700000000123456789;
    ev.correlation_id = "abc";
    return ev;
}

std::string to_json(const event& ev) {
    std::string out;
    append_event_json(out, ev);
    return out;
}

std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::string json_double(double d) {
    std::string out;
    append_json_double(out, d);
    return out;
}

// Parses `text` strictly (RapidJSON validating UTF-8); "" on success, else the error.
std::string strict_parse_error(const std::string& text, rapidjson::Document& doc) {
    doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseFullPrecisionFlag>(
        text.data(), text.size());
    if (!doc.HasParseError()) return "";
    return std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at " +
           std::to_string(doc.GetErrorOffset());
}

TEST(EventJson, ExactOutputContract) {
    EXPECT_EQ(to_json(sample_event()),
              R"({"event":["snakepit","python","tool","execution","stop"],)"
              R"("measurements":{"duration":1500,"ratio":0.25,"count":1,"label":"fast"},)"
              R"("metadata":{"tool":"search","node":"host-a","pool_name":"default",)"
              R"("python_pid":4242,"correlation_id":"abc","timestamp_ns":1700000000123456789},)"
              R"("timestamp_ns":1700000000123456789,"correlation_id":"abc"})"
              "\n");
}

TEST(EventJson, NullCorrelationIdAndEmptyMaps) {
    event ev;
    ev.name = {"a"};
    ev.metadata = {{"correlation_id", nullptr}};
    ev.timestamp_ns = -5;
    EXPECT_EQ(to_json(ev),
              R"({"event":["a"],"measurements":{},"metadata":{"correlation_id":null},)"
              R"("timestamp_ns":-5,"correlation_id":null})"
              "\n");
}

TEST(EventJson, AppendsAfterExistingText) {
    std::string out = "prefix|";
    event ev;
    ev.name = {"a"};
    append_event_json(out, ev);
    append_event_json(out, ev);
    const std::string one =
        R"({"event":["a"],"measurements":{},"metadata":{},"timestamp_ns":0,"correlation_id":null})"
        "\n";
    EXPECT_EQ(out, "prefix|" + one + one);
}

TEST(EventJson, KeyOrderIsStable) {
    rapidjson::Document doc;
    const std::string text = to_json(sample_event());
    ASSERT_EQ(strict_parse_error(text, doc), "");
    ASSERT_TRUE(doc.IsObject());
    const char* expected[] = {"event", "measurements", "metadata", "timestamp_ns",
                              "correlation_id"};
    std::size_t i = 0;
    for (const auto& m : doc.GetObject()) {
        ASSERT_LT(i, std::size(expected));
        EXPECT_STREQ(m.name.GetString(), expected[i++]);
    }
    EXPECT_EQ(i, std::size(expected));
    // Members keep the event's order.
    std::vector<std::string> mkeys;
    for (const auto& m : doc["metadata"].GetObject()) mkeys.emplace_back(m.name.GetString());
    EXPECT_EQ(mkeys, (std::vector<std::string>{"tool", "node", "pool_name", "python_pid",
                                               "correlation_id", "timestamp_ns"}));
    EXPECT_EQ(doc["timestamp_ns"].GetInt64(), 1700000000123456789);
    EXPECT_TRUE(doc["measurements"]["duration"].IsInt64());
    EXPECT_TRUE(doc["measurements"]["ratio"].IsDouble());
}

TEST(EventJson, NonFiniteDoublesAsStrings) {
    EXPECT_EQ(json_double(std::numeric_limits<double>::quiet_NaN()), "\"NaN\"");
    EXPECT_EQ(json_double(-std::numeric_limits<double>::quiet_NaN()), "\"NaN\"");
    EXPECT_EQ(json_double(std::numeric_limits<double>::infinity()), "\"Infinity\"");
    EXPECT_EQ(json_double(-std::numeric_limits<double>::infinity()), "\"-Infinity\"");
    event ev;
    ev.name = {"a"};
    ev.measurements = {{"n", std::numeric_limits<double>::quiet_NaN()},
                       {"p", std::numeric_limits<double>::infinity()},
                       {"m", -std::numeric_limits<double>::infinity()}};
    const std::string text = to_json(ev);
    EXPECT_NE(text.find(R"("measurements":{"n":"NaN","p":"Infinity","m":"-Infinity"})"),
              std::string::npos)
        << text;
    rapidjson::Document doc;
    EXPECT_EQ(strict_parse_error(text, doc), "");  // strict JSON: no bare NaN
}

TEST(EventJson, DoublesKeepADecimalPointOrExponent) {
    EXPECT_EQ(json_double(2.0), "2.0");
    EXPECT_EQ(json_double(0.0), "0.0");
    EXPECT_EQ(json_double(-0.0), "-0.0");
    EXPECT_EQ(json_double(-3.0), "-3.0");
    EXPECT_EQ(json_double(1.5), "1.5");
    EXPECT_EQ(json_double(0.1), "0.1");
    EXPECT_EQ(json_double(123456789.0), "123456789.0");
    const std::string big = json_double(1e300);
    EXPECT_NE(big.find_first_of(".e"), std::string::npos) << big;
    EXPECT_EQ(std::strtod(big.c_str(), nullptr), 1e300);
    const std::string tiny = json_double(5e-324);
    EXPECT_EQ(std::strtod(tiny.c_str(), nullptr), 5e-324);
    // Every double reads back as a double, exactly (shortest round-trip form).
    for (double d : {1.0 / 3, 2.5e-8, 9007199254740993.0, 1e16, 1e22, 6.02214076e23}) {
        const std::string t = json_double(d);
        rapidjson::Document doc;
        ASSERT_EQ(strict_parse_error(t, doc), "") << t;
        EXPECT_TRUE(doc.IsDouble()) << t;
        EXPECT_EQ(doc.GetDouble(), d) << t;
    }
}

TEST(EventJson, Int64Extremes) {
    event ev;
    ev.name = {"a"};
    ev.measurements = {{"max", std::numeric_limits<std::int64_t>::max()},
                       {"min", std::numeric_limits<std::int64_t>::min()}};
    const std::string text = to_json(ev);
    EXPECT_NE(text.find(R"({"max":9223372036854775807,"min":-9223372036854775808})"),
              std::string::npos)
        << text;
}

TEST(EventJson, ControlCharactersAreEscaped) {
    EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(json_string("\n\r\t\b\f"), R"("\n\r\t\b\f")");
    EXPECT_EQ(json_string("\x01\x1f"), R"("\u0001\u001f")");
    EXPECT_EQ(json_string("a\0b"s), R"("a\u0000b")");
    EXPECT_EQ(json_string("\x7f"), "\"\x7f\"");  // DEL needs no escape in JSON
    EXPECT_EQ(json_string("/"), "\"/\"");
    EXPECT_EQ(json_string(""), "\"\"");
    // Every byte below 0x20 comes out escaped, never raw.
    for (int c = 0; c < 0x20; ++c) {
        const std::string out = json_string(std::string(1, static_cast<char>(c)));
        for (char o : out) EXPECT_GE(static_cast<unsigned char>(o), 0x20u) << "byte " << c;
        rapidjson::Document doc;
        ASSERT_EQ(strict_parse_error(out, doc), "") << "byte " << c;
        EXPECT_EQ(std::string(doc.GetString(), doc.GetStringLength()),
                  std::string(1, static_cast<char>(c)));
    }
}

TEST(EventJson, ValidUtf8IsKeptAsIs) {
    const std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF";
    EXPECT_EQ(json_string(s), "\"" + s + "\"");
}

TEST(EventJson, InvalidUtf8BecomesReplacementCharacter) {
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(json_string("a\xff" "b"), "\"a" + fffd + "b\"");
    EXPECT_EQ(json_string("\xc0\xaf"), "\"" + fffd + fffd + "\"");        // overlong
    EXPECT_EQ(json_string("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // surrogate
    EXPECT_EQ(json_string("\xf4\x90\x80\x80"),
              "\"" + fffd + fffd + fffd + fffd + "\"");  // above U+10FFFF
    // A truncated sequence at the end, then valid text after a bad byte.
    const std::string t = json_string("ok\xe2\x82");
    EXPECT_EQ(t.substr(0, 3), "\"ok");
    EXPECT_NE(t.find(fffd), std::string::npos);
    EXPECT_EQ(json_string("\x80\xC3\xA9"), "\"" + fffd + "\xC3\xA9\"");
}

TEST(EventJson, OutputIsAlwaysValidUtf8AndParseable) {
    // Every single byte, every pair of high bytes, in keys and values.
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    std::vector<std::string> samples{all, "\xff\xfe", "\xe2\x82", "\xf0\x9f\x98", "\xc3"};
    for (int a = 0x80; a < 0x100; a += 7)
        for (int b = 0; b < 0x100; b += 13)
            samples.push_back(std::string{static_cast<char>(a), static_cast<char>(b)});
    for (const auto& s : samples) {
        event ev;
        ev.name = {s, "x"};
        ev.measurements = {{s, s}};
        ev.metadata = {{"k" + s, s}};
        ev.correlation_id = s;
        const std::string text = to_json(ev);
        ASSERT_EQ(text.back(), '\n');
        EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line per event";
        rapidjson::Document doc;
        ASSERT_EQ(strict_parse_error(text, doc), "") << testing::PrintToString(s);
        ASSERT_TRUE(doc.IsObject());
        EXPECT_EQ(doc["event"].Size(), 2u);
    }
}

TEST(EventJson, ValidStringsRoundTripThroughAParser) {
    const std::string s = "tab\there \"quoted\" back\\slash \xC3\xA9 \x01 end";
    rapidjson::Document doc;
    const std::string text = json_string(s);
    ASSERT_EQ(strict_parse_error(text, doc), "");
    EXPECT_EQ(std::string(doc.GetString(), doc.GetStringLength()), s);
}

}  // namespace
}  // namespace telecap
