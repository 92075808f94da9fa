// stream_set: one writer per stream whatever it is called, files named twice or equal to an
// input refused, and close_all closing "stderr" last so the others' losses are still said.
#include "io/streams.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "io/log_sink.hpp"
#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;
using test::deadline_in;

std::string message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<no std::invalid_argument>";
}

TEST(StreamSetTest, OneWriterPerStreamWhateverItIsCalled) {
    auto p = test::make_pipe();
    const int other = ::fcntl(p.write.get(), F_DUPFD_CLOEXEC, 10);
    ASSERT_GE(other, 0);
    unique_fd other_fd(other);
    stream_set set;
    auto a = set.standard(p.write.get());
    EXPECT_EQ(set.standard(p.write.get()), a);
    EXPECT_EQ(set.standard(other), a);  // another fd, the same pipe: one writer
    // The same pipe named as a file is that writer too, not a second one.
    EXPECT_EQ(set.file("/dev/fd/" + std::to_string(other), "output 1"), a);
    EXPECT_EQ(set.all().size(), 1u);
    EXPECT_EQ(a->name(), "fd " + std::to_string(p.write.get()));
    a->append("x\n");
    EXPECT_TRUE(a->drain(deadline_in()));
    EXPECT_EQ(test::read_available(p.read.get()), "x\n");
}

TEST(StreamSetTest, TheSameFileTwiceIsRefused) {
    test::temp_dir dir;
    stream_set set;
    auto w = set.file(dir / "out.log", "output 1");
    ASSERT_TRUE(w);
    const auto msg = message_of([&] { set.file(dir / "out.log", "output 2"); });
    EXPECT_NE(msg.find("output 2 and output 1 are both"), std::string::npos) << msg;
    // Another name of the same file (a hard link) is the same file.
    std::filesystem::create_hard_link(dir / "out.log", dir / "link.log");
    const auto msg2 = message_of([&] { set.file(dir / "link.log", "--rejects"); });
    EXPECT_NE(msg2.find("--rejects and output 1 are both"), std::string::npos) << msg2;
    EXPECT_EQ(set.all().size(), 1u);
}

TEST(StreamSetTest, AnOutputEqualToAnInputIsRefused) {
    test::temp_dir dir;
    { std::ofstream(dir / "in.log") << "data\n"; }
    stream_set set;
    set.claim_input(dir / "in.log");
    const auto msg = message_of([&] { set.file(dir / "in.log", "output 1"); });
    EXPECT_NE(msg.find("is the input"), std::string::npos) << msg;
    EXPECT_EQ(test::file_text(dir / "in.log"), "data\n");  // untouched

    // The other way round: the input named after the output.
    set.file(dir / "out.log", "output 2");
    const auto msg2 = message_of([&] { set.claim_input(dir / "out.log"); });
    EXPECT_NE(msg2.find("is also output 2"), std::string::npos) << msg2;
}

TEST(StreamSetTest, InputsThatCannotBeOverwrittenAreNotClaimed) {
    test::temp_dir dir;
    stream_set set;
    EXPECT_NO_THROW(set.claim_input(dir / "missing.log"));  // reported when read
    EXPECT_NO_THROW(set.claim_input("/dev/null"));          // not a regular file
    EXPECT_NO_THROW(set.file("/dev/null", "output 1"));
}

TEST(StreamSetTest, AFileThatCannotBeOpenedIsASystemError) {
    test::temp_dir dir;
    stream_set set;
    try {
        set.file(dir / "no/such/out.log", "output 1");
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find("output 1"), std::string::npos) << e.what();
    }
}

TEST(StreamSetTest, LostWhenAnyStreamDropped) {
    stream_writer_options o;
    o.retry_min = 1ms;
    o.retry_max = 5ms;
    test::log_capture log;
    stream_set set(o);
    auto w = set.file("/dev/full", "output 1");
    EXPECT_FALSE(set.lost());
    w->append("x\n");
    set.close_all(std::chrono::steady_clock::now() + 20ms);
    EXPECT_TRUE(set.lost());
}

// stderr of this process becomes a pipe for the test; telecap's messages go to it through the
// stream_set's "stderr" writer, as in the agent.
class redirected_stderr {
public:
    redirected_stderr() : saved_(::dup(2)) { ::dup2(p_.write.get(), 2); }
    ~redirected_stderr() { restore(); }
    void restore() {
        if (saved_ < 0) return;
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
        p_.write.reset();
    }
    int read_fd() const { return p_.read.get(); }

private:
    test::pipe_fds p_ = test::make_pipe();
    int saved_;
};

TEST(StreamSetTest, CloseAllClosesStderrLastSoLossesAreSaid) {
    redirected_stderr err;
    {
        test::logger_guard restore_logger;  // before the set: the logger holds its stderr
        stream_writer_options o;
        o.retry_min = 1ms;
        o.retry_max = 5ms;
        stream_set set(o);
        auto to_stderr = set.standard(2);
        ASSERT_EQ(to_stderr->name(), "stderr");
        auto l =
            std::make_shared<spdlog::logger>("t", std::make_shared<stream_log_sink>(to_stderr));
        l->set_pattern("%v");
        set_logger(l);
        // Added after stderr: in creation order it would close after stderr, unheard.
        auto full = set.file("/dev/full", "output 1");
        full->append("never written\n");
        ASSERT_TRUE(test::eventually([&] { return full->counters().write_errors.load() >= 1; }));
        set.close_all(std::chrono::steady_clock::now() + 50ms);
    }
    err.restore();
    const std::string said = test::read_to_eof(err.read_fd());
    EXPECT_NE(said.find("/dev/full: write failed: No space left on device"), std::string::npos)
        << said;
    EXPECT_NE(said.find("/dev/full: 1 lines (14 bytes) could not be written before the end: "
                        "dropped"),
              std::string::npos)
        << said;
}

}  // namespace
}  // namespace telecap
