// event_parser: a telemetry payload (the line after its prefix) to a flat raw_event.
#include "capture/parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

namespace telecap {
namespace {

using namespace std::string_literals;

class ParserTest : public testing::Test {
protected:
    bool parse(std::string_view payload) {
        err = {};
        if (fresh) parser = event_parser();  // buffers sized for this payload only
        return parser.parse(payload, ev, err);
    }
    // Parses and expects a rejection with `reason`.
    void expect_reject(std::string_view payload, reject_reason reason) {
        SCOPED_TRACE(testing::PrintToString(std::string(payload)));
        EXPECT_FALSE(parse(payload));
        EXPECT_EQ(to_string(err.reason), to_string(reason)) << "detail: " << err.detail;
        EXPECT_FALSE(err.detail.empty());
    }
    const raw_member* find(const std::vector<raw_member>& v, std::string_view key) {
        for (const auto& m : v)
            if (m.key == key) return &m;
        return nullptr;
    }

    event_parser parser;
    raw_event ev;
    parse_error err;
    bool fresh = false;  // a new parser for each parse: over-reads hit the allocation's end
};

// What Python's StderrBackend writes: json.dumps with its default separators.
constexpr std::string_view python_payload =
    R"({"event": "tool.execution.stop", "measurements": {"duration": 1500, "count": 1, )"
    R"("ratio": 0.25}, "metadata": {"tool": "caf\u00e9 \ud83d\ude00", "ok": true}, )"
    R"("timestamp_ns": 1700000000123456789, "correlation_id": "abc-123"})";

TEST_F(ParserTest, PythonJsonDumpsOutput) {
    ASSERT_TRUE(parse(python_payload)) << err.detail;
    EXPECT_TRUE(ev.has_event);
    EXPECT_FALSE(ev.event_is_array);
    EXPECT_EQ(ev.event, "tool.execution.stop");
    ASSERT_EQ(ev.measurements.size(), 3u);
    EXPECT_EQ(ev.measurements[0].key, "duration");
    EXPECT_EQ(ev.measurements[0].value.kind, raw_kind::number);
    EXPECT_EQ(ev.measurements[0].value.text, "1500");
    EXPECT_EQ(ev.measurements[1].key, "count");
    EXPECT_EQ(ev.measurements[2].key, "ratio");
    EXPECT_EQ(ev.measurements[2].value.text, "0.25");
    ASSERT_EQ(ev.metadata.size(), 2u);
    EXPECT_EQ(ev.metadata[0].key, "tool");
    EXPECT_EQ(ev.metadata[0].value.kind, raw_kind::string);
    // \u00e9 is é; the surrogate pair \ud83d\ude00 is U+1F600, four bytes of UTF-8.
    EXPECT_EQ(ev.metadata[0].value.text, "caf\xC3\xA9 \xF0\x9F\x98\x80");
    EXPECT_EQ(ev.metadata[1].value.kind, raw_kind::true_);
    EXPECT_TRUE(ev.has_timestamp);
    EXPECT_EQ(ev.timestamp, "1700000000123456789");
    EXPECT_TRUE(ev.has_correlation_id);
    EXPECT_EQ(ev.correlation_id, "abc-123");
}

TEST_F(ParserTest, CompactJsonToo) {
    ASSERT_TRUE(parse(R"({"event":"python.call.start","measurements":{"count":1}})"));
    EXPECT_EQ(ev.event, "python.call.start");
    EXPECT_FALSE(ev.has_timestamp);
    EXPECT_FALSE(ev.has_correlation_id);
    EXPECT_TRUE(ev.metadata.empty());
}

TEST_F(ParserTest, BareNanAndInfinityAreAccepted) {
    ASSERT_TRUE(
        parse(R"({"event": "e", "measurements": {"a": NaN, "b": Infinity, "c": -Infinity}})"))
        << err.detail;
    ASSERT_EQ(ev.measurements.size(), 3u);
    EXPECT_EQ(ev.measurements[0].value.kind, raw_kind::number);
    EXPECT_EQ(ev.measurements[0].value.text, "NaN");
    EXPECT_EQ(ev.measurements[1].value.text, "Infinity");
    EXPECT_EQ(ev.measurements[2].value.text, "-Infinity");
}

TEST_F(ParserTest, NumbersKeepTheirText) {
    ASSERT_TRUE(parse(R"({"event": "e", "metadata": {"a": 1.5e+16, "b": -0, "c": 1E5, )"
                      R"("d": 123456789012345678901234567890}})"))
        << err.detail;
    ASSERT_EQ(ev.metadata.size(), 4u);
    EXPECT_EQ(ev.metadata[0].value.text, "1.5e+16");
    EXPECT_EQ(ev.metadata[1].value.text, "-0");
    EXPECT_EQ(ev.metadata[2].value.text, "1E5");
    EXPECT_EQ(ev.metadata[3].value.text, "123456789012345678901234567890");
}

TEST_F(ParserTest, NumberBeyondDoubleRangeIsRejectedAsInvalidJson) {
    // Documented limit (docs/contract.md): RapidJSON 1.1.0 cannot read a number beyond the
    // double range, so 1E400 is invalid_json. Python never writes one: it writes Infinity.
    ASSERT_FALSE(parse(R"({"event": "e", "metadata": {"c": 1E400}})"));
    EXPECT_EQ(err.reason, reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 33u);
}

TEST_F(ParserTest, EventAsArrayOfStrings) {
    ASSERT_TRUE(parse(R"({"event": ["tool", "execution", "start"]})"));
    EXPECT_TRUE(ev.has_event);
    EXPECT_TRUE(ev.event_is_array);
    ASSERT_EQ(ev.parts.size(), 3u);
    EXPECT_EQ(ev.parts[0], "tool");
    EXPECT_EQ(ev.parts[1], "execution");
    EXPECT_EQ(ev.parts[2], "start");
}

TEST_F(ParserTest, RepeatedEventKeyLastWins) {
    ASSERT_TRUE(parse(R"({"event": ["a", "b"], "event": "c.d"})"));
    EXPECT_FALSE(ev.event_is_array);
    EXPECT_EQ(ev.event, "c.d");
    ASSERT_TRUE(parse(R"({"event": "c.d", "event": ["x"]})"));
    EXPECT_TRUE(ev.event_is_array);
    ASSERT_EQ(ev.parts.size(), 1u);
    EXPECT_EQ(ev.parts[0], "x");
}

TEST_F(ParserTest, OtherTopLevelKeysAreIgnored) {
    ASSERT_TRUE(parse(R"({"version": 2, "extra": {"deep": [1, {"x": null}]}, "event": "e", )"
                      R"("more": [true, "s"], "measurements": {}, "zzz": null})"))
        << err.detail;
    EXPECT_EQ(ev.event, "e");
    EXPECT_TRUE(ev.measurements.empty());
    EXPECT_TRUE(ev.metadata.empty());
}

TEST_F(ParserTest, NullMapsAreEmptyAndNullOptionalsAreAbsent) {
    ASSERT_TRUE(parse(R"({"event": "e", "measurements": null, "metadata": null, )"
                      R"("timestamp_ns": null, "correlation_id": null})"));
    EXPECT_TRUE(ev.measurements.empty());
    EXPECT_TRUE(ev.metadata.empty());
    EXPECT_FALSE(ev.has_timestamp);
    EXPECT_FALSE(ev.has_correlation_id);
}

TEST_F(ParserTest, KeyNamedEventInsideAMapIsNotTheEvent) {
    expect_reject(R"({"measurements": {"event": "x"}, "metadata": {"event": "y"}})",
                  reject_reason::bad_shape);
}

TEST_F(ParserTest, MissingEventIsBadShape) {
    expect_reject(R"({"measurements": {"count": 1}})", reject_reason::bad_shape);
    expect_reject(R"({})", reject_reason::bad_shape);
}

TEST_F(ParserTest, RootNotAnObjectIsBadShape) {
    for (const char* p :
         {"[]", R"(["event"])", "\"tool.execution.start\"", "42", "null", "true", "NaN"}) {
        expect_reject(p, reject_reason::bad_shape);
    }
}

TEST_F(ParserTest, WrongTypeForEachFieldIsBadShape) {
    for (const char* p : {
             R"({"event": 5})",
             R"({"event": null})",
             R"({"event": true})",
             R"({"event": {"a": "b"}})",
             R"({"event": ["a", 1]})",
             R"({"event": ["a", null]})",
             R"({"event": ["a", ["b"]]})",
             R"({"event": ["a", {"b": "c"}]})",
             R"({"event": "e", "measurements": [1, 2]})",
             R"({"event": "e", "measurements": 1})",
             R"({"event": "e", "measurements": "count=1"})",
             R"({"event": "e", "measurements": true})",
             R"({"event": "e", "metadata": []})",
             R"({"event": "e", "metadata": "x"})",
             R"({"event": "e", "metadata": 0})",
             R"({"event": "e", "timestamp_ns": "123"})",
             R"({"event": "e", "timestamp_ns": true})",
             R"({"event": "e", "timestamp_ns": [1]})",
             R"({"event": "e", "timestamp_ns": {}})",
             R"({"event": "e", "correlation_id": 5})",
             R"({"event": "e", "correlation_id": false})",
             R"({"event": "e", "correlation_id": ["a"]})",
             R"({"event": "e", "correlation_id": {}})",
         }) {
        expect_reject(p, reject_reason::bad_shape);
    }
}

TEST_F(ParserTest, InvalidJsonWithOffset) {
    expect_reject(R"({"event": "e",})", reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 14u);
    expect_reject(R"({"event" "e"})", reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 9u);
    expect_reject("", reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 0u);
    expect_reject(R"({"event": "e"} trailing)", reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 15u);
    expect_reject(R"({"event": "unterminated)", reject_reason::invalid_json);
    expect_reject(R"({'event': 'e'})", reject_reason::invalid_json);
    expect_reject(R"({"event": nan})", reject_reason::invalid_json);
    expect_reject("{\"event\": \"raw\ttab\"}", reject_reason::invalid_json);
}

TEST_F(ParserTest, NulByteIsInvalidJsonAtItsOffset) {
    expect_reject("{\"event\": \"a\0b\"}"s, reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 12u);
    // Even when the NUL follows a complete object (the in-situ parser would stop at it).
    expect_reject("{\"event\": \"e\"}\0garbage"s, reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 14u);
}

// A line with a NUL and a byte that is not UTF-8 is refused for its NUL, wherever each is;
// and one with a NUL and an escape for its NUL too (the escape is looked at only after).
TEST_F(ParserTest, ANulIsFoundBeforeBadUtf8AndEscapes) {
    expect_reject("{\"event\": \"\xff\", \"x\": \"a\0\"}"s, reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 22u);
    expect_reject("{\"event\": \"a\0\", \"x\": \"\xff\"}"s, reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 12u);
    expect_reject("{\"event\": \"\\ud800\", \"x\": \"\0\"}"s, reject_reason::invalid_json);
    EXPECT_EQ(err.offset, 26u);
}

TEST_F(ParserTest, EscapedNulIsAValidString) {
    ASSERT_TRUE(parse(R"({"event": "e", "metadata": {"k": "a\u0000b"}})")) << err.detail;
    ASSERT_EQ(ev.metadata.size(), 1u);
    EXPECT_EQ(ev.metadata[0].value.text, "a\0b"s);
}

TEST_F(ParserTest, RawInvalidUtf8IsInvalidUtf8) {
    for (const std::string& p : {
             "{\"event\": \"e\", \"metadata\": {\"k\": \"\xff\"}}"s,
             "{\"event\": \"e\xc3\"}"s,                                       // truncated sequence
             "{\"event\": \"e\", \"metadata\": {\"k\": \"\xc0\xaf\"}}"s,      // overlong '/'
             "{\"event\": \"e\", \"metadata\": {\"\xfe\": 1}}"s,              // in a key
             "{\"event\": \"e\", \"metadata\": {\"k\": \"\xed\xa0\x80\"}}"s,  // raw surrogate
             "{\"event\": \"e\", \"metadata\": {\"k\": \"\xf4\x90\x80\x80\"}}"s,  // > U+10FFFF
         }) {
        expect_reject(p, reject_reason::invalid_utf8);
    }
}

TEST_F(ParserTest, InvalidUtf8OutsideStringsIsInvalidUtf8) {
    expect_reject("{\"event\": \"e\"} \xff"s, reject_reason::invalid_utf8);
}

TEST_F(ParserTest, LoneLowSurrogateEscapeIsInvalidUtf8) {
    expect_reject(R"({"event": "e", "metadata": {"k": "x\udc00y"}})", reject_reason::invalid_utf8);
    expect_reject(R"({"event": "e", "metadata": {"\udc00": "v"}})", reject_reason::invalid_utf8);
    expect_reject(R"({"event": "e\udfff"})", reject_reason::invalid_utf8);
}

TEST_F(ParserTest, LoneHighSurrogateEscapeIsRejected) {
    // Python's json.dumps("\ud800") writes the lone escape; it is not a character.
    EXPECT_FALSE(parse(R"({"event": "e", "metadata": {"k": "x\ud800"}})"));
    EXPECT_FALSE(parse(R"({"event": "e", "metadata": {"k": "\ud800\u0041"}})"));
}

TEST_F(ParserTest, LoneHighSurrogateEscapeIsInvalidUtf8LikeALoneLowOne) {
    // "\udc00" is invalid_utf8 (LoneLowSurrogateEscapeIsInvalidUtf8); "\ud800" is the same
    // defect (a lone surrogate, which json.dumps writes for such a str) and should count the same.
    const std::string payload = R"({"event": "e", "metadata": {"k": "x\ud800"}})";
    ASSERT_FALSE(parse(payload));
    EXPECT_EQ(err.reason, reject_reason::invalid_utf8);
}

TEST_F(ParserTest, ValidMultibyteUtf8IsKept) {
    ASSERT_TRUE(
        parse("{\"event\": \"e\", \"metadata\": {\"k\": \"\xe2\x82\xac \xf0\x9f\x98\x80\"}}"));
    EXPECT_EQ(ev.metadata[0].value.text, "\xe2\x82\xac \xf0\x9f\x98\x80");
}

std::string nested(std::size_t depth) {
    return R"({"event": "e", "metadata": {"k": )" + std::string(depth, '[') + "1" +
           std::string(depth, ']') + "}}";
}

TEST_F(ParserTest, NestingUpToTheLimitIsAccepted) {
    // Root object (1) + metadata (2) + 62 arrays = 64, the default limit.
    ASSERT_TRUE(parse(nested(62))) << err.detail;
    EXPECT_EQ(ev.metadata[0].value.kind, raw_kind::nested);
}

TEST_F(ParserTest, NestingBeyondTheLimitIsTooDeep) {
    expect_reject(nested(63), reject_reason::too_deep);
    event_parser shallow(3);
    raw_event e;
    parse_error er;
    EXPECT_TRUE(shallow.parse(R"({"event": "e", "metadata": {"k": [1]}})", e, er));
    EXPECT_FALSE(shallow.parse(R"({"event": "e", "metadata": {"k": [[1]]}})", e, er));
    EXPECT_EQ(er.reason, reject_reason::too_deep);
    // Also in an ignored top-level key.
    EXPECT_FALSE(shallow.parse(R"({"event": "e", "x": [[[1]]]})", e, er));
    EXPECT_EQ(er.reason, reject_reason::too_deep);
}

TEST_F(ParserTest, HundredThousandOpenBracketsDoNotCrash) {
    // An iterative parser: no recursion, so no stack overflow.
    expect_reject(std::string(100000, '['), reject_reason::bad_shape);
    const std::string deep_in_object = R"({"event": "e", "x": )" + std::string(100000, '[');
    expect_reject(deep_in_object, reject_reason::too_deep);
    event_parser unlimited(std::size_t{1} << 30);
    raw_event e;
    parse_error er;
    EXPECT_FALSE(unlimited.parse(deep_in_object, e, er));
    EXPECT_EQ(er.reason, reject_reason::invalid_json);  // it just ends
    EXPECT_FALSE(unlimited.parse(std::string(100000, '{'), e, er));
}

TEST_F(ParserTest, NestedMetadataBecomesCompactJson) {
    ASSERT_TRUE(parse(R"({"event": "e", "metadata": {"shape": [2, 3], "cfg": {"a": [true, null, )"
                      R"(1.5, "s\"q"], "b": {}}, "after": "x"}})"))
        << err.detail;
    ASSERT_EQ(ev.metadata.size(), 3u);
    EXPECT_EQ(ev.metadata[0].key, "shape");
    EXPECT_EQ(ev.metadata[0].value.kind, raw_kind::nested);
    EXPECT_EQ(ev.metadata[0].value.text, "[2,3]");
    EXPECT_EQ(ev.metadata[1].key, "cfg");
    EXPECT_EQ(ev.metadata[1].value.kind, raw_kind::nested);
    EXPECT_EQ(ev.metadata[1].value.text, R"({"a":[true,null,1.5,"s\"q"],"b":{}})");
    EXPECT_EQ(ev.metadata[2].key, "after");
    EXPECT_EQ(ev.metadata[2].value.text, "x");
}

