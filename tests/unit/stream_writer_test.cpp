// stream_writer: whole lines from concurrent producers, the soft and hard limits, a dead pipe,
// a failing file that is reopened and resumes, close() with a deadline that drops, counts and
// says the rest.
#include "io/stream_writer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;
using test::deadline_in;
using test::eventually;

std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < s.size()) {
        const auto nl = s.find('\n', at);
        if (nl == std::string::npos) {
            out.push_back(s.substr(at));  // an unterminated tail shows up as its own entry
            break;
        }
        out.push_back(s.substr(at, nl - at));
        at = nl + 1;
    }
    return out;
}

// "<who> <seq> <filler>": the filler length varies, some lines exceed PIPE_BUF and 64 KiB.
std::string line_of(char who, int seq) {
    const std::size_t len = seq % 97 == 0 ? 70000 : seq % 13 == 0 ? 5000 : 10 + seq % 50;
    return std::string(1, who) + " " + std::to_string(seq) + " " + std::string(len, who) + "\n";
}

// Checks that every line is one of the producers' lines, whole, and each producer's in order.
void expect_whole_lines(const std::string& out, const std::string& producers, int each) {
    std::map<char, int> next;
    for (const auto& l : split_lines(out)) {
        ASSERT_GE(l.size(), 3u) << "a cut line";
        const char who = l[0];
        ASSERT_NE(producers.find(who), std::string::npos) << "a cut line: " << l.substr(0, 40);
        const int seq = next[who]++;
        ASSERT_EQ(l + "\n", line_of(who, seq)) << "producer " << who << " line " << seq;
    }
    for (char who : producers) EXPECT_EQ(next[who], each) << who;
}

TEST(StreamWriterTest, WritesLinesToAPipeAndCountsThem) {
    auto p = test::make_pipe();
    auto w = stream_writer::for_fd(p.write.get(), "pipe");
    EXPECT_EQ(w->name(), "pipe");
    EXPECT_TRUE(w->append("one\n"));
    EXPECT_TRUE(w->append("two\nthree\n", 2));
    EXPECT_TRUE(w->append(""));  // nothing: fine
    EXPECT_TRUE(w->drain(deadline_in()));
    EXPECT_EQ(test::read_available(p.read.get()), "one\ntwo\nthree\n");
    EXPECT_EQ(w->counters().written_lines.load(), 3u);
    EXPECT_EQ(w->counters().written_bytes.load(), 14u);
    EXPECT_EQ(w->buffered(), 0u);
    EXPECT_FALSE(w->lost());
    w->close(deadline_in());
    w->close(deadline_in());  // idempotent
}

TEST(StreamWriterTest, TwoProducersOnAPipeNeverCutLines) {
    auto p = test::make_pipe();
    auto w = stream_writer::for_fd(p.write.get(), "pipe");
    p.write.reset();  // the writer has its own description: EOF comes when it is gone
    auto reader = std::async(std::launch::async, [&] { return test::read_to_eof(p.read.get()); });
    constexpr int each = 3000;
    std::thread a([&] {
        for (int i = 0; i < each; ++i) ASSERT_TRUE(w->append(line_of('A', i)));
    });
    std::thread b([&] {
        for (int i = 0; i < each; ++i) ASSERT_TRUE(w->append(line_of('B', i)));
    });
    a.join();
    b.join();
    EXPECT_TRUE(w->drain(deadline_in()));
    w->close(deadline_in());
    EXPECT_FALSE(w->lost());
    w.reset();
    ASSERT_EQ(reader.wait_for(test::patience), std::future_status::ready);
    expect_whole_lines(reader.get(), "AB", each);
}

TEST(StreamWriterTest, TwoProducersOnAFileNeverCutLines) {
    test::temp_dir dir;
    auto w = stream_writer::for_file(dir / "out.log");
    ASSERT_TRUE(w);
    constexpr int each = 2000;
    std::thread a([&] {
        for (int i = 0; i < each; ++i) (*w)->append(line_of('A', i));
    });
    std::thread b([&] {
        for (int i = 0; i < each; ++i) (*w)->append(line_of('B', i));
    });
    a.join();
    b.join();
    (*w)->close(deadline_in());
    EXPECT_FALSE((*w)->lost());
    expect_whole_lines(test::file_text(dir / "out.log"), "AB", each);
}

