// line_framer: bytes to lines, whatever the chunking, with bounded memory.
#include "capture/line_framer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace telecap {
namespace {

using namespace std::string_literals;

// One framed line as the sink saw it. A long line is merged (head + data) so that two
// chunkings of the same input can be compared; head_size keeps what on_long_begin got.
struct framed {
    bool long_ = false;
    std::string bytes;  // the line (for a long one: head + every data piece)
    std::string eol;
    std::size_t head_size = 0;

    bool operator==(const framed&) const = default;
};

std::ostream& operator<<(std::ostream& os, const framed& f) {
    os << (f.long_ ? "long(" : "line(") << testing::PrintToString(f.bytes) << ", "
       << testing::PrintToString(f.eol);
    if (f.long_) os << ", head " << f.head_size;
    return os << ")";
}

class recording_sink final : public line_sink {
public:
    std::vector<framed> lines;
    std::string protocol_errors;  // calls out of order
    std::string raw;              // every byte delivered, in order (line + eol)

    void on_line(std::string_view line, std::string_view eol) override {
        if (in_long_) protocol_errors += "on_line inside a long line;";
        if (!eol.empty() && line.data() + line.size() != eol.data())
            protocol_errors += "line and eol not contiguous;";
        lines.push_back({false, std::string(line), std::string(eol), 0});
        raw.append(line).append(eol);
    }
    void on_long_begin(std::string_view head) override {
        if (in_long_) protocol_errors += "nested on_long_begin;";
        in_long_ = true;
        lines.push_back({true, std::string(head), "", head.size()});
        raw.append(head);
    }
    void on_long_data(std::string_view bytes) override {
        if (!in_long_) protocol_errors += "on_long_data outside a long line;";
        if (bytes.empty()) protocol_errors += "empty on_long_data;";
        if (!lines.empty()) lines.back().bytes.append(bytes);
        raw.append(bytes);
    }
    void on_long_end(std::string_view eol) override {
        if (!in_long_) protocol_errors += "on_long_end outside a long line;";
        in_long_ = false;
        if (!lines.empty()) lines.back().eol = std::string(eol);
        raw.append(eol);
    }

private:
    bool in_long_ = false;
};

// Feeds `input` in the given chunks; checks the buffered() bound after each feed.
recording_sink frame_chunks(const std::vector<std::string_view>& chunks, std::size_t max_line) {
    line_framer f(max_line);
    recording_sink sink;
    for (auto c : chunks) {
        f.feed(c, sink);
        EXPECT_LE(f.buffered(), max_line + 2) << "buffered more than max_line + 2";
    }
    f.finish(sink);
    EXPECT_EQ(f.buffered(), 0u);
    EXPECT_FALSE(f.in_long_line());
    EXPECT_EQ(sink.protocol_errors, "");
    return sink;
}

recording_sink frame(std::string_view input, std::size_t max_line = 1 << 20) {
    return frame_chunks({input}, max_line);
}

recording_sink frame_split(std::string_view input, std::size_t at, std::size_t max_line) {
    return frame_chunks({input.substr(0, at), input.substr(at)}, max_line);
}

recording_sink frame_bytewise(std::string_view input, std::size_t max_line) {
    std::vector<std::string_view> chunks;
    for (std::size_t i = 0; i < input.size(); ++i) chunks.push_back(input.substr(i, 1));
    return frame_chunks(chunks, max_line);
}

framed line(std::string bytes, std::string eol) {
    return {false, std::move(bytes), std::move(eol), 0};
}
framed long_line(std::string bytes, std::string eol, std::size_t head) {
    return {true, std::move(bytes), std::move(eol), head};
}

TEST(LineFramer, SplitsOnNewline) {
    const auto s = frame("one\ntwo\nthree\n");
    EXPECT_EQ(s.lines,
              (std::vector<framed>{line("one", "\n"), line("two", "\n"), line("three", "\n")}));
}

TEST(LineFramer, CrLfIsALineEnding) {
    const auto s = frame("a\r\nb\n");
    EXPECT_EQ(s.lines, (std::vector<framed>{line("a", "\r\n"), line("b", "\n")}));
}

TEST(LineFramer, LoneCrIsPartOfTheLine) {
    const auto s = frame("a\rb\nc\r\r\n\r");
    EXPECT_EQ(s.lines,
              (std::vector<framed>{line("a\rb", "\n"), line("c\r", "\r\n"), line("\r", "")}));
}

TEST(LineFramer, LastLineWithoutNewlineComesAtFinish) {
    line_framer f(1024);
    recording_sink sink;
    f.feed("first\nlast", sink);
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_EQ(f.buffered(), 4u);
    f.finish(sink);
    ASSERT_EQ(sink.lines.size(), 2u);
    EXPECT_EQ(sink.lines[1], line("last", ""));
    // finish() is idempotent: nothing more arrives.
    f.finish(sink);
    EXPECT_EQ(sink.lines.size(), 2u);
}

TEST(LineFramer, LastLineEndingInCrWithoutNewlineKeepsTheCr) {
    const auto s = frame("x\r");
    EXPECT_EQ(s.lines, (std::vector<framed>{line("x\r", "")}));
}

TEST(LineFramer, EmptyInputGivesNoLines) { EXPECT_TRUE(frame("").lines.empty()); }

TEST(LineFramer, EmptyLines) {
    const auto s = frame("\n\r\n\nx\n\n");
    EXPECT_EQ(s.lines, (std::vector<framed>{line("", "\n"), line("", "\r\n"), line("", "\n"),
                                            line("x", "\n"), line("", "\n")}));
}

TEST(LineFramer, NulBytesAndInvalidUtf8PassIntact) {
    const std::string input = "a\0b\n\xff\xfe\xc0\xaf\n\0\n"s;
    const auto s = frame(input);
    EXPECT_EQ(s.lines, (std::vector<framed>{line("a\0b"s, "\n"), line("\xff\xfe\xc0\xaf", "\n"),
                                            line("\0"s, "\n")}));
    EXPECT_EQ(s.raw, input);
}

TEST(LineFramer, LongLineIsStreamedWithExactBytes) {
    const std::string body(100, 'x');
    const std::string input = "short\n" + body + "\nafter\n";
    const auto s = frame(input, 10);
    ASSERT_EQ(s.lines.size(), 3u);
    EXPECT_EQ(s.lines[0], line("short", "\n"));
    EXPECT_TRUE(s.lines[1].long_);
    EXPECT_EQ(s.lines[1].bytes, body);
    EXPECT_EQ(s.lines[1].eol, "\n");
    EXPECT_GT(s.lines[1].head_size, 10u);
    EXPECT_EQ(s.lines[2], line("after", "\n"));
    EXPECT_EQ(s.raw, input);
}

TEST(LineFramer, LongLineWithCrLfDeliversTheCrAsData) {
    const std::string body(30, 'y');
    const auto s = frame(body + "\r\n", 10);
    ASSERT_EQ(s.lines.size(), 1u);
    EXPECT_TRUE(s.lines[0].long_);
    EXPECT_EQ(s.lines[0].bytes, body + "\r");
    EXPECT_EQ(s.lines[0].eol, "\n");
}

TEST(LineFramer, LongLastLineWithoutNewlineEndsAtFinish) {
    const std::string body(50, 'z');
    line_framer f(10);
    recording_sink sink;
    f.feed(body, sink);
    EXPECT_TRUE(f.in_long_line());
    EXPECT_LE(f.buffered(), 12u);
    f.finish(sink);
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_EQ(sink.lines[0], long_line(body, "", 11));
    EXPECT_EQ(sink.protocol_errors, "");
}

TEST(LineFramer, LineOfExactlyMaxLineIsNotLong) {
    const std::string body(16, 'm');
    EXPECT_EQ(frame(body + "\n", 16).lines, (std::vector<framed>{line(body, "\n")}));
    EXPECT_EQ(frame(body + "\r\n", 16).lines, (std::vector<framed>{line(body, "\r\n")}));
    EXPECT_EQ(frame(body, 16).lines, (std::vector<framed>{line(body, "")}));
}

TEST(LineFramer, LineOfMaxLinePlusOneIsLong) {
    const std::string body(17, 'm');
    const auto lf = frame(body + "\n", 16);
    ASSERT_EQ(lf.lines.size(), 1u);
    EXPECT_EQ(lf.lines[0], long_line(body, "\n", 17));
    const auto crlf = frame(body + "\r\n", 16);
    ASSERT_EQ(crlf.lines.size(), 1u);
    EXPECT_TRUE(crlf.lines[0].long_);
    EXPECT_EQ(crlf.lines[0].bytes, body + "\r");
    const auto eof = frame(body, 16);
    ASSERT_EQ(eof.lines.size(), 1u);
    EXPECT_EQ(eof.lines[0], long_line(body, "", 17));
}

TEST(LineFramer, BufferedStaysBoundedOnAHugeLine) {
    line_framer f(64);
    recording_sink sink;
    const std::string chunk(1000, 'h');
    for (int i = 0; i < 100; ++i) {
        f.feed(chunk, sink);
        ASSERT_LE(f.buffered(), 66u);
    }
    f.feed("\n", sink);
    f.finish(sink);
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_EQ(sink.lines[0].bytes.size(), 100000u);
    EXPECT_EQ(sink.lines[0].eol, "\n");
}

// The framing of a mixed input must not depend on how it is chunked.
const std::string& mixed_input() {
    static const std::string s =
        "TELEMETRY:{\"event\": \"x\"}\n"
        "plain\r\n"
        "\n"
        "lone\rcr\n"
        "nul\0byte\n"s
        "\xff\xfe bad utf8\n"
        "exactly-16-bytes\n"   // 16 bytes: max_line in the tests below (not long)
        "exactly-15-byte\r\n"  // 15 + "\r\n" (a 16-byte "\r\n" line split between the two
                               // is LineOfMaxLineWithCrLfSplitBetweenCrAndLf)
        "seventeen-bytes!!\n"  // 17: long
        "a much longer line that goes well past the limit\r\n"
        "\r\n"
        "tail without newline";
    return s;
}

TEST(LineFramer, EverySplitPointGivesTheSameLines) {
    constexpr std::size_t max_line = 16;
    const std::string& input = mixed_input();
    const auto whole = frame(input, max_line);
    ASSERT_EQ(whole.raw, input);
    for (std::size_t at = 0; at <= input.size(); ++at) {
        const auto s = frame_split(input, at, max_line);
        ASSERT_EQ(s.lines, whole.lines) << "split at " << at;
        ASSERT_EQ(s.raw, input) << "split at " << at;
    }
}

TEST(LineFramer, EverySplitPointGivesTheSameLinesWithLfOnly) {
    constexpr std::size_t max_line = 16;
    std::string input = mixed_input();
    std::erase(input, '\r');
    const auto whole = frame(input, max_line);
    for (std::size_t at = 0; at <= input.size(); ++at) {
        const auto s = frame_split(input, at, max_line);
        ASSERT_EQ(s.lines, whole.lines) << "split at " << at;
        ASSERT_EQ(s.raw, input) << "split at " << at;
    }
}

TEST(LineFramer, OneByteChunksGiveTheSameLinesWithLfOnly) {
    std::string input = mixed_input();
    std::erase(input, '\r');
    for (std::size_t max_line : {16u, 17u, 20u, 1024u}) {
        const auto whole = frame(input, max_line);
        const auto bytewise = frame_bytewise(input, max_line);
        EXPECT_EQ(bytewise.lines, whole.lines) << "max_line " << max_line;
        EXPECT_EQ(bytewise.raw, input);
    }
}

TEST(LineFramer, OneByteChunksGiveTheSameLinesWithCrLf) {
    const std::string input = mixed_input();
    for (std::size_t max_line : {16u, 17u, 20u, 1024u}) {
        const auto whole = frame(input, max_line);
        const auto bytewise = frame_bytewise(input, max_line);
        EXPECT_EQ(bytewise.lines, whole.lines) << "max_line " << max_line;
        EXPECT_EQ(bytewise.raw, input);
    }
}

TEST(LineFramer, LineOfMaxLineWithCrLfSplitBetweenCrAndLf) {
    // A line of exactly max_line bytes ending "\r\n" is not long when it arrives whole
    // (LineOfExactlyMaxLineIsNotLong); it must not become long when a read ends between
    // its "\r" and its "\n".
    const std::string body(16, 'm');
    const std::string input = body + "\r\n";
    const auto whole = frame(input, 16);
    ASSERT_EQ(whole.lines, (std::vector<framed>{line(body, "\r\n")}));
    const auto split = frame_split(input, input.size() - 1, 16);
    EXPECT_EQ(split.lines, whole.lines);
}

TEST(LineFramer, ChunksOfEverySizeGiveTheSameLines) {
    std::string input;
    for (int i = 0; i < 200; ++i) {
        const std::string text =
            "line " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 37), '.');
        input += text;
        // A "\r\n" line of exactly max_line bytes is LineOfMaxLineWithCrLfSplitBetweenCrAndLf.
        input += (i % 3 == 0 && text.size() != 40) ? "\r\n" : "\n";
    }
    input += "end";
    const auto whole = frame(input, 40);
    for (std::size_t size = 1; size <= 64; ++size) {
        std::vector<std::string_view> chunks;
        for (std::size_t at = 0; at < input.size(); at += size)
            chunks.push_back(std::string_view(input).substr(at, size));
        const auto s = frame_chunks(chunks, 40);
        ASSERT_EQ(s.raw, input) << "chunk size " << size;
        ASSERT_EQ(s.lines, whole.lines) << "chunk size " << size;
    }
}

}  // namespace
}  // namespace telecap