TEST_F(ParserTest, ManyNestedMetadataValuesStayValid) {
    // Views into the nested buffer must survive its growth.
    std::string p = R"({"event": "e", "metadata": {)";
    for (int i = 0; i < 50; ++i) {
        if (i) p += ", ";
        p += "\"k" + std::to_string(i) + "\": [" + std::to_string(i) + ", {\"x\": \"" +
             std::string(static_cast<std::size_t>(i), 'y') + "\"}]";
    }
    p += "}}";
    ASSERT_TRUE(parse(p)) << err.detail;
    ASSERT_EQ(ev.metadata.size(), 50u);
    for (int i = 0; i < 50; ++i) {
        EXPECT_EQ(ev.metadata[static_cast<std::size_t>(i)].value.text,
                  "[" + std::to_string(i) + ",{\"x\":\"" +
                      std::string(static_cast<std::size_t>(i), 'y') + "\"}]");
    }
}

TEST_F(ParserTest, NestedMeasurementIsKindInvalid) {
    ASSERT_TRUE(parse(R"({"event": "e", "measurements": {"a": [1, 2], "b": {"c": 1}, "d": 3}})"));
    ASSERT_EQ(ev.measurements.size(), 3u);
    EXPECT_EQ(ev.measurements[0].key, "a");
    EXPECT_EQ(ev.measurements[0].value.kind, raw_kind::invalid);
    EXPECT_EQ(ev.measurements[1].key, "b");
    EXPECT_EQ(ev.measurements[1].value.kind, raw_kind::invalid);
    EXPECT_EQ(ev.measurements[2].key, "d");
    EXPECT_EQ(ev.measurements[2].value.kind, raw_kind::number);
}

