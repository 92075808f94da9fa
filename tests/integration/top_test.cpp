// telecap top against a real `telecap run --control`: the one-shot plain view (--once, and
// whenever stdout is not a terminal), its rows and columns, the width, the pool filter, and
// a clear error when no telecap answers. The interactive mode is tests/cli/top_pty_test.py's.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/control_client.hpp"
#include "support/sockets.hpp"
#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

// Two events, a pass-through line and a telemetry line that is not JSON every 10 ms.
std::vector<std::string> busy_worker() {
    return {"/bin/sh", "-c",
            "while :; do "
            "echo 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' >&2; "
            "echo 'TELEMETRY:{\"event\":\"tool.execution.start\",\"measurements\":{}}' >&2; "
            "echo 'TELEMETRY:{not json' >&2; echo 'plain text' >&2; "
            "sleep 0.01; done"};
}

struct telecap_run {
    process p;
    std::string sock, out;
    ~telecap_run() {
        if (p.pid > 0) {
            ::kill(p.pid, SIGTERM);
            wait(p);
        }
    }
};

void launch(telecap_run& t, const std::string& tag, int instances) {
    t.sock = temp_path(tag + ".sock");
    t.out = temp_path(tag + ".jsonl");
    std::vector<std::string> argv{bin,
                                  "run",
                                  "--control",
                                  t.sock,
                                  "--pool",
                                  "p",
                                  "--instances",
                                  std::to_string(instances),
                                  "-o",
                                  "jsonl:" + t.out,
                                  "-o",
                                  "null",
                                  "--passthrough",
                                  "none",
                                  "--grace",
                                  "2",
                                  "--"};
    for (auto& a : busy_worker()) argv.push_back(a);
    t.p = start(argv, tag);
    ASSERT_TRUE(eventually([&] { return socket_ready(t.sock); })) << "no control socket";
    // Every worker has sent lines: the rates below have something to show.
    ASSERT_TRUE(eventually([&] {
        const auto st = ctl(t.sock, {"--json", "status"}).out;
        for (int i = 0; i < instances; ++i)
            if (worker_field(st, "p-" + std::to_string(i), "state") != "\"running\"") return false;
        return count(st, "\"lines\":0,") == 0 && count(st, "\"lines\":") == std::size_t(instances);
    }));
}

std::vector<std::string> split(const std::string& s, char sep = '\n') {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(s);
    while (std::getline(in, item, sep)) out.push_back(item);
    return out;
}

std::vector<std::string> words(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// The table whose header line starts with `first`: the header's words, then each row's.
std::vector<std::vector<std::string>> table(const std::string& text, const std::string& first) {
    std::vector<std::vector<std::string>> rows;
    bool in = false;
    for (const auto& line : split(text)) {
        if (!in && line.rfind(first + " ", 0) == 0) in = true;
        if (!in) continue;
        if (line.empty()) break;
        rows.push_back(words(line));
    }
    return rows;
}

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return i;
    ADD_FAILURE() << "no column " << name;
    return 0;
}

result top(const std::vector<std::string>& args, const std::string& columns = "") {
    std::vector<std::string> argv{"/usr/bin/env", "-u", "COLUMNS"};
    if (!columns.empty()) argv.push_back("COLUMNS=" + columns);
    argv.push_back(bin);
    argv.push_back("top");
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, "top");
}

