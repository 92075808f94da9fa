// passthrough_mux: per-source labels, long lines streamed whole while the other sources' lines
// wait, a source that ends inside its long line, a last line without newline (ended and
// counted), the hold bounds (the long line is split and marked, never written into).
#include "io/passthrough.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "capture/catalog.hpp"
#include "capture/pipeline.hpp"
#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using test::deadline_in;

class PassthroughTest : public testing::Test {
protected:
    void SetUp() override {
        auto w = stream_writer::for_file(dir / "out.log");
        ASSERT_TRUE(w);
        out = *w;
    }
    // Closes the stream and returns what reached the file.
    std::string written() {
        out->close(deadline_in());
        return test::file_text(dir / "out.log");
    }

    test::temp_dir dir;
    std::shared_ptr<stream_writer> out;
};

TEST_F(PassthroughTest, EachSourceLabelsItsLines) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    auto plain = mux.make_source("");
    EXPECT_EQ(a->label(), "[a] ");
    a->write("one\n", true, true);
    b->write("two\n", true, true);
    plain->write("three\n", true, true);
    a->write("four\r\n", true, true);
    EXPECT_EQ(written(), "[a] one\n[b] two\nthree\n[a] four\r\n");
    EXPECT_EQ(out->counters().written_lines.load(), 4u);
}

TEST_F(PassthroughTest, LongLineIsWrittenWholeWhileOthersWait) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("AAAA", true, false);
    b->write("held 1\n", true, true);  // must not cut into a's line
    a->write("BBBB", false, false);
    b->write("held ", true, false);  // even a long line of b's waits
    b->write("2\n", false, true);
    a->write("CCCC\n", false, true);
    b->write("after\n", true, true);
    EXPECT_EQ(written(), "[a] AAAABBBBCCCC\n[b] held 1\n[b] held 2\n[b] after\n");
    EXPECT_EQ(mux.long_lines_split(), 0u);
}

TEST_F(PassthroughTest, VeryLongLineInManyPieces) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    std::string expected = "[a] ";
    for (int i = 0; i < 200; ++i) {
        const std::string piece(16384, static_cast<char>('a' + i % 26));
        a->write(piece, i == 0, false);
        expected += piece;
        if (i % 50 == 0) b->write("short\n", true, true);
    }
    a->write("\n", false, true);
    expected += "\n";
    for (int i = 0; i < 4; ++i) expected += "[b] short\n";
    EXPECT_EQ(written(), expected);  // 3.2 MB in one piece, the short lines after it
}

TEST_F(PassthroughTest, SourceEndingInsideItsLongLineReleasesTheOthers) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("unfinished", true, false);
    b->write("waiting\n", true, true);
    a.reset();  // the worker's stream ended inside the line
    b->write("next\n", true, true);
    // The line is ended (a newline added, counted), so b's lines do not glue to it.
    EXPECT_EQ(written(), "[a] unfinished\n[b] waiting\n[b] next\n");
    EXPECT_EQ(mux.partial_lines(), 1u);
}

TEST_F(PassthroughTest, PipelineFinishFlushesAHeldPartialLine) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[w1] ");
    const catalog cat = catalog::builtin();
    capture_stats stats;
    capture_pipeline p(cat, {}, {}, nullptr, a.get(), nullptr, stats);
    p.feed("first line\nsecond, with no newl");
    p.feed("ine yet");
    EXPECT_TRUE(p.mid_line());
    p.finish();
    EXPECT_EQ(written(), "[w1] first line\n[w1] second, with no newline yet\n");
    EXPECT_EQ(mux.partial_lines(), 1u);
}

TEST_F(PassthroughTest, AnUnterminatedLastLineIsEndedSoTheNextWorkersLineDoesNotGlue) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    const catalog cat = catalog::builtin();
    capture_stats sa, sb;
    pipeline_options opts;
    opts.max_line = 64;
    {
        capture_pipeline pa(cat, {}, opts, nullptr, a.get(), nullptr, sa);
        pa.feed("a's last words");  // the worker exits without a newline
        pa.finish();
    }
    {
        capture_pipeline pa(cat, {}, opts, nullptr, a.get(), nullptr, sa);
        pa.feed(std::string(100, 'L'));  // a long last line without a newline
        pa.finish();
    }
    capture_pipeline pb(cat, {}, opts, nullptr, b.get(), nullptr, sb);
    pb.feed("b line\n");
    EXPECT_EQ(written(), "[a] a's last words\n[a] " + std::string(100, 'L') + "\n[b] b line\n");
    EXPECT_EQ(mux.partial_lines(), 2u);
    EXPECT_EQ(mux.long_lines_split(), 0u);
}

TEST_F(PassthroughTest, PipelineLongLineReachesTheMuxInPiecesAndLeavesWhole) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    const catalog cat = catalog::builtin();
    capture_stats stats;
    pipeline_options opts;
    opts.max_line = 64;
    capture_pipeline pa(cat, {}, opts, nullptr, a.get(), nullptr, stats);
    capture_pipeline pb(cat, {}, opts, nullptr, b.get(), nullptr, stats);
    const std::string long_line(1000, 'L');
    pa.feed(long_line.substr(0, 300));
    pb.feed("b line\n");
    pa.feed(long_line.substr(300) + "\n");
    pa.finish();
    pb.finish();
    EXPECT_EQ(written(), "[a] " + long_line + "\n[b] b line\n");
}

