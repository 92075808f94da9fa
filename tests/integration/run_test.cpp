// telecap run with real worker processes (fixtures built by tests/spawn.cmake).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <regex>
#include <thread>

#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

std::vector<std::string> telecap_run(std::vector<std::string> opts, std::vector<std::string> cmd) {
    std::vector<std::string> argv{bin, "run"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return argv;
}

// The pid in the first lifecycle event with that name, or -1.
pid_t pid_in(const std::string& jsonl, const std::string& what) {
    const std::regex re("\"" + what + "\"\\][^\\n]*\"python_pid\":([0-9]+)");
    std::smatch m;
    return std::regex_search(jsonl, m, re) ? static_cast<pid_t>(std::stoi(m[1])) : -1;
}

// telecap started with its stdout on a pipe: `out` is the read end (the test closes it).
struct piped_run {
    pid_t pid = -1;
    int out = -1;
};

piped_run start_piped(std::vector<std::string> argv) {
    int fds[2];
    if (::pipe(fds) != 0) {
        ADD_FAILURE() << "pipe failed";
        return {};
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], 1);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

// The children of `pid` as the kernel lists them (all its threads).
std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    const std::string task = "/proc/" + std::to_string(pid) + "/task";
    if (DIR* d = ::opendir(task.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream f(task + "/" + e->d_name + "/children");
            for (pid_t c; f >> c;) out.push_back(c);
        }
        ::closedir(d);
    }
    return out;
}

// Bytes written so far (write(2) and friends, /proc/PID/io wchar) by all descendants of `pid`.
long bytes_written_below(pid_t pid) {
    long total = 0;
    for (const pid_t c : children_of(pid)) {
        std::ifstream io("/proc/" + std::to_string(c) + "/io");
        for (std::string key; io >> key;) {
            long v = 0;
            io >> v;
            if (key == "wchar:") total += v;
        }
        total += bytes_written_below(c);
    }
    return total;
}

// Reads from fd until `needle` has been seen `n` times (false at EOF or after 20 s).
bool read_until_count(int fd, std::string& got, const std::string& needle, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    char buf[4096];
    while (count(got, needle) < n) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0) return false;
        got.append(buf, static_cast<std::size_t>(r));
    }
    return true;
}

// Everything left to read from fd until EOF.
std::string drain_fd(int fd) {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

TEST(RunExitStatus, EveryExitCodePassesThrough) {
#if defined(__SANITIZE_ADDRESS__)
    const int step = 15;  // 0, 15, ..., 255: a sanitized telecap starts ten times slower
#else
    const int step = 1;
#endif
    for (int code = 0; code < 256; code += step) {
        const auto r = run(telecap_run({"-o", "null", "--passthrough", "none"},
                                       {FIXTURE_EXIT_WITH, std::to_string(code)}),
                           "exit");
        ASSERT_FALSE(r.timed_out);
        ASSERT_EQ(r.exit_code, code) << r.err;
    }
}

TEST(RunExitStatus, DeathBySignalIs128PlusN) {
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, SIGSEGV, SIGTERM, SIGUSR1}) {
        const auto r = run(telecap_run({"-o", "null", "--passthrough", "none"},
                                       {FIXTURE_EXIT_WITH, "0", std::to_string(sig)}),
                           "signal");
        EXPECT_EQ(r.exit_code, 128 + sig) << "signal " << sig << ": " << r.err;
    }
}

TEST(RunExitStatus, CommandNotFoundIs127AndNamed) {
    const auto r = run(telecap_run({}, {"/nonexistent/worker"}), "enoent");
    EXPECT_EQ(r.exit_code, 127);
    EXPECT_NE(r.err.find("/nonexistent/worker"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("\"spawn_failed\"]"), std::string::npos) << r.out;
}

TEST(RunExitStatus, NotExecutableIs126) {
    const std::string path = temp_path("not-executable");
    write_file(path, "#!/bin/sh\nexit 0\n");
    ::chmod(path.c_str(), 0644);
    const auto r = run(telecap_run({"-o", "null"}, {path}), "eacces");
    EXPECT_EQ(r.exit_code, 126) << r.err;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
}

TEST(RunSupervision, NeverRestartsByDefault) {
    const auto r = run(telecap_run({}, {FIXTURE_EXIT_WITH, "1"}), "never");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count(r.out, "\"spawned\"]"), 1u) << r.out;
    EXPECT_EQ(count(r.out, "\"terminated\"]"), 1u);
    EXPECT_EQ(count(r.out, "\"restarted\"]"), 0u);
}

TEST(RunSupervision, OnFailureRestartsWithBackoffThenGivesUp) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = run(telecap_run({"--restart", "on-failure", "--backoff-min", "0.05",
                                    "--backoff-max", "0.2", "--max-restarts", "3"},
                                   {FIXTURE_EXIT_WITH, "3"}),
                       "giveup");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(count(r.out, "\"spawned\"]"), 4u) << r.out;  // the first run and 3 restarts
    EXPECT_EQ(count(r.out, "\"restarted\"]"), 3u);
    EXPECT_EQ(count(r.out, "\"terminated\"]"), 4u);
    EXPECT_NE(r.err.find("gave up"), std::string::npos) << r.err;
    // Backoff 0.05 + 0.1 + 0.2 s (with 20% jitter) at the least.
    EXPECT_GE(elapsed, std::chrono::milliseconds(250));
}

TEST(RunSupervision, OnFailureDoesNotRestartASuccess) {
    const auto r = run(telecap_run({"--restart", "on-failure"}, {FIXTURE_EXIT_WITH, "0"}), "ok");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(count(r.out, "\"spawned\"]"), 1u);
}

