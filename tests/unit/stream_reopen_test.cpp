// stream_writer and rotation: a file renamed or deleted under the writer is reopened at its
// path on its own (logrotate's `create`), reopen() does it on request (ctl reopen, SIGUSR1),
// and the switch falls between two lines: every line lands whole, in one file, once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "io/stream_writer.hpp"
#include "io/streams.hpp"
#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;
using test::deadline_in;
using test::eventually;

std::size_t lines_in(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

// Appends "0\n", "1\n", ... about once a millisecond until stopped: a worker that keeps
// writing while its file is rotated.
class numbered_producer {
public:
    explicit numbered_producer(stream_writer& w)
        : thread_([this, &w] {
              while (!stop_.load()) {
                  w.append(std::to_string(n_.load()) + "\n");
                  n_.fetch_add(1);
                  std::this_thread::sleep_for(1ms);  // pacing, not a handshake
              }
          }) {}
    ~numbered_producer() { stop(); }
    int stop() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
        return n_.load();
    }

private:
    std::atomic<bool> stop_{false};
    std::atomic<int> n_{0};
    std::thread thread_;
};

// `before` then `after` hold 0..n-1 in order, each once, and both hold some.
void expect_split_sequence(const std::string& before, const std::string& after, int n) {
    EXPECT_GT(lines_in(before), 0u);
    EXPECT_GT(lines_in(after), 0u);
    std::string want;
    for (int i = 0; i < n; ++i) want += std::to_string(i) + "\n";
    EXPECT_EQ(before + after, want)
        << "before: " << lines_in(before) << " lines, after: " << lines_in(after) << ", sent " << n;
}

stream_writer_options quick_check() {
    stream_writer_options o;
    o.reopen_check = 100ms;
    return o;
}

TEST(StreamReopenTest, RenamedFileIsReopenedAtItsPathWithNothingLostOrTwice) {
    test::temp_dir dir;
    const auto path = dir / "out.log";
    auto w = stream_writer::for_file(path, quick_check());
    ASSERT_TRUE(w);
    numbered_producer p(**w);
    ASSERT_TRUE(eventually([&] { return lines_in(test::file_text(path)) >= 10; }));
    std::filesystem::rename(path, dir / "out.log.1");  // logrotate's `create`
    ASSERT_TRUE(eventually([&] { return lines_in(test::file_text(path)) >= 10; }));
    const int n = p.stop();
    (*w)->close(deadline_in());
    expect_split_sequence(test::file_text(dir / "out.log.1"), test::file_text(path), n);
    EXPECT_EQ((*w)->counters().reopens.load(), 1u);
    EXPECT_FALSE((*w)->lost());
}

TEST(StreamReopenTest, DeletedFileIsCreatedAgainAtItsPath) {
    test::temp_dir dir;
    const auto path = dir / "out.log";
    auto w = stream_writer::for_file(path, quick_check());
    ASSERT_TRUE(w);
    numbered_producer p(**w);
    ASSERT_TRUE(eventually([&] { return lines_in(test::file_text(path)) >= 10; }));
    // The deleted file stays readable through this fd: what went to it until the reopen.
    const int old_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(old_fd, 0);
    std::filesystem::remove(path);
    ASSERT_TRUE(eventually([&] { return lines_in(test::file_text(path)) >= 10; }));
    const int n = p.stop();
    (*w)->close(deadline_in());
    std::string before;
    char buf[4096];
    for (ssize_t r; (r = ::read(old_fd, buf, sizeof buf)) > 0;)
        before.append(buf, static_cast<std::size_t>(r));
    ::close(old_fd);
    expect_split_sequence(before, test::file_text(path), n);
    EXPECT_EQ((*w)->counters().reopens.load(), 1u);
}

TEST(StreamReopenTest, ReopenOnRequestWithTheCheckOff) {
    test::temp_dir dir;
    const auto path = dir / "out.log";
    stream_writer_options o;
    o.reopen_check = 0ms;  // only asked reopens
    auto w = stream_writer::for_file(path, o);
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->append("a\n"));
    ASSERT_TRUE((*w)->drain(deadline_in()));
    std::filesystem::rename(path, dir / "old.log");
    EXPECT_TRUE((*w)->append("b\n"));  // not asked yet: still the renamed file
    ASSERT_TRUE((*w)->drain(deadline_in()));
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE((*w)->reopen());
    EXPECT_TRUE((*w)->append("c\n"));
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(dir / "old.log"), "a\nb\n");
    EXPECT_EQ(test::file_text(path), "c\n");
    EXPECT_EQ((*w)->counters().reopens.load(), 1u);
}

TEST(StreamReopenTest, ReopenWaitsForTheEndOfAStreamedLine) {
    test::temp_dir dir;
    const auto path = dir / "out.log";
    auto w = stream_writer::for_file(path, quick_check());
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->append_part("long-", false));
    ASSERT_TRUE((*w)->drain(deadline_in()));  // its head is in the file now
    std::filesystem::rename(path, dir / "old.log");
    EXPECT_TRUE((*w)->reopen());
    // Several checks pass while the line is open: none may move it to the new file.
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ((*w)->counters().reopens.load(), 0u);
    EXPECT_TRUE((*w)->append_part("end\n", true));
    ASSERT_TRUE((*w)->drain(deadline_in()));
    ASSERT_TRUE(eventually([&] { return (*w)->counters().reopens.load() == 1; }));
    EXPECT_TRUE((*w)->append("next\n"));
    (*w)->close(deadline_in());
    EXPECT_EQ(test::file_text(dir / "old.log"), "long-end\n");
    EXPECT_EQ(test::file_text(path), "next\n");
}

TEST(StreamReopenTest, AStreamThatIsNotAFileIsNeverReopened) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto w = stream_writer::for_fd(fds[1], "pipe", quick_check());
    EXPECT_FALSE(w->reopen());
    EXPECT_TRUE(w->append("x\n"));
    w->close(deadline_in());
    char buf[8];
    EXPECT_EQ(::read(fds[0], buf, sizeof buf), 2);
    EXPECT_EQ(w->counters().reopens.load(), 0u);
    ::close(fds[0]);
    ::close(fds[1]);
}

// The stream set knows a rotated file by its new identity: a reload that names the path again
// gets the same writer, not a second one on the same file.
TEST(StreamReopenTest, StreamSetFindsARotatedFileByItsPath) {
    test::temp_dir dir;
    const std::string path = dir / "out.log";
    stream_set set(quick_check());
    auto w = set.file(path, "output 1");
    EXPECT_EQ(set.reopen_files(), 1);
    ASSERT_TRUE(eventually([&] { return w->counters().reopens.load() == 1; }));
    std::filesystem::rename(path, dir / "old.log");
    ASSERT_TRUE(eventually([&] { return w->counters().reopens.load() == 2; }));
    ASSERT_TRUE(std::filesystem::exists(path));
    try {
        set.file(path, "output 2");
        ADD_FAILURE() << "a second use of the rotated file was taken";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("are both"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace telecap
