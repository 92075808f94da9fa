// passthrough_mux: per-source labels, long lines streamed whole while the other sources' lines
// wait, a source that ends inside its long line, a last line without newline, the hold bound.
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
    b->write("held ", true, false);    // even a long line of b's waits
    b->write("2\n", false, true);
    a->write("CCCC\n", false, true);
    b->write("after\n", true, true);
    EXPECT_EQ(written(), "[a] AAAABBBBCCCC\n[b] held 1\n[b] held 2\n[b] after\n");
    EXPECT_EQ(mux.forced_releases(), 0u);
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
    // No newline is added to a line that had none (contract: byte for byte).
    EXPECT_EQ(written(), "[a] unfinished[b] waiting\n[b] next\n");
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
    EXPECT_EQ(written(), "[w1] first line\n[w1] second, with no newline yet");
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

TEST_F(PassthroughTest, HoldIsBoundedInBytes) {
    passthrough_mux mux(out);
    auto a = mux.make_source("[a] ");
    auto b = mux.make_source("[b] ");
    a->write("long", true, false);
    const std::string line(1023, 'b');
    std::size_t held = 0;
    while (held <= passthrough_mux::hold_limit) {  // one worker cannot hold the others for ever
        b->write(line + "\n", true, true);
        held += 4 + line.size() + 1;
    }
    EXPECT_EQ(mux.forced_releases(), 1u);
    a->write(" line\n", false, true);
    const std::string out_text = written();
    EXPECT_EQ(out_text.substr(0, 8), "[a] long");  // the b lines went out inside it
    EXPECT_EQ(out_text.size(), 4 + 4 + held + 6);  // nothing lost
    EXPECT_EQ(out_text.substr(out_text.size() - 6), " line\n");
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