TEST(RunSupervision, AlwaysRestartsASuccessToo) {
    const auto r =
        run(telecap_run({"--restart", "always", "--backoff-min", "0.01", "--max-restarts", "2"},
                        {FIXTURE_EXIT_WITH, "0"}),
            "always");
    EXPECT_EQ(count(r.out, "\"spawned\"]"), 3u) << r.out;
    EXPECT_EQ(r.exit_code, 0);
}

TEST(RunSupervision, WorkersKnowTelecapsPidAndTheirRunNumber) {
    // The worker's parent is its guard, new on every run; these two stay meaningful.
    const auto p = start(telecap_run({"--restart", "on-failure", "--backoff-min", "0.01",
                                      "--passthrough", "stdout", "-o", "null"},
                                     {"/bin/sh", "-c",
                                      "echo \"pid=$TELECAP_PID run=$TELECAP_RUN\" >&2; "
                                      "[ \"$TELECAP_RUN\" -ge 3 ]"}),
                         "runs");
    const auto r = wait(p);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string pid = std::to_string(p.pid);
    EXPECT_EQ(r.out, "pid=" + pid + " run=1\npid=" + pid + " run=2\npid=" + pid + " run=3\n");
}

TEST(RunSupervision, ManyWorkersEndingAtOnceAreAllReaped) {
    // 64 workers die of the same TERM within a few ms: every exit is seen, none is taken for
    // an orphan's (one was lost before when it came between two waits, and telecap waited
    // for it for ever).
    for (int round = 0; round < 3; ++round) {
        const auto argv = telecap_run(
            {"--instances", "64", "--grace", "60", "--passthrough", "none", "-o", "jsonl"},
            {FIXTURE_WRITE_LINES, "0", "hang"});
        const auto [pid, out] = start_piped(argv);
        std::string got;
        const bool all_up = read_until_count(out, got, "\"spawned\"]", 64);
        ::kill(pid, SIGTERM);
        process p{pid, "/dev/null", "/dev/null"};
        got += drain_fd(out);
        const auto r = wait(p, std::chrono::seconds(30));
        ::close(out);
        ASSERT_TRUE(all_up) << got;
        ASSERT_FALSE(r.timed_out) << "round " << round;
        EXPECT_EQ(r.exit_code, 128 + SIGTERM);
        EXPECT_EQ(count(got, "\"terminated\"]"), 64u) << "round " << round;
    }
}

TEST(RunSupervision, LifecycleEventsCarryWorkerAndPid) {
    const auto r = run(telecap_run({"--pool", "p1"}, {FIXTURE_WRITE_LINES, "2"}), "meta");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const pid_t pid = pid_in(r.out, "spawned");
    ASSERT_GT(pid, 0) << r.out;
    EXPECT_NE(r.out.find("\"worker_id\":\"p1-0\",\"pool_name\":\"p1\",\"python_pid\":" +
                         std::to_string(pid)),
              std::string::npos)
        << r.out;
    // Every event from the worker carries its pid.
    EXPECT_EQ(count(r.out, "\"python_pid\":" + std::to_string(pid)), 4u) << r.out;
}

TEST(RunSignals, ForwardsSignalsToTheWorkerGroupAndStopsOnTerm) {
    const auto p = start(telecap_run({"-o", "null"}, {FIXTURE_SIGNAL_ECHO}), "echo");
    ASSERT_TRUE(
        eventually([&] { return read_file(p.out_path).find("ready") != std::string::npos; }));
    // SIGUSR1 is telecap's own (reopen its files): tests/integration/operations_test.cpp.
    for (int sig : {SIGHUP, SIGUSR2, SIGQUIT}) {
        ::kill(p.pid, sig);
        const std::string want = "got SIG" + std::string(sigabbrev_np(sig));
        ASSERT_TRUE(eventually([&] {
            return read_file(p.out_path).find(want) != std::string::npos;
        })) << want;
    }
    ::kill(p.pid, SIGTERM);
    const auto r = wait(p);
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.out.find("got SIGTERM"), std::string::npos);
    EXPECT_EQ(r.exit_code, 0) << r.err;  // the worker exited 0 on TERM
}

TEST(RunSignals, SigintStopsWithTheStopSignal) {
    for (const auto& [stop, want] : {std::pair{std::string(), std::string("got SIGTERM")},
                                     std::pair{std::string("USR1"), std::string("got SIGUSR1")}}) {
        std::vector<std::string> opts{"-o", "null", "--grace", "0.5"};
        if (!stop.empty()) opts.insert(opts.end(), {"--stop-signal", stop});
        const auto p = start(telecap_run(opts, {FIXTURE_SIGNAL_ECHO}), "sigint");
        ASSERT_TRUE(
            eventually([&] { return read_file(p.out_path).find("ready") != std::string::npos; }));
        ::kill(p.pid, SIGINT);
        const auto r = wait(p);
        EXPECT_NE(r.out.find(want), std::string::npos) << stop << ": " << r.out;
        EXPECT_EQ(r.out.find("got SIGINT"), std::string::npos) << r.out;
    }
}

