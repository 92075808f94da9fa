// `telecap ctl tap` against a real `telecap run --control`: events arrive (the -o jsonl lines,
// byte for byte), --limit exits, patterns and scopes filter, two taps at once, Ctrl-C and a
// closed stdout end a tap with status 0 and no message, and a tap that never reads loses
// events (counted in ctl stats, told by a marker) while the file output gets every event,
// under --overflow block too.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/control_client.hpp"
#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

// python.call.start and tool.execution.start, each worker every 10 ms, for ever; with `go`,
// only once that file exists.
std::vector<std::string> steady(const std::string& go = "") {
    const std::string wait = go.empty() ? "" : "while [ ! -e '" + go + "' ]; do sleep 0.01; done; ";
    return {"/bin/sh", "-c",
            wait +
                "while :; do "
                "echo 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' >&2; "
                "echo 'TELEMETRY:{\"event\":\"tool.execution.start\",\"measurements\":{}}' >&2; "
                "sleep 0.01; done"};
}

struct telecap_run {
    process p;
    std::string sock, out;
};

telecap_run start_run(const std::string& tag, std::vector<std::string> cmd,
                      std::vector<std::string> extra = {}) {
    telecap_run t;
    t.sock = temp_path(tag + ".sock");
    t.out = temp_path(tag + ".jsonl");
    // A file output appends: a run's file must not hold a previous run's events
    // (--gtest_repeat, a rerun in the same temp directory).
    std::remove(t.out.c_str());
    std::vector<std::string> argv{
        bin,           "run", "--control", t.sock,           "--pool",  "p",
        "--instances", "2",   "-o",        "jsonl:" + t.out, "--grace", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    t.p = start(argv, tag);
    EXPECT_TRUE(eventually([&] { return socket_ready(t.sock); })) << "no control socket";
    return t;
}

// The workers end by the stop signal: telecap exits with their status, 128 + SIGTERM.
void stop(telecap_run& t) {
    ::kill(t.p.pid, SIGTERM);
    const auto r = wait(t.p);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.err;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

std::vector<std::string> tap_argv(const std::string& sock, std::vector<std::string> args) {
    std::vector<std::string> argv{bin, "ctl", "--socket", sock};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// One series of `ctl stats` ("name value" lines), or -1.
double stat(const std::string& sock, const std::string& series) {
    const auto r = ctl(sock, {"stats"});
    for (const auto& l : lines(r.out))
        if (l.rfind(series + " ", 0) == 0) return std::stod(l.substr(series.size() + 1));
    return -1;
}

TEST(Tap, EventsArriveAsTheJsonlOutputWritesThemAndLimitExits) {
    for (const char* mode : {"loop", "thread"}) {  // the bus on the loop or the dispatch thread
        SCOPED_TRACE(mode);
        auto t = start_run(std::string("tap-limit-") + mode, steady(), {"--dispatch", mode});
        const auto r = run(tap_argv(t.sock, {"tap", "--limit", "5"}), "tap");
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.err, "");
        const auto got = lines(r.out);
        ASSERT_EQ(got.size(), 5u) << r.out;
        // Each is the line the jsonl output wrote for the same event (its receive time makes
        // it unique).
        for (const auto& l : got)
            EXPECT_TRUE(eventually([&] {
                return read_file(t.out).find(l + "\n") != std::string::npos;
            })) << l;
        stop(t);
    }
}

TEST(Tap, PatternsMatchWireNamesAndScopesPickAPoolOrAWorker) {
    auto t = start_run("tap-filter", steady());
    auto r = run(tap_argv(t.sock, {"tap", "--limit", "10", "tool.*"}), "tap");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = lines(r.out);
    ASSERT_EQ(got.size(), 10u);
    for (const auto& l : got)
        EXPECT_EQ(l.rfind(R"({"event":["snakepit","python","tool","execution","start"],)", 0), 0u)
            << l;

    r = run(tap_argv(t.sock, {"--worker", "p-1", "tap", "--limit", "6"}), "tap");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    got = lines(r.out);
    ASSERT_EQ(got.size(), 6u);
    for (const auto& l : got) EXPECT_NE(l.find(R"("worker_id":"p-1")"), std::string::npos) << l;

    // The log format: the -o log line (a timestamp, then the event's text).
    r = run(tap_argv(t.sock,
                     {"--pool", "p", "tap", "--format", "log", "--limit", "3", "python.call.*"}),
            "tap");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    got = lines(r.out);
    ASSERT_EQ(got.size(), 3u);
    const std::regex log_line(
        R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} snakepit\.python\.call\.start \| .*worker_id="p-[01]" pool_name="p".*)");
    for (const auto& l : got) EXPECT_TRUE(std::regex_match(l, log_line)) << l;

    // Refused requests: exit 1 with the reason; a bad command line: 2.
    r = run(tap_argv(t.sock, {"tap", "a.[x"}), "tap");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("unclosed"), std::string::npos) << r.err;
    r = run(tap_argv(t.sock, {"tap", "--format", "xml"}), "tap");
    EXPECT_EQ(r.exit_code, 2);
    r = run(tap_argv(t.sock, {"status", "--limit", "3"}), "tap");
    EXPECT_EQ(r.exit_code, 2);
    stop(t);
}

