// event_json: the output contract (one JSON object per line, valid UTF-8, stable key order).
#include "capture/event_json.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "capture/utf8.hpp"

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
    EXPECT_EQ(to_json(ev), R"({"event":["a"],"measurements":{},"metadata":{"correlation_id":null},)"
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
    EXPECT_EQ(json_string("a\xff"
                          "b"),
              "\"a" + fffd + "b\"");
    EXPECT_EQ(json_string("\xc0\xaf"), "\"" + fffd + fffd + "\"");             // overlong
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

// event_json_writer: the batch writer must match append_event_json byte for byte.

std::string written(event_json_writer& w) {
    std::string out;
    w.take(out);
    return out;
}

TEST(EventJsonWriter, SameBytesAsAppendEventJsonAndTakeStartsOver) {
    event_json_writer w;
    const event ev = sample_event();
    w.append(ev);
    w.append(ev);
    EXPECT_EQ(w.size(), 2 * to_json(ev).size());
    EXPECT_EQ(written(w), to_json(ev) + to_json(ev));
    EXPECT_TRUE(w.empty());
    w.append(ev);
    EXPECT_EQ(written(w), to_json(ev));
}

// One rendering per dispatch (shared_event_json): a writer copies the line published for the
// same event in the same dispatch scope, and nothing else: not outside a scope, not for another
// event, not after the scope ends.
TEST(SharedEventJson, CopiesOnlyTheLinePublishedForThatEventInThatDispatch) {
    const event ev = sample_event();
    const event other = sample_event();  // the same value at another address
    const std::string marked = "{\"published\":1}\n";

    shared_event_json::publish(ev, marked);  // outside a dispatch: ignored
    EXPECT_TRUE(shared_event_json::find(ev).empty());
    {
        const shared_event_json::dispatch_scope scope;
        shared_event_json::publish(ev, marked);
        EXPECT_EQ(shared_event_json::find(ev), marked);
        EXPECT_TRUE(shared_event_json::find(other).empty());

        event_json_writer w;
        EXPECT_EQ(w.append_shared(ev), marked);             // copied, not rendered again
        EXPECT_EQ(w.append_shared(other), to_json(other));  // rendered, and now published
        EXPECT_EQ(shared_event_json::find(other), to_json(other));
        EXPECT_TRUE(shared_event_json::find(ev).empty());
        std::string scratch;
        EXPECT_EQ(shared_event_json_line(other, scratch), to_json(other));
        EXPECT_TRUE(scratch.empty());  // the published line, not a rendering of its own
        // (Taking the writer's batch ends its line's life: the publisher's contract is to keep
        // it in place until its next event.)
        EXPECT_EQ(written(w), marked + to_json(other));
        {
            const shared_event_json::dispatch_scope nested;  // a dispatch inside one
            EXPECT_TRUE(shared_event_json::find(other).empty());
        }
    }
    EXPECT_TRUE(shared_event_json::find(ev).empty());
    EXPECT_TRUE(shared_event_json::find(other).empty());
    event_json_writer w;
    EXPECT_EQ(w.append_shared(ev), to_json(ev));  // outside a dispatch: rendered, not published
    EXPECT_TRUE(shared_event_json::find(ev).empty());
}

// The top-level timestamp is copied from the metadata's last integer only when they are equal:
// a metadata timestamp that differs (a worker's own), or a last integer of another key, never
// stands in for the event's.
TEST(EventJson, TopLevelTimestampIsTheEventsWhateverTheMetadataEndsWith) {
    event ev = sample_event();
    ev.metadata.back().second = std::int64_t{1700000000123456788};  // one less
    EXPECT_NE(to_json(ev).find(",\"timestamp_ns\":1700000000123456788},\"timestamp_ns\":"
                               "1700000000123456789,"),
              std::string::npos)
        << to_json(ev);
    ev.metadata = {{"python_pid", std::int64_t{4242}}, {"tool", std::string("search")}};
    EXPECT_NE(to_json(ev).find("\"tool\":\"search\"},\"timestamp_ns\":1700000000123456789,"),
              std::string::npos)
        << to_json(ev);
    ev.metadata = {{"shard", std::int64_t{-7}}};
    ev.timestamp_ns = -7;  // equal to the last integer: the copy gives the same digits
    EXPECT_NE(to_json(ev).find("{\"shard\":-7},\"timestamp_ns\":-7,"), std::string::npos)
        << to_json(ev);
    event_json_writer w;
    w.append(ev);
    EXPECT_EQ(written(w), to_json(ev));
}

TEST(EventJsonWriter, AlternatingNamesNeverGetAStaleHead) {
    const int ids[3] = {};
    event a, b, c;
    a.name = {"snakepit", "python", "call", "stop"};
    a.name_id = &ids[0];
    b.name = {"snakepit", "python", "tool", "execution", "stop"};
    b.name_id = &ids[1];
    c.name = {"other"};  // no name_id: never cached
    event_json_writer w;
    std::string expected;
    for (int i = 0; i < 5; ++i)
        for (const event* e : {&a, &b, &c, &a, &a, &c, &b}) {
            w.append(*e);
            expected += to_json(*e);
        }
    EXPECT_EQ(written(w), expected);
    EXPECT_EQ(expected.substr(0, expected.find('\n') + 1), to_json(a));
}

TEST(EventJsonWriter, AnIdReusedForAnotherNameIsNotTrusted) {
    // A catalog freed and another one allocated at the same address: same id, other name.
    const int id = 0;
    event ev;
    ev.name_id = &id;
    event_json_writer w;
    for (const auto& name : {std::vector<std::string>{"a", "b"},
                             {"a", "c"},
                             {"x", "b"},
                             {"a", "b", "c"},
                             {"a"},
                             {"a", "b"}}) {
        ev.name = name;
        w.append(ev);
        const std::string out = written(w);
        EXPECT_EQ(out, to_json(ev));
        std::string head = "{\"event\":[";
        for (std::size_t i = 0; i < name.size(); ++i) head += (i ? ",\"" : "\"") + name[i] + "\"";
        EXPECT_EQ(out.substr(0, head.size() + 1), head + "]") << out;
    }
}

TEST(EventJsonWriter, ManyNamesEvictAndStayCorrect) {
    // More ids than the head table holds: it is cleared and filled again.
    std::vector<int> ids(300);
    event_json_writer w;
    std::string expected;
    for (int round = 0; round < 3; ++round)
        for (std::size_t i = 0; i < ids.size(); i += (round + 1)) {
            event ev;
            ev.name = {"n" + std::to_string(i)};
            ev.name_id = &ids[i];
            ev.timestamp_ns = static_cast<std::int64_t>(i);
            w.append(ev);
            expected += to_json(ev);
        }
    EXPECT_EQ(written(w), expected);
}

TEST(EventJsonWriter, EscapedKeysInvalidUtf8AndExtremes) {
    const int id = 0;
    event ev;
    ev.name = {"we\"ird", "n\xffme"};
    ev.name_id = &id;
    ev.measurements = {{"k\"ey", std::int64_t{1}},
                       {"back\\slash\ttab", std::numeric_limits<std::int64_t>::min()},
                       {"max", std::numeric_limits<std::int64_t>::max()},
                       {"zero", std::int64_t{0}},
                       {"big", 1e21},
                       {"tiny", 5e-324},
                       {"negzero", -0.0},
                       {"tenth", 0.1},
                       {"one", 1.0},
                       {"nan", std::numeric_limits<double>::quiet_NaN()},
                       {"ninf", -std::numeric_limits<double>::infinity()},
                       {"s", std::string("caf\xC3\xA9 \xC3(\x01")}};
    ev.metadata = {
        {"\xe2\x82", std::string("v")}, {"ok", std::int64_t{-1}}, {"correlation_id", nullptr}};
    ev.timestamp_ns = std::numeric_limits<std::int64_t>::min();
    const std::string expected =
        R"({"event":["we\"ird","n)"
        "\xEF\xBF\xBD"
        R"(me"],"measurements":{"k\"ey":1,)"
        R"("back\\slash\ttab":-9223372036854775808,"max":9223372036854775807,"zero":0,)"
        R"("big":1e+21,"tiny":5e-324,"negzero":-0.0,"tenth":0.1,"one":1.0,"nan":"NaN",)"
        R"("ninf":"-Infinity","s":"caf)"
        "\xC3\xA9 \xEF\xBF\xBD"
        R"((\u0001"},)"
        R"("metadata":{")"
        "\xEF\xBF\xBD\xEF\xBF\xBD"
        R"(":"v","ok":-1,"correlation_id":null},)"
        R"("timestamp_ns":-9223372036854775808,"correlation_id":null})"
        "\n";
    EXPECT_EQ(to_json(ev), expected);
    event_json_writer w;
    w.append(ev);
    w.append(ev);  // the second one from the cached head
    EXPECT_EQ(written(w), expected + expected);
}