TEST(RunSignals, KillsAfterTheGracePeriod) {
    const auto p =
        start(telecap_run({"-o", "null", "--grace", "0.3"}, {FIXTURE_SIGNAL_ECHO, "--ignore-term"}),
              "grace");
    ASSERT_TRUE(
        eventually([&] { return read_file(p.out_path).find("ready") != std::string::npos; }));
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(p.pid, SIGTERM);
    const auto r = wait(p);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_NE(r.out.find("got SIGTERM"), std::string::npos);
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);
    EXPECT_GE(took, std::chrono::milliseconds(250));
    EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(RunSignals, SigkillOfTelecapTakesTheWorkerDown) {
    const std::string events = temp_path("sigkill.jsonl");
    const auto p = start(telecap_run({"-o", "jsonl:" + events}, {FIXTURE_SIGNAL_ECHO}), "kill9");
    ASSERT_TRUE(
        eventually([&] { return read_file(p.out_path).find("ready") != std::string::npos; }));
    pid_t worker = -1;
    const bool found =
        eventually([&] { return (worker = pid_in(read_file(events), "spawned")) > 0; });
    ::kill(p.pid, SIGKILL);
    wait(p);
    ASSERT_TRUE(found) << read_file(events);
    EXPECT_TRUE(eventually([&] { return process_gone(worker); })) << "worker " << worker;
}

TEST(RunSignals, NoOrphanedGrandchildIsLeftBehind) {
    const auto r = run(telecap_run({"-o", "null"}, {FIXTURE_SPAWN_GRANDCHILD, "30"}), "orphan");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const pid_t grandchild = static_cast<pid_t>(std::atoi(r.out.c_str()));
    ASSERT_GT(grandchild, 0) << r.out;
    EXPECT_TRUE(eventually([&] { return process_gone(grandchild); }, std::chrono::seconds(3)));
}

TEST(RunCapture, WorkerDyingMidLineLosesNothing) {
    const auto r = run(telecap_run({"--stats", temp_path("midline.json")},
                                   {FIXTURE_WRITE_LINES, "3", "partial", "kill"}),
                       "midline");
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);
    // Three lines and the last one without its newline: four events.
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 4u) << r.out;
}

TEST(RunCapture, HundredWorkersAtOnce) {
    const std::string stats = temp_path("hundred.json");
    const auto r = run(telecap_run({"--instances", "100", "-o", "null", "--stats", stats},
                                   {FIXTURE_WRITE_LINES, "100"}),
                       "hundred", std::chrono::seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"events\":10000,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"queue_full\":0"), std::string::npos) << s;
}

class RunDispatch : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Modes, RunDispatch, ::testing::Values("loop", "thread"));

TEST_P(RunDispatch, StuckOutputNeverStallsWorkersAndDropsAreCounted) {
    // stdout is a pipe nobody reads: the jsonl output's stream stays full for good.
    const std::string stats = temp_path(std::string("stuck-") + GetParam() + ".json");
    std::vector<std::string> argv =
        telecap_run({"--dispatch", GetParam(), "--queue", "64", "--grace", "1", "--stats", stats,
                     "--passthrough", "none"},
                    {FIXTURE_WRITE_LINES, "20000"});
    const auto [pid, out] = start_piped(argv);
    process p{pid, "/dev/null", "/dev/null"};
    const auto r = wait(p, std::chrono::seconds(30));
    ::close(out);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 3) << "events were lost: exit 3";
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"events\":20000,"), std::string::npos) << s;
    // Some were lost, and every loss is counted: in the queue (queue_full) or in the stream
    // that could not write them (stdout's dropped_lines), depending on where the stall bit.
    rapidjson::Document d;
    ASSERT_FALSE(d.Parse(s.c_str()).HasParseError()) << s;
    const auto& jsonl = d["outputs"]["output.0:jsonl"];
    const std::uint64_t queue_full = d["dropped"]["queue_full"].GetUint64();
    const std::uint64_t lost = queue_full + jsonl["events_dropped"].GetUint64() +
                               d["streams"]["stdout"]["dropped_lines"].GetUint64();
    EXPECT_GT(lost, 0u) << s;
    EXPECT_EQ(
        queue_full + jsonl["events_accepted"].GetUint64() + jsonl["events_dropped"].GetUint64(),
        20002u)
        << "events + 2 lifecycle events, each written or counted once: " << s;
}

TEST_P(RunDispatch, BlockModeDeliversEverythingWhileWorkersExit) {
    // A reader that stalls keeps the output (and with a dispatch thread, the queue) full, so the
    // loop stops reading while workers exit: their SIGCHLD must not end the wait (only a stop
    // does), so nothing is dropped.
    const std::string stats = temp_path(std::string("block-") + GetParam() + ".json");
    std::vector<std::string> argv =
        telecap_run({"--dispatch", GetParam(), "--overflow", "block", "--queue", "64",
                     "--instances", "20", "--stats", stats, "--passthrough", "none"},
                    {FIXTURE_WRITE_LINES, "2000"});
    const auto [pid, out] = start_piped(argv);
    std::size_t lines = 0;
    std::thread reader([&] {
        char buf[16384];
        ssize_t n;
        std::size_t since_pause = 0;
        while ((n = ::read(out, buf, sizeof buf)) > 0) {
            lines += static_cast<std::size_t>(std::count(buf, buf + n, '\n'));
            // Stalls longer than the loop's 100 ms wait slices, a dozen times in the run.
            if ((since_pause += static_cast<std::size_t>(n)) >= (std::size_t{1} << 20)) {
                since_pause = 0;
                std::this_thread::sleep_for(std::chrono::milliseconds(250));
            }
        }
    });
    process p{pid, "/dev/null", "/dev/null"};
    const auto r = wait(p, std::chrono::seconds(120));
    reader.join();
    ::close(out);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0);
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"events\":40000,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"queue_full\":0"), std::string::npos) << s;
    EXPECT_EQ(lines, 40000u + 2u * 20u);  // every event, and spawned + terminated per worker
}

// Reads from `fd` up to and including the first newline (telecap's first event is out).
void read_first_line(int fd) {
    char c = 0;
    while (::read(fd, &c, 1) == 1 && c != '\n') {
    }
}