TEST_F(ParserTest, ScalarKinds) {
    ASSERT_TRUE(parse(R"({"event": "e", "metadata": {"s": "t", "n": 1, "t": true, "f": false, )"
                      R"("z": null}})"));
    ASSERT_EQ(ev.metadata.size(), 5u);
    EXPECT_EQ(ev.metadata[0].value.kind, raw_kind::string);
    EXPECT_EQ(ev.metadata[1].value.kind, raw_kind::number);
    EXPECT_EQ(ev.metadata[2].value.kind, raw_kind::true_);
    EXPECT_EQ(ev.metadata[3].value.kind, raw_kind::false_);
    EXPECT_EQ(ev.metadata[4].value.kind, raw_kind::null);
}

TEST_F(ParserTest, DuplicateMemberKeysAreAllReported) {
    // The normalizer applies "last wins"; the parser keeps both in order.
    ASSERT_TRUE(parse(R"({"event": "e", "measurements": {"count": 1, "count": 2}})"));
    ASSERT_EQ(ev.measurements.size(), 2u);
    EXPECT_EQ(ev.measurements[1].value.text, "2");
}

TEST_F(ParserTest, ParserIsReusableAfterAnError) {
    EXPECT_FALSE(parse("{bad"));
    ASSERT_TRUE(parse(R"({"event": "ok", "metadata": {"a": "b"}})"));
    EXPECT_EQ(ev.event, "ok");
    ASSERT_EQ(ev.metadata.size(), 1u);
    EXPECT_EQ(ev.metadata[0].key, "a");
    // A second success clears the first's members.
    ASSERT_TRUE(parse(R"({"event": ["x"]})"));
    EXPECT_TRUE(ev.metadata.empty());
    EXPECT_TRUE(ev.event_is_array);
}