TEST(EventJson, DoublesByteForByte) {
    EXPECT_EQ(json_double(1e21), "1e+21");
    EXPECT_EQ(json_double(1e20), "1e+20");  // shortest form: the exponent is shorter
    EXPECT_EQ(json_double(123456.0), "123456.0");
    EXPECT_EQ(json_double(5e-324), "5e-324");
    EXPECT_EQ(json_double(-0.0), "-0.0");
    EXPECT_EQ(json_double(0.1), "0.1");
    EXPECT_EQ(json_double(1.0), "1.0");
    EXPECT_EQ(json_double(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
    EXPECT_EQ(json_double(std::numeric_limits<double>::quiet_NaN()), "\"NaN\"");
}

TEST(EventJson, IntegersMatchToString) {
    std::vector<std::int64_t> values{0, std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::max()};
    for (std::int64_t p = 1; p <= std::numeric_limits<std::int64_t>::max() / 10; p *= 10)
        for (std::int64_t v : {p - 1, p, p + 1, -p, -p + 1, -p - 1, 9 * p, 10 * p - 1})
            values.push_back(v);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 10000; ++i)
        values.push_back(static_cast<std::int64_t>(rng() >> (rng() % 64)) * (i % 2 ? 1 : -1));
    for (std::int64_t v : values) {
        event ev;
        ev.name = {"a"};
        ev.timestamp_ns = v;
        const std::string text = to_json(ev);
        const std::string want = "\"timestamp_ns\":" + std::to_string(v) + ",";
        ASSERT_NE(text.find(want), std::string::npos) << v << ": " << text;
    }
}

// The escaping rule, one byte at a time, for comparison with the word-wide escaper.
std::string reference_json_string(std::string_view s) {
    std::string out = "\"";
    const auto* q = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = q + s.size();
    while (q < end) {
        const unsigned char c = *q;
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(q, end);
            out += n ? std::string(reinterpret_cast<const char*>(q), n) : "\xEF\xBF\xBD";
            q += n ? n : 1;
            continue;
        }
        ++q;
        if (c == '"')
            out += "\\\"";
        else if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\b')
            out += "\\b";
        else if (c == '\f')
            out += "\\f";
        else if (c < 0x20) {
            char u[8];
            std::snprintf(u, sizeof u, "\\u%04x", c);
            out += u;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

TEST(EventJson, EscaperMatchesAByteByByteReference) {
    // Special bytes at every position of strings around the 8-byte word size, and
    // sequences cut at word edges.
    const std::string alphabet = std::string("ab\"\\\n\x01\x1f\x7f ~", 10) + "\0"s +
                                 "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xff\x80\xed\xa0";
    std::mt19937 rng(11);
    for (int i = 0; i < 20000; ++i) {
        const std::size_t len = rng() % 40;
        std::string s;
        for (std::size_t j = 0; j < len; ++j) s += alphabet[rng() % alphabet.size()];
        ASSERT_EQ(json_string(s), reference_json_string(s)) << testing::PrintToString(s);
    }
    for (std::size_t len = 0; len < 40; ++len)
        for (std::size_t at = 0; at < len; ++at) {
            std::string s(len, 'x');
            for (const char c : {'"', '\\', '\x00', '\x1f', '\xc3', '\xff'}) {
                s[at] = c;
                ASSERT_EQ(json_string(s), reference_json_string(s)) << len << " " << at;
            }
        }
}

// The strings of an event (name parts, keys, values, the correlation id) go through the
// writer's 16-byte path when shorter than 16 bytes: the same bytes as the reference, whether
// the string sits in its local buffer or in a heap block whose stale bytes past its end hold
// bytes to escape (those must be masked off, never copied).
TEST(EventJson, EventStringsMatchTheReferenceInEveryPlace) {
    // `make` gives a fresh copy of the string each time: each place of the event owns one, moved
    // in, so a heap string stays a heap string.
    const auto render = [](const std::function<std::string()>& make) {
        event ev;
        ev.name.push_back(make());
        ev.name.push_back("x");
        ev.measurements.emplace_back(make(), make());
        ev.metadata.emplace_back(make(), make());
        ev.timestamp_ns = 1;
        ev.correlation_id = make();
        return ev;
    };
    const auto expected = [](const std::string& s) {
        const std::string j = reference_json_string(s);
        return "{\"event\":[" + j + ",\"x\"],\"measurements\":{" + j + ":" + j +
               "},\"metadata\":{" + j + ":" + j + "},\"timestamp_ns\":1,\"correlation_id\":" + j +
               "}\n";
    };
    const auto check = [&](const event& ev, const std::string& s) {
        std::string out;
        append_event_json(out, ev);
        ASSERT_EQ(out, expected(s)) << testing::PrintToString(s);
        event_json_writer w;
        w.append(ev);
        ASSERT_EQ(written(w), expected(s)) << testing::PrintToString(s);
    };
    for (std::size_t len = 0; len < 20; ++len) {
        const auto plain = [&](const std::string& s) { check(render([&] { return s; }), s); };
        plain(std::string(len, 'k'));
        for (std::size_t at = 0; at < len; ++at)
            for (const char c : {'"', '\\', '\x00', '\x1f', '\x7f', '\xc3', '\xff'}) {
                std::string s(len, 'k');
                s[at] = c;
                plain(s);
            }
        // Heap strings cut short: their blocks still hold quotes and control bytes past size().
        const auto cut = [len] {
            std::string c(64, '"');
            c[40] = '\x01';
            c.replace(0, len, std::string(len, 'v'));
            c.resize(len);
            return c;
        };
        const event ev = render(cut);
        ASSERT_GT(ev.name[0].capacity(), 15u);
        ASSERT_GT(ev.metadata[0].first.capacity(), 15u);
        ASSERT_GT(std::get<std::string>(ev.metadata[0].second).capacity(), 15u);
        ASSERT_GT(ev.correlation_id->capacity(), 15u);
        check(ev, cut());
    }
}

// The writer's buffer is scratch room it never clears (resize_and_overwrite): a buffer handed
// back full of quotes and bytes that are not UTF-8 must not leak into what it writes, with
// cached heads and a repeated timestamp among the events.
TEST(EventJsonWriter, ABufferHandedBackFullOfGarbageWritesTheSameBytes) {
    event a = sample_event();
    const int id = 0;
    a.name_id = &id;
    event b = sample_event();
    b.metadata.pop_back();  // no repeated timestamp
    b.correlation_id.reset();
    const std::string want = to_json(a) + to_json(b) + to_json(a);
    event_json_writer w;
    for (int round = 0; round < 3; ++round) {
        std::string garbage(1 << 16, '"');
        for (std::size_t i = 0; i < garbage.size(); i += 3) garbage[i] = '\xff';
        w.take(garbage);  // the writer now holds this storage
        w.append(a);
        w.append(b);
        w.append(a);
        ASSERT_EQ(written(w), want) << round;
    }
}

// With trust_name_ids() the cached head is used for its id without comparing names: the
// owner's promise that an id never names another event is what makes it right.
TEST(EventJsonWriter, TrustedIdsSkipTheNameCheck) {
    const int id = 0;
    event a;
    a.name = {"a", "b"};
    a.name_id = &id;
    event other = a;
    other.name = {"c"};
    event_json_writer trusting;
    trusting.trust_name_ids();
    trusting.append(a);
    trusting.append(other);
    const std::string out = written(trusting);
    EXPECT_EQ(out, to_json(a) + to_json(a)) << "the head of the id's first name, unchecked";
    event_json_writer checking;
    checking.append(a);
    checking.append(other);
    EXPECT_EQ(written(checking), to_json(a) + to_json(other));
}

// Key fragments (event_json_writer, keyed by event::keys_id): kept from the second event in a
// row with a keys_id, copied for the events after it; the bytes are append_event_json's in
// every case: keys escaped, keys longer than a fragment's fixed copy, keys that change with
// their id, ids that alternate, and an id whose event has fewer entries than the one kept.
TEST(EventJsonWriter, KeyFragmentsGiveTheSameBytesAsWritingEachKey) {
    const int name = 0;
    const auto make = [&](std::uint64_t keys_id, std::vector<std::string> mkeys,
                          std::vector<std::string> dkeys, int value) {
        event ev;
        ev.name = {"snakepit", "python", "call", "stop"};
        ev.name_id = &name;
        ev.keys_id = keys_id;
        for (std::size_t i = 0; i < mkeys.size(); ++i) {
            measurement_value v = std::int64_t{value + static_cast<int>(i)};
            if (i % 3 == 1) v = 0.5 * value;
            if (i % 3 == 2) v = "m" + std::to_string(value);
            ev.measurements.emplace_back(mkeys[i], v);
        }
        for (std::size_t i = 0; i < dkeys.size(); ++i) {
            metadata_value v = "s\"" + std::to_string(value * 7);
            if (i % 3 == 1) v = std::int64_t{value} * 1000003;
            if (i % 3 == 2 && value % 2) v = nullptr;
            ev.metadata.emplace_back(dkeys[i], v);
        }
        ev.timestamp_ns = 1700000000000000000 + value;
        if (value % 2) ev.correlation_id = "c" + std::to_string(value);
        return ev;
    };
    const std::string long_key(45, 'k');  // past padded32()'s two moves
    const std::vector<event> events = {
        make(1, {"duration", "count"}, {"tool", "node", "timestamp_ns"}, 1),
        make(1, {"duration", "count"}, {"tool", "node", "timestamp_ns"}, 2),  // kept
        make(1, {"duration", "count"}, {"tool", "node", "timestamp_ns"}, 3),  // copied
        make(1, {"duration", "count"}, {"tool", "node", "timestamp_ns"}, 4),
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 5),  // escaped, long
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 6),
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 7),
        make(3, {}, {"only"}, 8),
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 9),  // 2 and 3 alternate
        make(3, {}, {"only"}, 10),
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 11),
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 12),
        make(2, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 13),
        make(2, {"a\"b"}, {long_key}, 14),  // id 2 with fewer entries: never its fragments
        make(0, {"a\"b", "\x01\xff"}, {long_key, "\xc3\xa9", ""}, 15),  // no id
        make(4, {"x", "y", "z", "w"}, {"p", "q", "r", "s", "t", "u"}, 16),
        make(4, {"x", "y", "z", "w"}, {"p", "q", "r", "s", "t", "u"}, 17),
        make(4, {"x", "y", "z", "w"}, {"p", "q", "r", "s", "t", "u"}, 18),
    };
    for (const bool trusted : {false, true}) {
        event_json_writer w;
        w.trust_keys_ids();
        if (trusted) w.trust_name_ids();
        std::string expected;
        for (int round = 0; round < 3; ++round)
            for (const event& ev : events) {
                w.append(ev);
                expected += to_json(ev);
            }
        EXPECT_EQ(written(w), expected);
    }
}