// True once the pipe read by `fd` (and read by nobody) is full: every buffer slot is taken,
// so the kernel says no room to a writer (POLLOUT off). Asked through a write end of our own,
// opened by /proc and closed at once.
bool pipe_full(int fd) {
    const int w =
        ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (w < 0) return false;
    pollfd p{w, POLLOUT, 0};
    const int n = ::poll(&p, 1, 0);
    ::close(w);
    return n == 0;
}

// Bytes a process has read so far (its /proc/PID/io "rchar"), -1 when unknown.
long bytes_read_by(pid_t pid) {
    std::ifstream io("/proc/" + std::to_string(pid) + "/io");
    std::string key;
    long value = -1;
    while (io >> key >> value)
        if (key == "rchar:") return value;
    return -1;
}

TEST(RunCapture, BlockModeWithAStuckHandlerStillStopsOnTerm) {
    // stdout is a pipe nobody reads after the first event: the loop waits for room for good,
    // until SIGTERM; the stop's grace period (1 s) then ends the wait.
    const std::string stats = temp_path("blockstuck.json");
    const auto argv = telecap_run({"--overflow", "block", "--queue", "64", "--grace", "1",
                                   "--stats", stats, "--passthrough", "none"},
                                  {FIXTURE_WRITE_LINES, "20000"});
    const auto [pid, out] = start_piped(argv);
    read_first_line(out);  // running, its signals handled: TERM cannot kill it outright
    // Stuck for good: the pipe is full, so the handler, then the queue, then the loop wait.
    // And telecap has read 256 KiB from the worker, events for about twice that (its lines are
    // shorter than the events'), far more than the pipe's 64 KiB: the rest waits in telecap. A
    // full pipe alone may come with all of it written, a moment before the worker writes
    // more, and then nothing would be left to drop at the stop.
    ASSERT_TRUE(eventually([&] { return pipe_full(out) && bytes_read_by(pid) > (256L << 10); },
                           std::chrono::seconds(20)))
        << (::kill(pid, SIGKILL), "stdout never filled");
    ::kill(pid, SIGTERM);
    process p{pid, "/dev/null", "/dev/null"};
    const auto r = wait(p, std::chrono::seconds(30));
    ::close(out);
    EXPECT_FALSE(r.timed_out);
    const std::string s = read_file(stats);
    // Every event is written or counted lost: dropped from the queue when the grace period
    // ended the wait for room, or from stdout's buffer when its bounded close passed.
    const auto num = [&](const std::string& re) {
        std::smatch m;
        return std::regex_search(s, m, std::regex(re)) ? std::stol(m[1]) : -1L;
    };
    const long events =
        num("^\\{\"bytes\":[0-9]+,\"lines\":[0-9]+,\"telemetry_lines\":[0-9]+,"
            "\"events\":([0-9]+)");
    const long shutdown = num("\"shutdown\":([0-9]+)");
    const long written = num("\"stdout\":\\{\"written_lines\":([0-9]+)");
    const long dropped = num("\"stdout\":\\{[^}]*\"dropped_lines\":([0-9]+)");
    ASSERT_TRUE(events > 0 && shutdown >= 0 && written >= 0 && dropped >= 0) << s;
    EXPECT_GT(shutdown + dropped, 0) << s;
    // When the handler still waits on stdout at the shutdown's limit, the streams are closed
    // under it: what it hands over after that is refused by the stream and counted there (in
    // dropped_lines) as well as by the output.
    EXPECT_EQ(events + 2, written + dropped + shutdown) << s;  // + spawned, terminated
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << "the worker's status comes first";
}

TEST(RunCapture, BlockModeStopWithASlowHandlerLosesNothing) {
    // SIGTERM while the loop waits for a handler that is only slow: the stop begins, and
    // every event read from the workers is still delivered within the grace period (10 s).
    const std::string stats = temp_path("blockslow.json");
    const auto argv = telecap_run({"--overflow", "block", "--queue", "64", "--instances", "4",
                                   "--stats", stats, "--passthrough", "none"},
                                  {FIXTURE_WRITE_LINES, "100000"});
    const auto [pid, out] = start_piped(argv);
    read_first_line(out);
    // The handler stalls (nobody reads) while the SIGTERM arrives and the workers end, then
    // catches up.
    ASSERT_TRUE(eventually([&] { return pipe_full(out); }, std::chrono::seconds(20)))
        << (::kill(pid, SIGKILL), "stdout never filled");
    ::kill(pid, SIGTERM);
    // Every worker has ended and been reaped while the handler still stalls.
    const bool all_ended =
        eventually([&] { return children_of(pid).empty(); }, std::chrono::seconds(20));
    std::size_t lines = 1;
    std::thread reader([&] {
        char buf[16384];
        ssize_t n;
        while ((n = ::read(out, buf, sizeof buf)) > 0)
            lines += static_cast<std::size_t>(std::count(buf, buf + n, '\n'));
    });
    process p{pid, "/dev/null", "/dev/null"};
    const auto r = wait(p, std::chrono::seconds(60));
    reader.join();
    ::close(out);
    EXPECT_TRUE(all_ended);
    EXPECT_FALSE(r.timed_out);
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"queue_full\":0"), std::string::npos) << s;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(s, m, std::regex("\"events\":([0-9]+)"))) << s;
    EXPECT_EQ(lines, std::stoul(m[1]) + 2u * 4u);  // every event, spawned + terminated each
}