TEST_F(ParserTest, DoesNotModifyOrOverreadThePayload) {
    const std::string payload(python_payload);
    const std::string copy = payload;
    // A view that is not NUL-terminated: the bytes after it must be ignored.
    const std::string with_tail = payload + "}}}garbage";
    ASSERT_TRUE(parse(std::string_view(with_tail).substr(0, payload.size())));
    ASSERT_TRUE(parse(payload));
    EXPECT_EQ(payload, copy);
}

TEST_F(ParserTest, TruncatedMultibyteSequenceAtTheEndIsInvalidUtf8) {
    // Found by fuzzing: RapidJSON 1.1.0's own validator read past the buffer here.
    const std::string head = R"({"event": "e", "metadata": {"k": "x)";
    for (const char* tail : {"\xF0", "\xF0\x9F", "\xE2\x82", "\xF9\x54"}) {
        ASSERT_FALSE(parse(head + tail)) << tail;
        EXPECT_EQ(err.reason, reject_reason::invalid_utf8);
        EXPECT_EQ(err.offset, head.size());  // the first byte that is not UTF-8
    }
}

// The string scanner moves sixteen bytes at a time and the payload is copied and checked
// sixteen bytes at a time: every string length around those widths, with an escape, a control
// byte, a NUL or a non-ASCII byte at every position, must decode exactly as written.