namespace telecap {
namespace {

// --- the shared budget for partial lines ----------------------------------------------------

TEST(LineBudget, TakesWithinTheLimitAndCountsRefusals) {
    line_budget b(100);
    EXPECT_TRUE(b.try_take(60));
    EXPECT_FALSE(b.try_take(41));
    EXPECT_TRUE(b.try_take(40));
    EXPECT_EQ(b.used(), 100u);
    EXPECT_FALSE(b.try_take(1));
    b.take(5);  // forced: an allocator's rounding
    EXPECT_EQ(b.used(), 105u);
    EXPECT_FALSE(b.try_take(0 + 1));
    b.give(105);
    EXPECT_EQ(b.used(), 0u);
    EXPECT_EQ(b.refusals(), 3u);
}

TEST(LineFramerBudget, PartialLinesWithinFreeHoldNeverAskTheBudget) {
    line_budget b(0);  // nothing to give
    line_framer f(1 << 20, &b);
    recording_sink sink;
    const std::string part(line_framer::free_hold - 1, 'a');
    f.feed(part, sink);
    f.feed("\n", sink);
    f.finish(sink);
    ASSERT_EQ(sink.lines.size(), 1u);
    EXPECT_EQ(sink.lines[0], line(part, "\n"));
    EXPECT_EQ(b.refusals(), 0u);
}

TEST(LineFramerBudget, ALineTheBudgetCannotHoldGoesOnAsALongLineWithEveryByte) {
    line_budget b(64 * 1024);
    line_framer holder(1 << 20, &b), cut(1 << 20, &b);
    recording_sink hs, cs;
    // The first stream holds most of the budget with a partial line...
    const std::string big(60 * 1024, 'h');
    holder.feed(big, hs);
    EXPECT_FALSE(holder.cut_by_budget());
    EXPECT_GE(b.used(), big.size() - line_framer::free_hold);
    // ...so the second one's 20 KiB partial line cannot be held: it is streamed as a long
    // line, byte for byte, and ends at its newline.
    const std::string a(8 * 1024, 'x'), c(12 * 1024, 'y');
    cut.feed(a, cs);
    cut.feed(c, cs);
    EXPECT_TRUE(cut.in_long_line());
    EXPECT_TRUE(cut.cut_by_budget());
    EXPECT_LE(cut.buffered(), line_framer::free_hold);
    cut.feed("z\nnext\n", cs);
    cut.finish(cs);
    ASSERT_EQ(cs.lines.size(), 2u);
    EXPECT_TRUE(cs.lines[0].long_);
    EXPECT_GE(cs.lines[0].head_size, line_framer::free_hold);
    EXPECT_EQ(cs.lines[0].bytes, a + c + "z");
    EXPECT_EQ(cs.lines[0].eol, "\n");
    EXPECT_EQ(cs.lines[1], line("next", "\n"));
    EXPECT_EQ(cs.raw, a + c + "z\nnext\n");
    EXPECT_EQ(cs.protocol_errors, "");
    EXPECT_GE(b.refusals(), 1u);
    // The holder's line completes whole, and gives its share back.
    holder.feed("!\n", hs);
    ASSERT_EQ(hs.lines.size(), 1u);
    EXPECT_EQ(hs.lines[0], line(big + "!", "\n"));
    EXPECT_EQ(b.used(), 0u);
}

TEST(LineFramerBudget, AFramerGivesItsShareBackWhenItGoes) {
    line_budget b(1 << 20);
    {
        line_framer f(1 << 20, &b);
        recording_sink s;
        f.feed(std::string(100 * 1024, 'p'), s);
        EXPECT_GT(b.used(), 0u);
    }
    EXPECT_EQ(b.used(), 0u);
}

TEST(LineFramerBudget, EverySplitPointGivesTheSameBytesUnderATightBudget) {
    std::string input;
    for (int i = 0; i < 6; ++i) input += std::string(3000 + 1000 * i, char('a' + i)) + "\r\n";
    for (std::size_t at = 0; at < input.size(); at += 997) {
        line_budget b(2048);
        line_framer f(1 << 20, &b);
        recording_sink s;
        f.feed(std::string_view(input).substr(0, at), s);
        f.feed(std::string_view(input).substr(at), s);
        f.finish(s);
        EXPECT_EQ(s.raw, input) << "split at " << at;
        EXPECT_EQ(s.protocol_errors, "") << "split at " << at;
        EXPECT_EQ(s.lines.size(), 6u) << "split at " << at;
        EXPECT_EQ(b.used(), 0u);
    }
}

}  // namespace
}  // namespace telecap