TEST(RunCapture, StatsCarryASnapshotOfTheLiveRegistry) {
    const std::string stats = temp_path("registry.json");
    const auto r = run(telecap_run({"-o", "null", "--passthrough", "none", "--stats", stats},
                                   {FIXTURE_WRITE_LINES, "6", "mixed"}),
                       "registry");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string s = read_file(stats);
    for (const char* series :
         {R"("telecap_events_total{pool=\"default\",worker=\"default-0\"}":3,)",
          R"("telecap_lines_total{pool=\"default\",worker=\"default-0\"}":6,)",
          R"("telecap_passthrough_lines_total{pool=\"default\",worker=\"default-0\"}":3,)",
          R"("telecap_workers_up":0)", R"("telecap_queue_depth":0,)",
          R"("telecap_dropped_total{reason=\"queue_full\"}":0,)", R"("process_open_fds":)",
          R"("telecap_stream_dropped_lines_total{stream=\"stdout\"}":0,)"})
        EXPECT_NE(s.find(series), std::string::npos) << series << " in " << s;
}

TEST(RunCapture, ALineBeyondTheLineBudgetPassesThroughWholeAndIsCounted) {
    // A 200 KB line, read 64 KiB at a time, does not fit a 64 KiB budget for partial lines:
    // it goes on as a long line (streamed, never held), every byte passes through.
    const std::string stats = temp_path("budget.json");
    const std::string pass = temp_path("budget.pass");
    const auto r = run(telecap_run({"--line-budget", "65536", "-o", "null", "--passthrough", pass,
                                    "--stats", stats},
                                   {FIXTURE_WRITE_LINES, "1", "plain", "huge=200000"}),
                       "budget");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_file(pass), "line 1\n" + std::string(200000, 'x') + "\n");
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"long_lines\":1,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"telecap_line_budget_cuts_total\":1,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"telecap_line_budget_used_bytes\":0,"), std::string::npos) << s;
}

// Read coalescing: a worker writing a line every 100 us gets read in piles (the loop lingers),
// every event still delivered; one writing every 30 ms is read at once, line by line.
long lingers(const std::string& stats) {
    const std::string key = "\"telecap_read_lingers_total\":";
    const auto at = stats.find(key);
    return at == std::string::npos ? -1 : std::stol(stats.substr(at + key.size()));
}

std::vector<std::string> paced_emitter(int n, double gap_s) {
    return {"python3", "-c",
            "import os, time\n"
            "for i in range(" +
                std::to_string(n) +
                "):\n"
                "    os.write(2, "
                "b'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}\\n')\n"
                "    time.sleep(" +
                std::to_string(gap_s) + ")\n"};
}

TEST(RunCapture, SmallFrequentReadsAreCoalescedAndNothingIsLost) {
    const std::string stats = temp_path("linger.json");
    auto r =
        run(telecap_run({"--overflow", "block", "--stats", stats}, paced_emitter(3000, 0.0001)),
            "linger");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"call\",\"start\"]"), 3000u);
    std::string s = read_file(stats);
    EXPECT_GT(lingers(s), 0) << s;

    r = run(telecap_run({"--stats", stats}, paced_emitter(5, 0.03)), "no-linger");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"call\",\"start\"]"), 5u);
    s = read_file(stats);
    EXPECT_EQ(lingers(s), 0) << s;
}

TEST(RunCapture, StatsCarryAPoolSocketOutputsCounters) {
    const std::string sock = temp_path("pool.sock");
    const std::string stats = temp_path("poolsock.json");
    const std::string cfg = temp_path("poolsock.yaml");
    write_file(cfg,
               "pools:\n"
               "  - name: alpha\n"
               "    command: [\"" FIXTURE_WRITE_LINES
               "\", \"3\"]\n"
               "    outputs: [\"unix:" +
                   sock + "\"]\n");
    const auto r = run({bin, "run", "--config", cfg, "-o", "null", "--stats", stats}, "poolsock");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string s = read_file(stats);
    EXPECT_NE(
        s.find("\"outputs\":{\"pool.alpha.output.0:unix:" + sock + "\":{\"clients_accepted\":0,"),
        std::string::npos)
        << s;
}

// Hosts that connect to -o unix:PATH and never read: past max_hosts they are refused, the
// others are cut off at their budgets, and the capture is never held up (with --overflow block
// a handler that blocked would stall the worker; the test would time out).
TEST(RunCapture, StalledSocketHostsAreCutOffAndNeverHoldUpTheCapture) {
    const std::string sock = temp_path("stalled.sock");
    const std::string ready = temp_path("stalled.ready");
    const std::string out = temp_path("stalled.jsonl");
    const std::string stats = temp_path("stalled.json");
    ::unlink(ready.c_str());
    const auto p = start(telecap_run({"-o",
                                      "unix:" + sock +
                                          "?max_hosts=3&max_backlog=65536&"
                                          "max_total_backlog=131072",
                                      "-o", "jsonl:" + out, "--overflow", "block", "--stats", stats,
                                      "--passthrough", "none"},
                                     {"/bin/sh", "-c",
                                      "while [ ! -e '" + ready + "' ]; do sleep 0.01; done; exec " +
                                          FIXTURE_WRITE_LINES + " 20000"}),
                         "stalled");
    ASSERT_GT(p.pid, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    ASSERT_LT(sock.size(), sizeof a.sun_path);
    std::memcpy(a.sun_path, sock.data(), sock.size());
    const auto connect_host = [&] {
        int fd = -1;
        const bool ok = eventually([&] {  // until telecap listens
            fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return true;
            ::close(fd);
            return false;
        });
        return ok ? fd : -1;
    };
    std::vector<int> hosts;
    for (int i = 0; i < 5; ++i) {
        hosts.push_back(connect_host());
        ASSERT_GE(hosts.back(), 0);
    }
    // The last two are refused: EOF at once. (The first three are taken in order.)
    for (int i = 3; i < 5; ++i) {
        pollfd pf{hosts[static_cast<std::size_t>(i)], POLLIN, 0};
        ASSERT_EQ(::poll(&pf, 1, 10000), 1) << "host " << i << " was not refused";
        char c;
        EXPECT_EQ(::read(hosts[static_cast<std::size_t>(i)], &c, 1), 0);
    }
    write_file(ready, "");
    const auto r = wait(p, std::chrono::seconds(60));
    for (int fd : hosts) ::close(fd);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::ifstream in(out);
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    EXPECT_EQ(lines, 20000u + 2u);  // every event, and spawned + terminated
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"queue_full\":0"), std::string::npos) << s;
    EXPECT_NE(s.find("\"clients_accepted\":3,\"clients_connected\":0,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"clients_refused\":{\"max_hosts\":2,\"fds\":0}"), std::string::npos) << s;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        s, m,
        std::regex("\"clients_dropped\":\\{\"backlog\":([0-9]+),\"total_backlog\":([0-9]+)\\}")))
        << s;
    EXPECT_EQ(std::stoul(m[1]) + std::stoul(m[2]), 3u) << s;
    EXPECT_NE(r.err.find("disconnected"), std::string::npos) << r.err;
}