TEST(StreamWriterTest, FileIsAppendedNotTruncated) {
    test::temp_dir dir;
    { std::ofstream(dir / "out.log") << "before\n"; }
    auto w = stream_writer::for_file(dir / "out.log");
    ASSERT_TRUE(w);
    (*w)->append("after\n");
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(dir / "out.log"), "before\nafter\n");
}

TEST(StreamWriterTest, FileThatCannotBeOpenedIsAnError) {
    test::temp_dir dir;
    auto w = stream_writer::for_file(dir / "no/such/dir/out.log");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), std::errc::no_such_file_or_directory);
}

// A pipe nobody reads, already full, and a writer on it: nothing it is given can be written.
struct stalled_pipe {
    test::pipe_fds p = test::make_pipe();
    std::size_t prefilled = test::fill(p.write.get());
};

TEST(StreamWriterTest, SoftLimitMeansCongestedUntilTheReaderCatchesUp) {
    stalled_pipe s;
    stream_writer_options o;
    o.soft_limit = 1000;
    o.hard_limit = 100000;
    auto w = stream_writer::for_fd(s.p.write.get(), "slow", o);
    std::promise<void> room;
    std::atomic<int> room_calls{0};
    w->on_room([&] {
        if (room_calls++ == 0) room.set_value();
    });
    const std::string line(99, 'x');
    for (int i = 0; i < 9; ++i) EXPECT_TRUE(w->append(line + "\n"));
    EXPECT_FALSE(w->congested());  // 900 bytes: under the soft limit
    for (int i = 0; i < 11; ++i) EXPECT_TRUE(w->append(line + "\n"));
    EXPECT_TRUE(w->congested());  // 2000 bytes, nothing written
    EXPECT_EQ(w->buffered(), 2000u);
    EXPECT_FALSE(w->wait_room(std::chrono::steady_clock::now() + 20ms));
    // The reader catches up: the writer empties its buffer and says there is room.
    auto reader = std::async(std::launch::async, [&] {
        std::string all;
        char buf[65536];
        while (all.size() < s.prefilled + 2000) {  // blocking reads: the writer fills the pipe
            const ssize_t n = ::read(s.p.read.get(), buf, sizeof buf);
            if (n <= 0) break;
            all.append(buf, static_cast<std::size_t>(n));
        }
        return all;
    });
    ASSERT_EQ(room.get_future().wait_for(test::patience), std::future_status::ready);
    EXPECT_TRUE(w->wait_room(deadline_in()));
    EXPECT_FALSE(w->congested());
    ASSERT_EQ(reader.wait_for(test::patience), std::future_status::ready);
    std::string expected;
    for (int i = 0; i < 20; ++i) expected += line + "\n";
    EXPECT_EQ(reader.get().substr(s.prefilled), expected);
    EXPECT_EQ(room_calls.load(), 1);
    EXPECT_FALSE(w->lost());
}

TEST(StreamWriterTest, HardLimitDropsWholeLinesAndCountsThem) {
    stalled_pipe s;
    stream_writer_options o;
    o.soft_limit = 500;
    o.hard_limit = 1000;
    auto w = stream_writer::for_fd(s.p.write.get(), "slow", o);
    const std::string line = std::string(99, 'y') + "\n";
    int accepted = 0;
    for (int i = 0; i < 25; ++i) accepted += w->append(line) ? 1 : 0;
    EXPECT_EQ(accepted, 10);  // 10 * 100 bytes reach the hard limit; the rest are dropped whole
    EXPECT_EQ(w->counters().dropped_lines.load(), 15u);
    EXPECT_EQ(w->counters().dropped_bytes.load(), 1500u);
    EXPECT_TRUE(w->lost());
    // force: the rest of a line already begun is never dropped.
    EXPECT_TRUE(w->append("forced\n", 1, true));
    EXPECT_EQ(w->buffered(), 1007u);
    // What was accepted is written whole once the reader reads.
    auto reader = std::async(std::launch::async, [&] { return test::read_to_eof(s.p.read.get()); });
    EXPECT_TRUE(w->drain(deadline_in()));
    w->close(deadline_in());
    w.reset();
    s.p.write.reset();
    ASSERT_EQ(reader.wait_for(test::patience), std::future_status::ready);
    std::string expected;
    for (int i = 0; i < 10; ++i) expected += line;
    expected += "forced\n";
    EXPECT_EQ(reader.get().substr(s.prefilled), expected);
}

