// A stream_writer on a closed pipe in a process that keeps SIGPIPE's default action (kill):
// the write fails with EPIPE, counted and said, and the process lives on.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "io/stream_writer.hpp"

namespace telecap {
namespace {

TEST(StreamWriterSigpipe, AClosedPipeIsAnErrorNotDeathEvenWithSigpipesDefaultAction) {
    std::fflush(nullptr);  // the child must not write the parent's buffered output again
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        int fds[2];
        if (::pipe(fds) != 0) ::_exit(10);
        ::close(fds[0]);  // nobody will ever read
        {
            auto w = stream_writer::for_fd(fds[1], "closed", {});
            w->append("one\n", 1);
            w->close(std::chrono::steady_clock::now() + std::chrono::seconds(5));
            if (w->counters().write_errors.load() == 0) ::_exit(11);
            if (w->counters().dropped_lines.load() != 1) ::_exit(12);
        }
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace telecap
