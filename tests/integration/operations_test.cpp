// telecap run as operations see it: output files rotated under it (renamed, deleted,
// `ctl reopen`, SIGUSR1) and worker exits and restarts at the default log level.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "support/control_client.hpp"
#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

// A worker that writes an event (count N) and a plain line ("line N") to stderr every 10 ms
// until the file $1 exists.
const std::string numbered_worker =
    "i=0; while [ ! -e \"$1\" ]; do i=$((i+1)); "
    "printf 'TELEMETRY:{\"event\": \"tool.execution.start\", \"measurements\": {\"count\": "
    "%d}, \"metadata\": {\"tool\": \"t\"}, \"timestamp_ns\": 1, \"correlation_id\": \"\"}\\n"
    "line %d\\n' $i $i >&2; sleep 0.01; done";

// The numbers of the tool events (their count) in a jsonl text, in order.
std::vector<int> event_numbers(const std::string& jsonl) {
    std::vector<int> out;
    static const std::regex re("\"execution\",\"start\"\\],\"measurements\":\\{\"count\":([0-9]+)");
    for (std::sregex_iterator it(jsonl.begin(), jsonl.end(), re), end; it != end; ++it)
        out.push_back(std::stoi((*it)[1]));
    return out;
}

// The numbers of the "line N" lines in a pass-through text, in order.
std::vector<int> line_numbers(const std::string& text) {
    std::vector<int> out;
    std::size_t at = 0;
    while (at < text.size()) {
        auto nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        const std::string l = text.substr(at, nl - at);
        if (l.rfind("line ", 0) == 0) out.push_back(std::stoi(l.substr(5)));
        at = nl + 1;
    }
    return out;
}

// 1, 2, ..., n: each number once, in order, none missing.
void expect_one_to_n(const std::vector<int>& got, const char* what) {
    ASSERT_FALSE(got.empty()) << what;
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], static_cast<int>(i) + 1) << what << ": at " << i << " of " << got.size();
}

template <typename T>
std::vector<T> joined(std::initializer_list<std::vector<T>> parts) {
    std::vector<T> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// All of a file that was deleted, through an fd opened before.
std::string read_fd(int fd) {
    std::string out;
    char buf[65536];
    for (ssize_t r; (r = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()))) > 0;)
        out.append(buf, static_cast<std::size_t>(r));
    return out;
}

// logrotate's `create` (rename) and a plain delete, without any signal or command: telecap
// notices within about a second and writes on at the original path; every event and every
// pass-through line is in exactly one of the files.
TEST(RunRotation, RenamedAndDeletedFilesAreReopenedWithNothingLostOrTwice) {
    const std::string events = temp_path("rot-events.jsonl");
    const std::string pass = temp_path("rot-pass.log");
    const std::string stop = temp_path("rot-stop");
    const auto p = start({bin, "run", "-o", "jsonl:" + events, "--passthrough", pass, "--",
                          "/bin/sh", "-c", numbered_worker, "sh", stop},
                         "rotate");
    const auto has_some = [&] {
        return event_numbers(read_file(events)).size() >= 5 &&
               line_numbers(read_file(pass)).size() >= 5;
    };
    ASSERT_TRUE(eventually(has_some));

    ASSERT_EQ(std::rename(events.c_str(), (events + ".1").c_str()), 0);
    ASSERT_EQ(std::rename(pass.c_str(), (pass + ".1").c_str()), 0);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually(has_some));
    const auto renamed_took = std::chrono::steady_clock::now() - t0;

    const int events_fd = ::open(events.c_str(), O_RDONLY | O_CLOEXEC);
    const int pass_fd = ::open(pass.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(events_fd, 0);
    ASSERT_GE(pass_fd, 0);
    ASSERT_EQ(::unlink(events.c_str()), 0);
    ASSERT_EQ(::unlink(pass.c_str()), 0);
    t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually(has_some));
    const auto deleted_took = std::chrono::steady_clock::now() - t0;

    write_file(stop, "");
    const auto r = wait(p);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // The check runs once a second: a new file within it, plus the time to see 5 lines.
    EXPECT_LT(renamed_took, std::chrono::milliseconds(2500));
    EXPECT_LT(deleted_took, std::chrono::milliseconds(2500));

    const auto ev =
        joined<int>({event_numbers(read_file(events + ".1")), event_numbers(read_fd(events_fd)),
                     event_numbers(read_file(events))});
    const auto lines = joined<int>({line_numbers(read_file(pass + ".1")),
                                    line_numbers(read_fd(pass_fd)), line_numbers(read_file(pass))});
    ::close(events_fd);
    ::close(pass_fd);
    expect_one_to_n(ev, "events");
    expect_one_to_n(lines, "pass-through lines");
    EXPECT_EQ(ev.size(), lines.size());  // the worker wrote both for each number
}