TEST_F(ParserTest, PayloadsEndingAnywhereAreRejectedWithoutOverreading) {
    // Lines cut short at every length, ending inside a string, a number, a literal or an
    // escape: each is invalid JSON, found by a parser that had no larger line before.
    fresh = true;
    const std::string full =
        R"({"event": "tool.execution.start", "measurements": {"count": 12345, "ratio": -1.5e-3, )"
        R"("n": NaN, "i": -Infinity}, "metadata": {"k": "v\u00e9\n", "t": true, "z": null}})";
    for (std::size_t n = 0; n < full.size(); ++n) {
        const std::string cut = full.substr(0, n);
        EXPECT_FALSE(parse(cut)) << cut;
        EXPECT_EQ(err.reason, reject_reason::invalid_json) << cut;
    }
    EXPECT_TRUE(parse(full)) << err.detail;
}

// A string of `n` characters that differ from their neighbours, so a misplaced byte shows.
std::string sample_text(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>('a' + i % 26);
    return s;
}

TEST_F(ParserTest, StringsOfEveryLengthDecodeExactly) {
    fresh = true;
    for (std::size_t n = 0; n <= 48; ++n) {
        const std::string text = sample_text(n);
        ASSERT_TRUE(parse(R"({"event": "e", "metadata": {")" + text + R"(": ")" + text + R"("}})"))
            << n << ": " << err.detail;
        ASSERT_EQ(ev.metadata.size(), 1u);
        EXPECT_EQ(ev.metadata[0].key, text);
        EXPECT_EQ(ev.metadata[0].value.text, text);
    }
}