TEST(Top, OnceShowsEachWorkerAndOutputWithRates) {
    telecap_run t;
    launch(t, "top-once", 3);
    const auto r = top({"--socket", t.sock, "--once", "--interval", "200"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("workers 3/3 running"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rates over 0."), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("gates: 3 on"), std::string::npos) << r.out;

    const auto w = table(r.out, "WORKER");
    ASSERT_EQ(w.size(), 4u) << r.out;  // the header and 3 workers
    EXPECT_EQ(w[0], (std::vector<std::string>{"WORKER", "POOL", "STATE", "PID", "UPTIME",
                                              "RESTARTS", "LINES/S", "EVENTS/S", "REJECTS/S",
                                              "TOP_REJECT", "DROPS", "GATES"}));
    std::vector<std::string> seen;
    for (std::size_t i = 1; i < w.size(); ++i) {
        const auto& row = w[i];
        ASSERT_EQ(row.size(), w[0].size()) << r.out;
        seen.push_back(row[0]);
        EXPECT_EQ(row[column(w[0], "POOL")], "p");
        EXPECT_EQ(row[column(w[0], "STATE")], "running");
        EXPECT_GT(std::stol(row[column(w[0], "PID")]), 0);
        EXPECT_GT(std::stod(row[column(w[0], "LINES/S")]), 0) << r.out;
        EXPECT_GT(std::stod(row[column(w[0], "EVENTS/S")]), 0) << r.out;
        EXPECT_GT(std::stod(row[column(w[0], "REJECTS/S")]), 0) << r.out;
        EXPECT_EQ(row[column(w[0], "TOP_REJECT")], "invalid_json");
        EXPECT_EQ(row[column(w[0], "GATES")], "on");
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<std::string>{"p-0", "p-1", "p-2"}));

    const auto o = table(r.out, "OUTPUT");
    ASSERT_EQ(o.size(), 3u) << r.out;
    EXPECT_EQ(o[0],
              (std::vector<std::string>{"OUTPUT", "SENT/S", "DROPPED", "ERRORS", "LAST_ERROR"}));
    EXPECT_EQ(o[1][0], "output.0:jsonl:" + t.out);
    EXPECT_EQ(o[2][0], "output.1:null");
    for (std::size_t i = 1; i < o.size(); ++i) {
        EXPECT_GT(std::stod(o[i][1]), 0) << r.out;
        EXPECT_EQ(o[i][2], "0");
        EXPECT_EQ(o[i][3], "0");
        EXPECT_EQ(o[i][4], "-");
    }
}

TEST(Top, WithoutATerminalItPrintsOnceTooAndFitsColumns) {
    telecap_run t;
    launch(t, "top-plain", 2);
    // stdout is a file here: one snapshot and exit, as with --once.
    auto r = top({"--socket", t.sock, "--interval", "100"}, "60");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = split(r.out);
    ASSERT_FALSE(lines.empty());
    for (const auto& l : lines) EXPECT_LE(l.size(), 60u) << l;
    const auto w = table(r.out, "WORKER");
    ASSERT_EQ(w.size(), 3u) << r.out;
    EXPECT_EQ(w[0][0], "WORKER");
    EXPECT_NE(std::find(w[0].begin(), w[0].end(), "LINES/S"), w[0].end()) << r.out;
    EXPECT_EQ(std::find(w[0].begin(), w[0].end(), "GATES"), w[0].end()) << r.out;

    // --pool: another pool's workers are not shown.
    r = top({"--socket", t.sock, "--once", "--interval", "100", "--pool", "other"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("(no workers in pool other)"), std::string::npos) << r.out;
}

TEST(Top, NoTelecapIsAClearErrorAndBadFlagsAreUsageErrors) {
    const std::string sock = temp_path("top-nobody.sock");
    auto r = top({"--socket", sock, "--once", "--interval", "100"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("telecap: top: cannot connect to " + sock), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("is telecap run --control"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    r = top({"--socket", sock, "--interval", "0"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--interval must be"), std::string::npos) << r.err;
    r = top({"--interval", "100"});
    EXPECT_EQ(r.exit_code, 2) << r.err;  // --socket is required
}

TEST(Top, TheSummaryShowsTheRunsLosses) {
    // A tap that never reads loses events (its own losses, counted as the run's "tap"): the
    // worker bursts 20,000 events (about 5 MB rendered, past the tap's 1 MiB and the socket's
    // buffers) once the tap is open.
    const std::string go = temp_path("top-losses.go");
    const std::string sock = temp_path("top-losses.sock");
    telecap_run t;
    t.sock = sock;
    t.p = start({bin, "run", "--control", sock, "-o", "null", "--passthrough", "none", "--grace",
                 "2", "--", "/bin/sh", "-c",
                 "while [ ! -e " + go +
                     " ]; do sleep 0.01; done; "
                     "yes 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' "
                     "| head -n 20000 >&2; exec sleep 1000"},
                "top-losses");
    ASSERT_TRUE(eventually([&] { return socket_ready(sock); })) << "no control socket";
    const int tap = unix_connect(sock);
    ASSERT_GE(tap, 0);
    ASSERT_TRUE(send_all(tap, "{\"cmd\":\"tap\"}\n"));
    // The reply says the tap is open; nothing is read after it.
    std::string reply;
    char c;
    while (reply.find('\n') == std::string::npos && ::read(tap, &c, 1) == 1) reply += c;
    ASSERT_NE(reply.find("\"ok\":true"), std::string::npos) << reply;
    write_file(go, "");
    const std::regex lost_re(
        "\"dropped\":\\{\"queue_full\":0,\"shutdown\":0,\"output\":0,\"tap\":([0-9]+)\\},"
        "\"dropped_lines\":\\{\"passthrough\":0,\"rejects\":0\\}");
    std::string st;
    ASSERT_TRUE(eventually(
        [&] {
            st = ctl(sock, {"--json", "status"}).out;
            std::smatch m;
            return std::regex_search(st, m, lost_re) && std::stoul(m[1]) > 0;
        },
        std::chrono::seconds(30)))
        << st;
    const auto r = top({"--socket", sock, "--once", "--interval", "100"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = split(r.out);
    ASSERT_GT(lines.size(), 3u) << r.out;
    EXPECT_EQ(lines[3].rfind("lost: tap ", 0), 0u) << r.out;
    ::close(tap);
}

}  // namespace
}  // namespace telecap::test