TEST(RunCapture, DedicatedTelemetryFd) {
    const auto r = run(
        telecap_run({"--telemetry-fd", "3"}, {FIXTURE_WRITE_LINES, "5", "fd=telemetry"}), "tfd");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 5u) << r.out;
}

TEST(RunCapture, WithTelemetryFdStderrCannotInjectEvents) {
    const auto r = run(telecap_run({"--telemetry-fd", "3"}, {FIXTURE_WRITE_LINES, "5"}), "inject");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 0u) << r.out;
    EXPECT_EQ(count(r.err, "TELEMETRY:{"), 5u) << r.err;  // passed through untouched
}

TEST(RunCapture, CaptureStdout) {
    const auto r =
        run(telecap_run({"--capture-stdout"}, {FIXTURE_WRITE_LINES, "4", "fd=stdout"}), "stdout");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 4u) << r.out;
}

TEST(RunCapture, LabelPrefixesPassThroughLines) {
    const auto r = run(
        telecap_run({"--label", "--instances", "2"}, {FIXTURE_WRITE_LINES, "3", "plain"}), "label");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.err, "[default-0] line "), 3u) << r.err;
    EXPECT_EQ(count(r.err, "[default-1] line "), 3u) << r.err;
}

TEST(RunConfig, BadConfigNamesFileAndLine) {
    const std::string path = temp_path("bad.yaml");
    write_file(path, "pools:\n  - name: a\n    command: [\"true\"]\n    restart: sometimes\n");
    const auto r = run({bin, "run", "--config", path}, "badcfg");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":4:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("restart"), std::string::npos) << r.err;
}

TEST(RunConfig, PoolsFromConfig) {
    const std::string path = temp_path("pools.yaml");
    write_file(path,
               "pools:\n"
               "  - name: alpha\n"
               "    command: [\"" FIXTURE_WRITE_LINES
               "\", \"2\"]\n"
               "    instances: 2\n"
               "  - name: beta\n"
               "    command: [\"" FIXTURE_WRITE_LINES "\", \"3\"]\n");
    const auto r = run({bin, "run", "--config", path}, "pools");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"worker_id\":\"alpha-1\""), 2u + 2u) << r.out;  // spawned+terminated
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 2u * 2u + 3u);
}

// ---------------------------------------------------------------------------------------------
// Faults of the run core: shared streams, stalled readers, live parse, files.