TEST(Tap, TwoTapsAtOnce) {
    // The workers wait for `go`: neither tap can reach its limit before both are open (under
    // ASan the first one used to finish before the second had started).
    const std::string go = temp_path("tap-two.go");
    ::unlink(go.c_str());
    auto t = start_run("tap-two", steady(go));
    auto a = start(tap_argv(t.sock, {"tap", "--limit", "40"}), "tap-a");
    auto b = start(tap_argv(t.sock, {"tap", "--limit", "40", "python.*"}), "tap-b");
    // Both open at the same time.
    EXPECT_TRUE(eventually([&] { return stat(t.sock, "telecap_tap_open") == 2; }));
    write_file(go, "");
    const auto ra = wait(a), rb = wait(b);
    ASSERT_EQ(ra.exit_code, 0) << ra.err;
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    EXPECT_EQ(lines(ra.out).size(), 40u);
    EXPECT_EQ(lines(rb.out).size(), 40u);
    EXPECT_EQ(count(rb.out, "\"tool\""), 0u);
    EXPECT_TRUE(eventually([&] { return stat(t.sock, "telecap_tap_open") == 0; }));
    EXPECT_EQ(stat(t.sock, "telecap_tap_opened_total"), 2);
    EXPECT_EQ(stat(t.sock, "telecap_tap_events_total"), 80);
    stop(t);
}

// A run that ends with a tap reading: the tap gets every event up to the last (the worker's
// own, written just before it exits, and the terminated event telecap makes when it has),
// then its stream ends with status 0.
TEST(Tap, AReadingTapGetsEveryEventUpToTheRunsEnd) {
    for (const char* mode : {"loop", "thread"}) {
        SCOPED_TRACE(mode);
        const std::string tag = std::string("tap-end-") + mode;
        const std::string sock = temp_path(tag + ".sock"), go = temp_path(tag + ".go");
        const std::string worker = temp_path(tag + ".sh");
        ::unlink(go.c_str());
        // 300 events at once (awk writes them in a few writes), then the worker exits.
        write_file(worker, "while [ ! -e '" + go +
                               "' ]; do sleep 0.01; done\n"
                               "awk 'BEGIN { for (i = 0; i < 300; i++) printf "
                               "\"TELEMETRY:{\\\"event\\\":\\\"python.call.start\\\","
                               "\\\"measurements\\\":{}}\\n\" }' >&2\n");
        auto t = start({bin, "run", "--control", sock, "--dispatch", mode, "-o", "null", "--",
                        "/bin/sh", worker},
                       tag);
        ASSERT_TRUE(eventually([&] { return socket_ready(sock); })) << "no control socket";
        auto tap = start(tap_argv(sock, {"tap"}), tag + "-tap");
        ASSERT_TRUE(eventually([&] { return stat(sock, "telecap_tap_open") == 1; }));
        write_file(go, "");
        const auto rt = wait(t);
        EXPECT_EQ(rt.exit_code, 0) << rt.err;
        const auto r = wait(tap);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const auto got = lines(r.out);
        EXPECT_EQ(count(r.out, R"({"event":["snakepit","python","call","start"],)"), 300u);
        ASSERT_FALSE(got.empty());
        EXPECT_EQ(got.back().rfind(R"({"event":["snakepit","pool","worker","terminated"],)", 0), 0u)
            << got.back();
    }
}