TEST(StreamWriterTest, AnEmptyBufferTakesALineLargerThanTheHardLimit) {
    test::temp_dir dir;
    stream_writer_options o;
    o.soft_limit = 10;
    o.hard_limit = 100;
    auto w = stream_writer::for_file(dir / "out.log", o);
    ASSERT_TRUE(w);
    const std::string big = std::string(5000, 'z') + "\n";
    EXPECT_TRUE((*w)->append(big));
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(dir / "out.log"), big);
}

TEST(StreamWriterTest, ClosedPipeKillsTheStreamAndSaysTheLoss) {
    test::log_capture log;
    auto p = test::make_pipe();
    auto w = stream_writer::for_fd(p.write.get(), "out");
    EXPECT_TRUE(w->append("first\n"));
    EXPECT_TRUE(w->drain(deadline_in()));
    EXPECT_EQ(test::read_available(p.read.get()), "first\n");
    p.read.reset();  // nobody will ever read again
    EXPECT_TRUE(w->append("second\n"));
    ASSERT_TRUE(eventually([&] { return w->dead(); }));
    EXPECT_TRUE(w->given_up());
    EXPECT_FALSE(w->append("third\n"));  // dead: dropped at once
    EXPECT_EQ(w->counters().write_errors.load(), 1u);
    // What ctl status and top show as the output's last error.
    EXPECT_NE(w->last_error().find("out: write failed"), std::string::npos) << w->last_error();
    EXPECT_EQ(w->counters().written_lines.load(), 1u);
    EXPECT_EQ(w->counters().dropped_lines.load(), 2u);
    EXPECT_EQ(w->counters().dropped_bytes.load(), 13u);
    EXPECT_TRUE(w->lost());
    EXPECT_TRUE(log.contains("out: write failed: Broken pipe; further output to it is dropped"))
        << log.text();
    const auto t0 = std::chrono::steady_clock::now();
    w->close(deadline_in());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // nothing to wait for
}

TEST(StreamWriterTest, LogHookReplacesTheLogger) {
    test::log_capture log;
    auto p = test::make_pipe();
    auto w = stream_writer::for_fd(p.write.get(), "out");
    std::mutex mu;
    std::vector<std::pair<bool, std::string>> said;
    w->set_log_hook([&](bool error, const std::string& m) {
        std::lock_guard lock(mu);
        said.emplace_back(error, m);
    });
    p.read.reset();
    w->append("x\n");
    ASSERT_TRUE(eventually([&] { return w->dead(); }));
    w->close(deadline_in());
    std::lock_guard lock(mu);
    ASSERT_EQ(said.size(), 1u);
    EXPECT_TRUE(said[0].first);
    EXPECT_NE(said[0].second.find("Broken pipe"), std::string::npos);
    EXPECT_EQ(log.text(), "");  // not through the logger
}