TEST_F(ParserTest, EscapesAtEveryPositionDecodeExactly) {
    fresh = true;
    // After the first escape the decoded text lags behind the input: the scanner moves bytes.
    const std::pair<std::string_view, std::string_view> escapes[] = {
        {R"(\n)", "\n"},
        {R"(\")", "\""},
        {R"(\\)", "\\"},
        {R"(\u00e9)", "\xc3\xa9"},
        {R"(\ud83d\ude00)", "\xf0\x9f\x98\x80"}};
    for (const auto& [escaped, decoded] : escapes) {
        for (std::size_t n = 0; n <= 40; ++n) {
            for (std::size_t at = 0; at <= n; ++at) {
                const std::string text = sample_text(n);
                // Two escapes: the second one is met with the text already moving.
                const std::string in = text.substr(0, at) + std::string(escaped) + text.substr(at) +
                                       std::string(escaped) + "z";
                const std::string want = text.substr(0, at) + std::string(decoded) +
                                         text.substr(at) + std::string(decoded) + "z";
                ASSERT_TRUE(parse(R"({"event": "e", "metadata": {"k": ")" + in + R"("}})"))
                    << in << ": " << err.detail;
                ASSERT_EQ(ev.metadata.size(), 1u);
                ASSERT_EQ(ev.metadata[0].value.text, want) << in;
            }
        }
    }
}

TEST_F(ParserTest, ControlByteAtEveryPositionIsInvalidJson) {
    fresh = true;
    const std::string head = R"({"event": "e", "metadata": {"k": ")";
    for (std::size_t n = 1; n <= 40; ++n) {
        for (std::size_t at = 0; at < n; ++at) {
            std::string text = sample_text(n);
            text[at] = '\x1f';
            expect_reject(head + text + R"("}})", reject_reason::invalid_json);
            EXPECT_EQ(err.offset, head.size() + at);
        }
    }
}

TEST_F(ParserTest, NulAtEveryPositionIsFoundAtItsOffset) {
    fresh = true;
    for (std::size_t n = 1; n <= 40; ++n) {
        const std::string payload = R"({"event": ")" + sample_text(n) + R"("})";
        for (std::size_t at = 0; at < payload.size(); ++at) {
            std::string p = payload;
            p[at] = '\0';
            expect_reject(p, reject_reason::invalid_json);
            EXPECT_EQ(err.offset, at);
        }
    }
}