namespace faults {

// A child running argv with fds 0, 1, 2 as given (-1: /dev/null).
pid_t start_with(std::vector<std::string> argv, int in, int out, int err) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        ::dup2(in >= 0 ? in : null, 0);
        ::dup2(out >= 0 ? out : null, 1);
        ::dup2(err >= 0 ? err : null, 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

// Reads from fd until `needle` has been seen or the deadline passes.
bool read_until(int fd, std::string& got, const std::string& needle,
                std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (got.find(needle) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return got.find(needle) != std::string::npos;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

int exit_of(pid_t pid, std::chrono::milliseconds timeout, bool* timed_out) {
    int status = 0;
    const bool done = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
    *timed_out = !done;
    if (!done) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct line_kinds {
    std::size_t events = 0;  // whole event lines
    std::size_t plain = 0;   // whole "line N" lines of write_lines
    std::size_t bad = 0;     // anything else: a line cut into another (the first few reported)
};

line_kinds whole_lines(const std::string& out) {
    line_kinds k;
    std::size_t pos = 0;
    const std::regex plain_re("line [0-9]+");
    while (pos < out.size()) {
        const auto nl = out.find('\n', pos);
        const std::string line = out.substr(pos, nl == std::string::npos ? nl : nl - pos);
        pos = nl == std::string::npos ? out.size() : nl + 1;
        if (line.rfind("{\"event\":[", 0) == 0 && line.back() == '}' &&
            count(line, "{\"event\":[") == 1)
            ++k.events;
        else if (std::regex_match(line, plain_re))
            ++k.plain;
        else if (++k.bad < 5)
            ADD_FAILURE() << "cut line: " << line.substr(0, 200);
    }
    return k;
}

}  // namespace faults

TEST(RunFaults, EventsAndPassThroughOnOneStreamNeverCutEachOther) {
    // Events (dispatch thread) and pass-through (loop thread) both go to stdout: every line
    // read back is whole, an event or a worker's line (12,761 of 1,000,000 were cut before).
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const long n = 200000;
    const pid_t pid = faults::start_with(
        telecap_run({"--overflow", "block", "--passthrough", "stdout", "-o", "jsonl"},
                    {FIXTURE_WRITE_LINES, std::to_string(n), "mixed"}),
        -1, fds[1], -1);
    ::close(fds[1]);
    const std::string out = drain_fd(fds[0]);
    ::close(fds[0]);
    bool timed_out = false;
    EXPECT_EQ(faults::exit_of(pid, std::chrono::seconds(60), &timed_out), 0);
    const auto [events, plain, bad] = faults::whole_lines(out);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(plain, static_cast<std::size_t>(n / 2));
    EXPECT_EQ(events, static_cast<std::size_t>(n / 2 + 2));  // + spawned, terminated
    EXPECT_FALSE(timed_out);
}

// A worker that writes to the stdout it would inherit while events go to stdout (the default
// -o jsonl): its stdout is captured by default and goes through the events' writer, so every
// line read back is whole (150 of 40,000 were mangled before, with no warning).
TEST(RunFaults, AWorkersStdoutNeverCutsIntoTheEventsOnStdout) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const long n = 20000;
    const std::string lines = std::to_string(n);
    const pid_t pid = faults::start_with(
        telecap_run(
            {"--stats", temp_path("stdout-shared.json")},
            {"/bin/sh", "-c", "\"$0\" " + lines + " plain fd=stdout & \"$0\" " + lines + "; wait",
             FIXTURE_WRITE_LINES}),
        -1, fds[1], -1);
    ::close(fds[1]);
    const std::string out = drain_fd(fds[0]);
    ::close(fds[0]);
    bool timed_out = false;
    EXPECT_EQ(faults::exit_of(pid, std::chrono::seconds(60), &timed_out), 0);
    EXPECT_FALSE(timed_out);
    const auto [events, plain, bad] = faults::whole_lines(out);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(plain, static_cast<std::size_t>(n));
    EXPECT_EQ(events, static_cast<std::size_t>(n + 2));  // + spawned, terminated
}

// Two workers: one streams a line longer than --max-line and keeps it open for 3 s; the other
// writes a line at once and another 1.5 s later. Before, the second write forced the held
// lines out inside the long line ("xxx[default-1] progress b line 1"), counted nowhere. Now
// the first waits at most the mux's bound (1 s), then the long line is split and marked.
TEST(RunCapture, AnotherWorkersLineIsNeverWrittenInsideALongLine) {
    const std::string flag = temp_path("long-open");
    const std::string stats = temp_path("split.json");
    // The workers' waits are the scenario (a line left open, a line later), not handshakes;
    // worker 1 starts once worker 0's head is out (the flag).
    const std::string script =
        "if [ \"$TELECAP_WORKER_ID\" = default-0 ]; then"
        "  printf '%0200d' 0 | tr 0 x >&2; : > " +
        flag +
        "; sleep 3; printf 'yyyy\\n' >&2;"
        " else"
        "  while [ ! -e " +
        flag +
        " ]; do sleep 0.01; done; echo 'progress b line 1' >&2;"
        "  sleep 1.5; echo 'progress b line 2' >&2;"
        " fi";
    const auto r = run(telecap_run({"--instances", "2", "--label", "--max-line", "64", "-o", "null",
                                    "--stats", stats},
                                   {"/bin/sh", "-c", script}),
                       "split");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string x(200, 'x');
    EXPECT_EQ(r.err.find("xxx[default-1]"), std::string::npos) << r.err;
    EXPECT_EQ(r.err, "[default-0] " + x + "\n[default-1] progress b line 1\n" +
                         "[default-1] progress b line 2\n[default-0] [telecap: continued] yyyy\n");
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"long_lines_split\":1,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"telecap_long_lines_split_total\":1"), std::string::npos) << s;
}

// A worker's last line without a newline gets one when its pipe ends, so the next line on the
// stream (another worker's) cannot glue to it; counted.
TEST(RunCapture, AnUnterminatedLastLineIsEndedAndCounted) {
    const std::string stats = temp_path("partial.json");
    const auto r = run(telecap_run({"-o", "null", "--stats", stats},
                                   {FIXTURE_WRITE_LINES, "2", "plain", "partial"}),
                       "partial");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "line 1\nline 2\nline 3\n");
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"partial_lines\":1,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"telecap_partial_lines_total\":1"), std::string::npos) << s;
}

TEST(RunFaults, AStalledStderrReaderNeverFreezesTheSupervisor) {
    // telecap's stderr is a pipe nobody reads, and the worker floods it with log lines, then
    // hangs. SIGTERM must still stop the worker and telecap within the grace period (before,
    // the loop sat in write(2) and ignored TERM, grace and SIGKILL).
    for (const char* overflow : {"drop-newest", "block"}) {
        int err[2];
        ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
        const auto stats = temp_path(std::string("stalled-") + overflow + ".json");
        const pid_t pid = faults::start_with(
            telecap_run({"--overflow", overflow, "--grace", "1", "-o", "null", "--stats", stats},
                        {FIXTURE_WRITE_LINES, "400000", "plain", "hang"}),
            -1, -1, err[1]);
        ::close(err[1]);
        // The worker has written more than both pipes hold (its stderr, telecap's stderr):
        // the rest is in telecap's buffer or dropped, and telecap's writes are stalled.
        ASSERT_GT(pid, 0);
        const long both_pipes = ::fcntl(err[0], F_GETPIPE_SZ) + (512L << 10);
        ASSERT_TRUE(eventually([&] { return bytes_written_below(pid) > both_pipes; },
                               std::chrono::seconds(20)))
            << (::kill(pid, SIGKILL), "the worker never wrote enough");
        const auto t0 = std::chrono::steady_clock::now();
        ::kill(pid, SIGTERM);
        bool timed_out = false;
        const int code = faults::exit_of(pid, std::chrono::seconds(20), &timed_out);
        const auto took = std::chrono::steady_clock::now() - t0;
        ::close(err[0]);
        EXPECT_FALSE(timed_out) << overflow;
        EXPECT_EQ(code, 128 + SIGTERM) << overflow;  // the worker's status: it got the TERM
        // Grace (1 s) plus 2 s: one deadline for the handlers and every stream together.
        EXPECT_LT(took, std::chrono::seconds(3)) << overflow;
        const std::string s = read_file(stats);
        EXPECT_TRUE(std::regex_search(s, std::regex("\"stderr\":\\{[^}]*\"dropped_lines\":[1-9]")))
            << overflow << ": " << s;
    }
}