TEST(StreamWriterTest, FailingFileIsRetriedReopenedAndResumes) {
    test::log_capture log;
    test::temp_dir dir;
    const std::string link = dir / "out.log";
    const std::string real = dir / "real.log";
    std::filesystem::create_symlink("/dev/full", link);  // every write: ENOSPC
    stream_writer_options o;
    o.retry_min = 1ms;
    o.retry_max = 10ms;
    auto w = stream_writer::for_file(link, o);
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->append("one\n"));
    ASSERT_TRUE(eventually([&] { return (*w)->counters().reopens.load() >= 1; }));
    EXPECT_GE((*w)->counters().write_errors.load(), 1u);
    EXPECT_FALSE((*w)->dead());          // a full disk may pass
    EXPECT_TRUE((*w)->append("two\n"));  // kept meanwhile
    EXPECT_FALSE((*w)->drain(std::chrono::steady_clock::now() + 5ms));
    // The disk has room again: the path now leads to a real file, found by the reopen.
    std::filesystem::create_symlink(real, dir / "next");
    std::filesystem::rename(dir / "next", link);
    EXPECT_TRUE((*w)->drain(deadline_in()));
    EXPECT_TRUE((*w)->append("three\n"));
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(real), "one\ntwo\nthree\n");
    EXPECT_FALSE((*w)->lost());
    EXPECT_TRUE(log.contains("write failed: No space left on device; retrying")) << log.text();
    EXPECT_TRUE(log.contains(link + ": writing again")) << log.text();
}

TEST(StreamWriterTest, CloseAtTheDeadlineDropsCountsAndSaysTheRest) {
    test::log_capture log;
    stalled_pipe s;
    auto w = stream_writer::for_fd(s.p.write.get(), "worker-out");
    EXPECT_TRUE(w->append("a123456789\n"));
    EXPECT_TRUE(w->append("b123456789\nc123456789\n", 2));
    const auto t0 = std::chrono::steady_clock::now();
    w->close(t0 + 50ms);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 45ms);
    EXPECT_LT(took, test::patience);
    EXPECT_EQ(w->counters().dropped_lines.load(), 3u);
    EXPECT_EQ(w->counters().dropped_bytes.load(), 33u);
    EXPECT_EQ(w->buffered(), 0u);
    EXPECT_TRUE(w->lost());
    EXPECT_TRUE(
        log.contains("worker-out: 3 lines (33 bytes) could not be written before the end: dropped"))
        << log.text();
    EXPECT_FALSE(w->append("late\n"));  // closed
    // Nothing of it reached the pipe, not even part of a line.
    EXPECT_EQ(test::read_available(s.p.read.get()).size(), s.prefilled);
}

TEST(StreamWriterTest, CloseOfAFailingFileDropsAndSaysTheRest) {
    test::log_capture log;
    stream_writer_options o;
    o.retry_min = 1ms;
    o.retry_max = 5ms;
    auto w = stream_writer::for_file("/dev/full", o);
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->append("x\n"));
    ASSERT_TRUE(eventually([&] { return (*w)->counters().write_errors.load() >= 1; }));
    (*w)->close(std::chrono::steady_clock::now() + 20ms);
    EXPECT_EQ((*w)->counters().dropped_lines.load(), 1u);
    EXPECT_TRUE(
        log.contains("/dev/full: 1 lines (2 bytes) could not be written before the end: "
                     "dropped"))
        << log.text();
}

TEST(StreamWriterTest, StreamedLineIsNeverCutByWholeLines) {
    test::temp_dir dir;
    auto w = stream_writer::for_file(dir / "out.log");
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->append_part("long-", false));
    EXPECT_TRUE((*w)->append("other\n"));  // held until the long line ends
    EXPECT_TRUE((*w)->append_part("line-", false));
    EXPECT_TRUE((*w)->append_part("end\n", true));
    EXPECT_TRUE((*w)->append("after\n"));
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(dir / "out.log"), "long-line-end\nother\nafter\n");
    EXPECT_EQ((*w)->counters().written_lines.load(), 3u);
}

TEST(StreamWriterTest, CloseInsideAStreamedLineCutsItOffTheFile) {
    test::temp_dir dir;
    auto w = stream_writer::for_file(dir / "out.log");
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->append("whole\n"));
    EXPECT_TRUE((*w)->append_part("half a li", false));
    EXPECT_TRUE((*w)->drain(deadline_in()));  // the half line is on disk now
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(dir / "out.log"), "whole\n");  // never half a line at the end
}

}  // namespace
}  // namespace telecap