// A writer whose owner does not promise that keys_id names the keys (a library user's events,
// edited after normalizing) writes every key: an id that lies costs nothing but speed.
TEST(EventJsonWriter, KeysIdsAreUsedOnlyWhereTrusted) {
    const int name = 0;
    event a;
    a.name = {"x"};
    a.name_id = &name;
    a.keys_id = 7;
    a.measurements = {{"count", std::int64_t{1}}};
    a.metadata = {{"tool", std::string("t")}};
    event edited = a;  // its keys changed, its keys_id not cleared
    edited.measurements[0].first = "total";
    edited.metadata[0].first = "mode";
    std::string expected;
    event_json_writer w;
    for (const event* ev : {&a, &a, &a, &edited, &edited}) {
        w.append(*ev);
        expected += to_json(*ev);
    }
    EXPECT_EQ(written(w), expected);
    // Trusted, the id is taken at its word (the contract event.hpp states).
    event_json_writer trusting;
    trusting.trust_keys_ids();
    for (const event* ev : {&a, &a, &a}) trusting.append(*ev);
    trusting.append(edited);
    const std::string out = written(trusting);
    EXPECT_EQ(out.substr(out.rfind("{\"event\"")), to_json(a)) << "a's keys, edited's values";
}

}  // namespace
}  // namespace telecap