// `ctl reopen` and SIGUSR1 reopen every file telecap writes (events, pass-through, rejects),
// even one that was not moved; SIGUSR1 is not forwarded to the worker.
TEST(RunRotation, CtlReopenAndSigusr1ReopenEveryFile) {
    const std::string sock = temp_path("reopen.sock");
    const std::string events = temp_path("reopen-events.jsonl");
    const std::string pass = temp_path("reopen-pass.log");
    const std::string rejects = temp_path("reopen-rejects.jsonl");
    const auto p = start({bin, "run", "--control", sock, "-o", "jsonl:" + events, "--passthrough",
                          pass, "--rejects", rejects, "--", FIXTURE_SIGNAL_ECHO},
                         "reopen");
    ASSERT_TRUE(eventually([&] { return socket_ready(sock); }));
    ASSERT_TRUE(
        eventually([&] { return read_file(p.out_path).find("ready") != std::string::npos; }));
    const auto reopened = [&](int times) {
        const std::string s = ctl(sock, {"stats"}).out;
        for (const auto& f : {events, pass, rejects})
            if (s.find("telecap_stream_reopens_total{stream=\"" + f + "\"} " +
                       std::to_string(times) + "\n") == std::string::npos)
                return false;
        return true;
    };
    EXPECT_TRUE(reopened(0));
    const auto r = ctl(sock, {"reopen"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "ok: reopening 3 files\n");
    ASSERT_TRUE(eventually([&] { return reopened(1); }));
    ::kill(p.pid, SIGUSR1);
    ASSERT_TRUE(eventually([&] { return reopened(2); }));
    ::kill(p.pid, SIGUSR2);  // still forwarded: once the worker says so, a USR1 would show
    ASSERT_TRUE(
        eventually([&] { return read_file(p.out_path).find("got SIGUSR2") != std::string::npos; }));
    ::kill(p.pid, SIGTERM);
    const auto end = wait(p);
    EXPECT_FALSE(end.timed_out);
    EXPECT_EQ(end.out.find("got SIGUSR1"), std::string::npos) << end.out;
    EXPECT_EQ(end.exit_code, 0) << end.err;
}

// At the default log level, a crash says who, how (status or signal) and when it restarts,
// and the restart says the new pid; a worker that exits 0 without a restart says nothing.
TEST(RunLog, ExitsAndRestartsAreLoggedAtTheDefaultLevel) {
    const std::string marker = temp_path("crash-once");
    // The first run dies of SIGSEGV, the second exits 3 and is not restarted by on-failure's
    // limit of one, so both kinds of exit show.
    const std::string script = "if [ ! -e \"$1\" ]; then : > \"$1\"; kill -SEGV $$; fi; exit 3";
    const auto r = run({bin, "run", "-o", "null", "--restart", "on-failure", "--max-restarts", "1",
                        "--backoff-min", "0.05", "--backoff-max", "0.05", "--", "/bin/sh", "-c",
                        script, "sh", marker},
                       "crashlog");
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    const std::regex crash(
        "warning: worker default-0 \\(pid [0-9]+\\) killed by SIGSEGV \\(status 139\\); "
        "restarting in [0-9]+ ms");
    EXPECT_TRUE(std::regex_search(r.err, crash)) << r.err;
    const std::regex restarted("warning: worker default-0 restarted: pid [0-9]+ \\(restart 1\\)");
    EXPECT_TRUE(std::regex_search(r.err, restarted)) << r.err;
    const std::regex gave_up(
        "worker default-0 \\(pid [0-9]+\\) exited with status 3; not restarted, gave up");
    EXPECT_TRUE(std::regex_search(r.err, gave_up)) << r.err;

    const auto clean = run({bin, "run", "-o", "null", "--", "true"}, "cleanlog");
    EXPECT_EQ(clean.exit_code, 0);
    EXPECT_EQ(clean.err, "");  // a normal end is not news
}

// Under systemd's Type=notify: READY=1 once telecap is set up, STOPPING=1 when the stop
// begins; the workers do not inherit NOTIFY_SOCKET.
TEST(RunNotify, ReadyAndStoppingReachTheServiceManagerNotTheWorkers) {
    const std::string path = temp_path("notify.sock");
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const auto receive = [&] {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) return std::string("(nothing within 10 s)");
        char buf[256];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        return n < 0 ? std::string("(error)") : std::string(buf, static_cast<std::size_t>(n));
    };
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    const auto p = start({bin, "run", "-o", "null", "--", "/bin/sh", "-c",
                          "echo \"notify=${NOTIFY_SOCKET-unset}\"; exec sleep 30"},
                         "notify");
    ::unsetenv("NOTIFY_SOCKET");
    EXPECT_EQ(receive(), "READY=1");
    ASSERT_TRUE(
        eventually([&] { return read_file(p.out_path).find("notify=") != std::string::npos; }));
    EXPECT_EQ(read_file(p.out_path), "notify=unset\n");
    ::kill(p.pid, SIGTERM);
    EXPECT_EQ(receive(), "STOPPING=1");
    const auto r = wait(p);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.err;  // the worker died of the forwarded TERM
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;  // a stop is not news
    ::close(fd);
}

}  // namespace
}  // namespace telecap::test