TEST_F(ParserTest, InvalidUtf8AtEveryPositionIsFoundAtItsOffset) {
    fresh = true;
    const std::string head = R"({"event": "e", "metadata": {"k": ")";
    for (std::size_t n = 1; n <= 40; ++n) {
        for (std::size_t at = 0; at < n; ++at) {
            std::string text = sample_text(n);
            text[at] = '\xff';
            expect_reject(head + text + R"("}})", reject_reason::invalid_utf8);
            EXPECT_EQ(err.offset, head.size() + at);
            // A valid multibyte character in the same place is kept.
            text.replace(at, 1, "\xc3\xa9");
            ASSERT_TRUE(parse(head + text + R"("}})")) << err.detail;
            EXPECT_EQ(ev.metadata[0].value.text, text);
        }
    }
}

TEST_F(ParserTest, LoneSurrogateIsFoundInLinesOfEveryLength) {
    fresh = true;
    // Whether a payload holds a backslash is noted while it is copied; a lone surrogate
    // escape must be caught wherever it sits.
    for (std::size_t n = 0; n <= 40; ++n) {
        expect_reject(R"({"event": "e", "metadata": {"k": ")" + sample_text(n) + R"(\udc00"}})",
                      reject_reason::invalid_utf8);
    }
}

// The fast reader (common forms) and RapidJSON (everything) must agree on every input: the same
// raw_event when it parses, the same reason, offset and detail when it does not.
std::string describe(bool ok, const raw_event& ev, const parse_error& err) {
    std::string s = ok ? "ok" : "rejected";
    if (!ok) {
        return s + " " + std::string(to_string(err.reason)) + " @" + std::to_string(err.offset) +
               " " + err.detail;
    }
    const auto value = [](const raw_value& v) {
        return std::to_string(static_cast<int>(v.kind)) + ":" + std::string(v.text);
    };
    s += " event=" + std::to_string(ev.has_event) + std::to_string(ev.event_is_array) + ":" +
         std::string(ev.event);
    for (auto p : ev.parts) s += " part=" + std::string(p);
    for (const auto& m : ev.measurements) s += " m:" + std::string(m.key) + "=" + value(m.value);
    for (const auto& m : ev.metadata) s += " md:" + std::string(m.key) + "=" + value(m.value);
    s += " ts=" + std::to_string(ev.has_timestamp) + std::string(ev.timestamp);
    s += " cid=" + std::to_string(ev.has_correlation_id) + std::string(ev.correlation_id);
    s += " seq=" + std::string(ev.control_seq);
    return s;
}

// Returns whether the fast reader took the payload alone.
bool expect_fast_path_agrees(std::string_view payload) {
    SCOPED_TRACE(testing::PrintToString(std::string(payload)));
    event_parser fast, full(event_parser::default_max_depth, false);
    raw_event a, b;
    parse_error ea, eb;
    const bool oa = fast.parse(payload, a, ea);
    const bool ob = full.parse(payload, b, eb);
    EXPECT_EQ(describe(oa, a, ea), describe(ob, b, eb));
    return fast.last_was_fast();
}