TEST(ParseLive, EventsAndPassThroughComeAsTheyAreRead) {
    // `worker 2>&1 | telecap parse`: the first line's event appears while the input is still
    // open (before, nothing came until 64 KiB or the end), and TERM flushes and writes --stats.
    int in[2], out[2];
    ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const auto stats = temp_path("live.json");
    const pid_t pid = faults::start_with(
        {bin, "parse", "--passthrough", "stdout", "--stats", stats}, in[0], out[1], -1);
    ::close(in[0]);
    ::close(out[1]);
    const std::string line =
        R"(TELEMETRY:{"event": "tool.execution.start", "measurements": {"count": 1}, "metadata": {}, "timestamp_ns": 1, "correlation_id": ""})"
        "\nstarting up\n";
    ASSERT_EQ(::write(in[1], line.data(), line.size()), static_cast<ssize_t>(line.size()));
    std::string got;
    // Both come while the input is still open (events from the dispatch thread, the line
    // from the reading one: in either order).
    EXPECT_TRUE(faults::read_until(out[0], got, "starting up\n", std::chrono::seconds(10))) << got;
    EXPECT_TRUE(faults::read_until(out[0], got, "\"count\":1", std::chrono::seconds(10))) << got;
    ::kill(pid, SIGTERM);
    bool timed_out = false;
    EXPECT_EQ(faults::exit_of(pid, std::chrono::seconds(10), &timed_out), 128 + SIGTERM);
    ::close(in[1]);
    ::close(out[0]);
    const std::string s = read_file(stats);
    EXPECT_NE(s.find("\"events\":1,"), std::string::npos) << s;
    EXPECT_NE(s.find("\"passthrough_lines\":1,"), std::string::npos) << s;
}

TEST(ParseLive, AClosedOutputPipeIsDataLostNotSuccess) {
    // `telecap parse big.log | head -1`: the rest cannot be written; say so, exit 3.
    const auto input = temp_path("big.log");
    std::string text;
    for (int i = 0; i < 20000; ++i)
        text +=
            R"(TELEMETRY:{"event": "tool.execution.start", "measurements": {"count": 1}, "metadata": {}, "timestamp_ns": 1, "correlation_id": ""})"
            "\n";
    write_file(input, text);
    int out[2], err[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
    const pid_t pid = faults::start_with({bin, "parse", input}, -1, out[1], err[1]);
    ::close(out[1]);
    ::close(err[1]);
    std::string first;
    faults::read_until(out[0], first, "\n", std::chrono::seconds(10));
    ::close(out[0]);  // as head -1 does
    const std::string errors = drain_fd(err[0]);
    ::close(err[0]);
    bool timed_out = false;
    EXPECT_EQ(faults::exit_of(pid, std::chrono::seconds(20), &timed_out), 3) << errors;
    EXPECT_NE(errors.find("stdout: write failed: Broken pipe"), std::string::npos) << errors;
}

TEST(RunFaults, FilesAreAppendedToNotTruncated) {
    const auto events = temp_path("append.jsonl");
    const auto pass = temp_path("append.pass");
    write_file(events, "earlier run\n");
    write_file(pass, "earlier pass\n");
    for (int i = 0; i < 2; ++i) {
        const auto r = run(telecap_run({"-o", "jsonl:" + events, "--passthrough", pass},
                                       {FIXTURE_WRITE_LINES, "4", "mixed"}),
                           "append");
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    const auto e = read_file(events);
    EXPECT_EQ(e.rfind("earlier run\n", 0), 0u);
    EXPECT_EQ(count(e, "\"count\":"), 4u);  // 2 telemetry lines per run
    EXPECT_EQ(read_file(pass), "earlier pass\nline 2\nline 4\nline 2\nline 4\n");
}

TEST(RunFaults, OneFileForTwoUsesIsAStartupError) {
    const auto f = temp_path("twice.jsonl");
    const auto r =
        run(telecap_run({"-o", "jsonl:" + f, "--rejects", f}, {FIXTURE_WRITE_LINES, "1"}), "twice");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("are both"), std::string::npos) << r.err;
    const auto input = temp_path("input.log");
    write_file(input, "keep me\n");
    const auto p = run({bin, "parse", "--passthrough", input, input}, "inout");
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_NE(p.err.find("overwritten while it is read"), std::string::npos) << p.err;
    EXPECT_EQ(read_file(input), "keep me\n");
}

TEST(RunFaults, RejectsUnderRunNameTheWorker) {
    const auto rejects = temp_path("rejects-run.jsonl");
    const auto r = run({bin, "run", "--rejects", rejects, "--worker-id", "w-7", "-o", "null", "--",
                        "/bin/sh", "-c", "echo 'TELEMETRY:{broken' >&2"},
                       "rejects-run");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(read_file(rejects).find("\"source\":\"w-7\""), std::string::npos)
        << read_file(rejects);
}

}  // namespace
}  // namespace telecap::test