// Every line of `text` begins with one of the labels: no line was written inside another.
void expect_no_line_inside_another(const std::string& text) {
    std::size_t at = 0;
    while (at < text.size()) {
        const auto nl = text.find('\n', at);
        ASSERT_NE(nl, std::string::npos) << "unterminated tail";
        const std::string_view l(text.data() + at, nl - at);
        ASSERT_TRUE(l.starts_with("[a] ") || l.starts_with("[b] ")) << l.substr(0, 60);
        ASSERT_EQ(l.find("[b] ", 1), std::string_view::npos) << "a line inside another";
        at = nl + 1;
    }
}

TEST_F(PassthroughTest, HoldIsBoundedInBytesThenTheLongLineIsSplitNeverWrittenInto) {
    passthrough_mux mux(out, {.bytes = 64 << 10, .time = std::chrono::hours(1)});
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("long", true, false);
    const std::string line(1023, 'b');
    std::size_t held = 0;
    while (held <= (64 << 10)) {  // one worker cannot hold the others for ever
        b->write(line + "\n", true, true);
        held += 4 + line.size() + 1;
    }
    EXPECT_EQ(mux.long_lines_split(), 1u);
    a->write(" line", false, false);
    a->write("\n", false, true);
    b->write("after\n", true, true);
    const std::string text = written();
    expect_no_line_inside_another(text);
    std::string expected = "[a] long\n";
    for (std::size_t n = 0; n < held; n += 4 + line.size() + 1) expected += "[b] " + line + "\n";
    expected += "[a] " + std::string(passthrough_mux::continued_marker) + " line\n[b] after\n";
    EXPECT_EQ(text, expected);  // nothing lost, the rest of a's line marked
    EXPECT_EQ(mux.partial_lines(), 0u);
}

TEST_F(PassthroughTest, HoldIsBoundedInTimeAndTickSplitsForAQuietLongLine) {
    passthrough_mux mux(out, {.bytes = 1 << 20, .time = std::chrono::milliseconds(20)});
    std::chrono::steady_clock::time_point alarm{};
    int alarms = 0;
    mux.set_alarm([&](std::chrono::steady_clock::time_point when) {
        alarm = when;
        ++alarms;
    });
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("xxxx", true, false);
    b->write("progress b line 1\n", true, true);  // waits; the mux asks for a call back
    ASSERT_EQ(alarms, 1);
    mux.tick();  // too early: nothing happens
    EXPECT_EQ(mux.long_lines_split(), 0u);
    // The worker with the long line stays quiet: only the clock moves.
    ASSERT_TRUE(test::eventually([&] { return std::chrono::steady_clock::now() >= alarm; }));
    mux.tick();
    EXPECT_EQ(mux.long_lines_split(), 1u);
    a->write("yyyy", false, false);
    a->write("\n", false, true);
    const std::string text = written();
    expect_no_line_inside_another(text);
    EXPECT_EQ(text, "[a] xxxx\n[b] progress b line 1\n[a] " +
                        std::string(passthrough_mux::continued_marker) + "yyyy\n");
}

TEST_F(PassthroughTest, ALongLineSplitRightBeforeItsEndAddsNoEmptyLine) {
    passthrough_mux mux(out, {.bytes = 1 << 20, .time = std::chrono::milliseconds(0)});
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("xxxx", true, false);
    b->write("b\n", true, true);  // no time to wait at all: split at once
    a->write("\n", false, true);  // the split's newline ended it already
    b->write("b2\n", true, true);
    EXPECT_EQ(written(), "[a] xxxx\n[b] b\n[b] b2\n");
    EXPECT_EQ(mux.long_lines_split(), 1u);
}

TEST_F(PassthroughTest, AHeldLongLineTakesTheStreamAfterTheSplitAndWaitsForNothingElse) {
    passthrough_mux mux(out, {.bytes = 1 << 20, .time = std::chrono::hours(1)});
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("AAAA", true, false);
    b->write("b whole\n", true, true);
    b->write("BBBB", true, false);     // b's own long line, held behind a's
    a->write("aaaa\n", false, true);   // a's ends: b's held lines go, b's long line owns the stream
    a->write("a next\n", true, true);  // waits for b's long line
    b->write("bbbb\n", false, true);
    EXPECT_EQ(written(), "[a] AAAAaaaa\n[b] b whole\n[b] BBBBbbbb\n[a] a next\n");
    EXPECT_EQ(mux.long_lines_split(), 0u);
}

TEST_F(PassthroughTest, LinesTheStreamHoldsForTheLongLineCountTowardsTheBound) {
    passthrough_mux mux(out, {.bytes = 1 << 20, .time = std::chrono::milliseconds(0)});
    auto a = mux.make_source("[a] ");
    a->write("xxxx", true, false);
    out->append("{\"event\":1}\n");  // an event on the same stream waits for a's line
    a->write("yyyy", false, false);  // the bound (0 ms) has passed: the line is split
    a->write("\n", false, true);
    EXPECT_EQ(written(), "[a] xxxx\n{\"event\":1}\n[a] " +
                             std::string(passthrough_mux::continued_marker) + "yyyy\n");
    EXPECT_EQ(mux.long_lines_split(), 1u);
}

TEST(PassthroughOffTest, NoWriterMeansNoOutputAndNoCrash) {
    passthrough_mux mux(nullptr);
    EXPECT_EQ(mux.writer(), nullptr);
    auto a = mux.make_source("[a] ");
    a->write("x\n", true, true);
    a->write("long", true, false);
    a.reset();  // ends inside a long line with no writer
}

}  // namespace
}  // namespace telecap