TEST(Tap, CtrlCAndAClosedStdoutEndItQuietly) {
    auto t = start_run("tap-sigint", steady());
    auto p = start(tap_argv(t.sock, {"tap"}), "tap-sigint");
    ASSERT_TRUE(eventually([&] { return lines(read_file(p.out_path)).size() >= 3; }));
    ::kill(p.pid, SIGINT);
    const auto r = wait(p);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "");
    // The tap's handler is detached when its client goes.
    EXPECT_TRUE(eventually([&] { return stat(t.sock, "telecap_tap_open") == 0; }));

    // `telecap ctl tap | head -n 2`: the tap ends when head does, status 0, no message.
    const auto h =
        run({"/bin/sh", "-c",
             "{ \"$0\" ctl --socket \"$1\" tap; echo \"tap=$?\" >&2; } | head -n 2", bin, t.sock},
            "tap-head");
    EXPECT_EQ(lines(h.out).size(), 2u);
    EXPECT_EQ(h.err, "tap=0\n");
    stop(t);
}

int raw_connect(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

TEST(Tap, ATapThatNeverReadsLosesEventsCountedWhileTheFileGetsThemAll) {
    for (const char* overflow : {"drop-newest", "block"}) {
        SCOPED_TRACE(overflow);
        const std::string go = temp_path(std::string("tap-go-") + overflow);
        std::remove(go.c_str());
        constexpr int n = 50000;  // per worker: far more than a tap's buffer and socket hold
        auto t = start_run(
            std::string("tap-lazy-") + overflow,
            {"/bin/sh", "-c",
             "while [ ! -e '" + go + "' ]; do sleep 0.01; done; exec " FIXTURE_WRITE_LINES " " +
                 std::to_string(n) + " hang"},
            {"--overflow", overflow});
        const int lazy = raw_connect(t.sock);
        ASSERT_GE(lazy, 0);
        timeval patience{30, 0};  // a read that would wait longer fails the test, not hangs it
        ::setsockopt(lazy, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
        const std::string req = "{\"cmd\":\"tap\"}\n";
        ASSERT_EQ(::write(lazy, req.data(), req.size()), static_cast<ssize_t>(req.size()));
        ASSERT_TRUE(eventually([&] { return stat(t.sock, "telecap_tap_open") == 1; }));
        write_file(go, "");  // the workers start writing; the tap client never reads
        // Every event reaches the file output; the tap lost some, counted.
        EXPECT_TRUE(eventually(
            [&] { return count(read_file(t.out), "\"execution\",\"start\"]") == 2u * n; },
            std::chrono::seconds(60)));
        const double dropped = stat(t.sock, "telecap_tap_dropped_total");
        EXPECT_GT(dropped, 0);
        EXPECT_EQ(stat(t.sock, "telecap_tap_client_dropped_total{tap=\"1\"}"), dropped);
        // Reading at last: the events the socket held, and a marker of the gap.
        std::string got;
        char buf[65536];
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (got.find("{\"telecap_tap\":{\"dropped\":") == std::string::npos &&
               std::chrono::steady_clock::now() < end) {
            const ssize_t k = ::read(lazy, buf, sizeof buf);
            if (k <= 0) break;
            got.append(buf, static_cast<std::size_t>(k));
        }
        EXPECT_NE(got.find("{\"telecap_tap\":{\"dropped\":"), std::string::npos);
        ::close(lazy);
        // A tap's losses are not the run's: no event counted as dropped by an output.
        EXPECT_EQ(stat(t.sock, "telecap_dropped_total{reason=\"output\"}"), 0);
        EXPECT_EQ(stat(t.sock, "telecap_dropped_total{reason=\"queue_full\"}"), 0);
        stop(t);
    }
}

TEST(Tap, PassthroughShowsTheWorkersLinesInTheirPlacesAmongTheEvents) {
    for (const char* mode : {"loop", "thread"}) {
        SCOPED_TRACE(mode);
        // Each worker, once `go` exists: "plain N", then an event, then "plain N+1", ... The
        // tap opens first: with the workers already writing, a dispatch thread may deliver a
        // batch read before the tap asked for lines after it attached (events without their
        // lines: docs/control.md, "Tap").
        const std::string go = temp_path(std::string("tap-pass-") + mode + ".go");
        ::unlink(go.c_str());
        const std::vector<std::string> worker{
            "/bin/sh", "-c",
            "while [ ! -e '" + go +
                "' ]; do sleep 0.01; done; "
                "i=0; while :; do i=$((i+1)); echo \"plain $i\" >&2; "
                "echo 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' >&2; "
                "sleep 0.01; done"};
        const std::string pass = temp_path(std::string("tap-pass-") + mode + ".txt");
        std::remove(pass.c_str());  // pass-through appends
        auto t = start_run(std::string("tap-pass-") + mode, worker,
                           {"--dispatch", mode, "--passthrough", pass, "--label"});
        auto tap = start(tap_argv(t.sock, {"tap", "--passthrough", "--limit", "20"}), "tap");
        ASSERT_TRUE(eventually([&] { return stat(t.sock, "telecap_tap_open") == 1; }));
        write_file(go, "");
        const auto r = wait(tap);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        // Per worker: lines and events alternate, the lines numbered one after the other.
        std::map<std::string, std::vector<std::string>> seq;
        const std::regex line_re(
            R"re(^\{"passthrough":\{"worker":"(p-[01])","pool":"p","stream":"stderr","line":"plain ([0-9]+)"\}\}$)re");
        const std::regex event_re(R"re(^\{"event":.*"worker_id":"(p-[01])")re");
        std::size_t events = 0;
        for (const auto& l : lines(r.out)) {
            std::smatch m;
            if (std::regex_search(l, m, line_re)) {
                seq[m[1]].push_back("L" + std::string(m[2]));
            } else if (std::regex_search(l, m, event_re)) {
                seq[m[1]].push_back("E");
                ++events;
            } else {
                ADD_FAILURE() << "neither a line nor an event: " << l;
            }
        }
        EXPECT_EQ(events, 20u) << r.out;  // --limit counts events only
        std::size_t tapped_lines = 0;
        for (const auto& [w, items] : seq) {
            long last = -1;
            for (std::size_t i = 0; i < items.size(); ++i) {
                if (i > 0) {
                    EXPECT_NE(items[i][0], items[i - 1][0]) << w << " at " << i << "\n" << r.out;
                }
                if (items[i][0] != 'L') continue;
                ++tapped_lines;
                const long n = std::stol(items[i].substr(1));
                if (last >= 0) {
                    EXPECT_EQ(n, last + 1) << w << "\n" << r.out;
                }
                last = n;
            }
        }
        EXPECT_GE(tapped_lines, 18u) << r.out;
        EXPECT_EQ(stat(t.sock, "telecap_tap_passthrough_lines_dropped_total"), 0);
        // Pass-through itself is as without a tap: each worker's lines, whole, in order.
        stop(t);
        std::map<std::string, long> next;
        for (const auto& l : lines(read_file(pass))) {
            std::smatch m;
            ASSERT_TRUE(std::regex_match(l, m, std::regex(R"(\[(p-[01])\] plain ([0-9]+))"))) << l;
            const long n = std::stol(m[2]);
            if (next.count(m[1])) {
                EXPECT_EQ(n, next[m[1]]) << l;
            }
            next[m[1]] = n + 1;
        }
        EXPECT_EQ(next.size(), 2u);

        // Without --passthrough, events only.
        auto u = start_run(std::string("tap-nopass-") + mode, worker,
                           {"--dispatch", mode, "--passthrough", "none"});
        const auto e = run(tap_argv(u.sock, {"tap", "--limit", "5"}), "tap");
        ASSERT_EQ(e.exit_code, 0) << e.err;
        const auto got = lines(e.out);
        ASSERT_EQ(got.size(), 5u) << e.out;
        for (const auto& l : got) EXPECT_EQ(l.rfind("{\"event\":", 0), 0u) << l;
        stop(u);
    }
}

}  // namespace
}  // namespace telecap::test