TEST(ParserFastPath, AgreesWithRapidJsonOnEveryForm) {
    const char* const cases[] = {
        R"({"event": "a.b", "measurements": {"x": 1, "y": -0, "z": 0.5, "w": -12.25}})",
        R"({"event":"a.b","measurements":{"x":1}}  )",
        "{\t\"event\"\r\n:\"a\"}",
        R"({"event": ["a", "b"], "metadata": {"k": [1, {"x": null}], "e": {}, "f": []}})",
        R"({"event": "a", "event": "b", "event": ["c"], "measurements": {"d": 1, "d": 2}})",
        R"({"event": "a", "measurements": null, "metadata": null, "timestamp_ns": null})",
        R"({"event": "a", "timestamp_ns": 1700000000000000000, "correlation_id": "c"})",
        R"({"event": "a", "timestamp_ns": 99999999999999999999999999, "control_seq": 7})",
        R"({"event": "a", "measurements": {"big": 123456789012345678901234567890}})",
        R"({"event": "a", "measurements": {"e": 1e5, "E": 1E-5, "x": 1.5e+16}})",
        R"({"event": "a", "measurements": {"n": NaN, "i": Infinity, "m": -Infinity}})",
        R"({"event": "a", "measurements": {"big": 1e400}})",
        R"({"event": "a", "metadata": {"s": "t\u00e9\n\"x\"", "t": true, "f": false}})",
        R"({"event": "a", "metadata": {"s": "\ud800"}})",
        R"({"event": "caf)"
        "\xc3\xa9"
        R"(", "metadata": {"k": "\xe2\x82\xac"}})",
        R"({"event": "a", "metadata": {"k": "bad )"
        "\xff"
        R"("}})",
        R"({"event": "a"} x)",
        R"({"event": "a"} {})",
        R"({"event": "a",})",
        R"({"event": "a" "b": 1})",
        R"({"event": ["a",]})",
        R"({"event": [,"a"]})",
        R"({"event": "a", "measurements": {"x": 01}})",
        R"({"event": "a", "m": 1.})",
        R"({"event": "a", "m": .5})",
        R"({"event": "a", "m": -})",
        R"({"event": "a", "m": +1})",
        R"({"event": "a", "m": tru})",
        R"({"event": "a", "m": truex})",
        R"({"event": "a", "m": nul})",
        R"({"event": "a", "m": True})",
        R"({"event": 'a'})",
        R"({event: "a"})",
        R"({"event": 1})",
        R"({"event": {}})",
        R"({"event": [1]})",
        R"({"event": [[]]})",
        R"({"measurements": {"x": 1}})",
        R"({"event": "a", "measurements": [1]})",
        R"({"event": "a", "measurements": {"x": {"y": 1}, "z": [2]}})",
        R"({"event": "a", "timestamp_ns": "1"})",
        R"({"event": "a", "correlation_id": 5})",
        R"({"event": "a", "timestamp_ns": [1]})",
        R"({"event": "a", "correlation_id": {}})",
        R"(["event"])",
        R"("event")",
        "",
        " ",
        "{",
        "}",
        "{}",
        R"({"event": "a")",
        R"({"event": "a", "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})",
        "{\"event\": \"a\x01\"}",
        "{\"event\": \"a\tb\"}",
    };
    for (const char* c : cases) expect_fast_path_agrees(c);
    // Nesting on both sides of the limit and of the fast reader's own stack (64).
    for (std::size_t depth : {60u, 62u, 63u, 64u, 65u, 70u, 200u}) {
        const std::string deep = R"({"event": "a", "metadata": {"k": )" + std::string(depth, '[') +
                                 std::string(depth, ']') + "}}";
        expect_fast_path_agrees(deep);
    }
}

TEST(ParserFastPath, AgreesOnEveryTruncationAndEveryByteChanged) {
    const std::string base =
        R"({"event": ["tool", "execution.stop"], "measurements": {"duration": 817077202, )"
        R"("count": 1, "ratio": -0.25, "ok": true}, "metadata": {"tool": "parse", "x": null, )"
        R"("n": {"a": [1, false]}, "e": "caf)"
        "\xc3\xa9"
        R"("}, "timestamp_ns": 1700000000000001000, )"
        R"("correlation_id": "a6cecc1b", "control_seq": 12})";
    for (std::size_t n = 0; n <= base.size(); ++n) expect_fast_path_agrees(base.substr(0, n));
    for (std::size_t i = 0; i < base.size(); ++i) {
        for (char c : {' ', '"', '\\', ',', ':', '{', '}', '[', ']', '0', '-', '.', 'e', 'n', 'x',
                       '\t', '\x7f', '\xc3'}) {
            std::string s = base;
            s[i] = c;
            expect_fast_path_agrees(s);
        }
        std::string dropped = base;
        dropped.erase(i, 1);
        expect_fast_path_agrees(dropped);
    }
}

// The fast path skips digits eight at a time: runs of every length around the word size, in
// the integer and the fraction part, ended by every kind of byte (':' and '/' are the bytes
// next to the digits, the end of the payload is its NUL terminator).
TEST(ParserFastPath, AgreesOnNumbersOfEveryLength) {
    for (std::size_t n = 1; n <= 25; ++n) {
        std::string digits;
        for (std::size_t i = 0; i < n; ++i) digits += static_cast<char>('1' + i % 9);
        for (const std::string head : {"", "-", "0.", "-7."})
            for (const std::string after :
                 {"}}", ".5}}", "e1}}", " }}", ", \"y\": 2}}", "x}}", ":}}", "/}}", ""}) {
                const std::string number = head + digits;
                const bool fast = expect_fast_path_agrees(
                    R"({"event": "a", "measurements": {"x": )" + number + after);
                // What the fast reader takes must not fall back to RapidJSON (which agrees,
                // only slower): a digit run cut short would.
                const bool common = after == "}}" || after == " }}" || after == ", \"y\": 2}}" ||
                                    (after == ".5}}" && head.find('.') == std::string::npos);
                if (common) {
                    EXPECT_TRUE(fast) << number << after;
                }
            }
    }
}

}  // namespace
}  // namespace telecap
