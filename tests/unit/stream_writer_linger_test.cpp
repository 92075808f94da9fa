// stream_writer gathers small writes: one write(2) per batch (linger), not one per line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "io/stream_writer.hpp"

namespace telecap {
namespace {

bool readable_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

TEST(StreamWriterLinger, SmallLinesWaitForABatchThenGoOutInOneWrite) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    stream_writer_options o;
    o.linger = std::chrono::seconds(30);
    o.linger_bytes = 12;  // "one\ntwo\nsix\n"
    auto w = stream_writer::for_fd(fds[1], "pipe", o);
    ASSERT_TRUE(w->append("one\n"));
    // Without the linger the line would be written at once.
    EXPECT_FALSE(readable_within(fds[0], 100));
    ASSERT_TRUE(w->append("two\n"));
    ASSERT_TRUE(w->append("six\n"));  // the batch is complete: the writer is woken
    ASSERT_TRUE(readable_within(fds[0], 10000));
    char buf[64];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "one\ntwo\nsix\n");
    w->close(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    EXPECT_EQ(w->counters().written_lines.load(), 3u);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(StreamWriterLinger, CloseDoesNotWaitForTheLinger) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    stream_writer_options o;
    o.linger = std::chrono::seconds(30);
    auto w = stream_writer::for_fd(fds[1], "pipe", o);
    ASSERT_TRUE(w->append("last\n"));
    const auto t0 = std::chrono::steady_clock::now();
    w->close(t0 + std::chrono::seconds(20));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    char buf[16];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "last\n");
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(StreamWriterAppendOwned, TakesTheBufferAndKeepsTheOrderWithOtherAppends) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    stream_writer_options o;
    o.linger = std::chrono::seconds(30);  // everything stays pending until close
    auto w = stream_writer::for_fd(fds[1], "pipe", o);
    std::string first = "a\nb\n", second = "d\n";
    ASSERT_TRUE(w->append_owned(first, 2));  // nothing pending: taken as it is
    EXPECT_TRUE(first.empty());
    ASSERT_TRUE(w->append("c\n"));
    ASSERT_TRUE(w->append_owned(second, 1));  // something pending: copied after it
    EXPECT_TRUE(second.empty());
    w->close(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    char buf[64];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "a\nb\nc\nd\n");
    EXPECT_EQ(w->counters().written_lines.load(), 4u);
    ::close(fds[0]);
    ::close(fds[1]);
}

}  // namespace
}  // namespace telecap
