// The outputs' failures as `ctl status` and `telecap top` show them (ERRORS, LAST_ERROR):
// outputs that report errors() and last_error() beyond jsonl and the network exporters. Each
// test makes one output fail for real under `telecap run` and reads the count and the words
// in the status reply and in `top --once`.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "support/control_client.hpp"
#include "support/sockets.hpp"
#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

// An event every 20 ms.
const std::vector<std::string> worker = {
    "/bin/sh", "-c",
    "while :; do echo 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' >&2; "
    "sleep 0.02; done"};

struct telecap_run {
    process p;
    std::string sock;
    ~telecap_run() {
        if (p.pid > 0) {
            ::kill(p.pid, SIGTERM);
            wait(p);
        }
    }
};

// `telecap run --control SOCK OUTPUT_ARGS... -- worker`, through `sh -c 'exec ... REDIRECT'`
// when `redirect` is given (the log output's stream made to fail).
void launch(telecap_run& t, const std::string& tag, const std::vector<std::string>& outputs,
            const std::string& redirect = "") {
    t.sock = temp_path(tag + ".sock");
    std::vector<std::string> argv{bin,    "run",     "--control", t.sock, "--passthrough",
                                  "none", "--grace", "1"};
    argv.insert(argv.end(), outputs.begin(), outputs.end());
    argv.push_back("--");
    argv.insert(argv.end(), worker.begin(), worker.end());
    if (!redirect.empty()) {
        std::string cmd = "exec";
        for (const auto& a : argv) cmd += " '" + a + "'";  // no quote in these arguments
        argv = {"/bin/sh", "-c", cmd + " " + redirect};
    }
    t.p = start(argv, tag);
    ASSERT_TRUE(eventually([&] { return socket_ready(t.sock); })) << "no control socket";
}

// The "errors" and "last_error" of the output whose id starts with `id` in a status reply.
struct output_errors {
    long errors = -1;
    std::string last_error;
};
output_errors errors_of(const std::string& status, const std::string& id) {
    std::smatch m;
    const std::regex re("\\{\"output\":\"" + id +
                        "[^\"]*\",\"events\":[0-9]+,\"dropped\":[0-9]+,\"errors\":([0-9]+),"
                        "\"last_error\":\"((?:[^\"\\\\]|\\\\.)*)\"\\}");
    if (!std::regex_search(status, m, re)) return {};
    return {std::stol(m[1]), m[2]};
}

// `telecap top --once`'s OUTPUT row for `id`.
std::string top_row(const std::string& sock, const std::string& id) {
    const auto r = run({"/usr/bin/env", "-u", "COLUMNS", bin, "top", "--socket", sock, "--once",
                        "--interval", "100"},
                       "top");
    for (std::size_t at = r.out.find(id); at != std::string::npos;) {
        const auto start = r.out.rfind('\n', at);
        if (start == std::string::npos || at == start + 1)
            return r.out.substr(at, r.out.find('\n', at) - at);
        at = r.out.find(id, at + 1);
    }
    return "";
}

TEST(OutputErrors, UnixOutputRefusingAHostIsAnError) {
    telecap_run t;
    const std::string path = temp_path("errors-unix.out.sock");
    launch(t, "errors-unix", {"-o", "unix:" + path + "?max_hosts=1"});
    ASSERT_TRUE(eventually([&] { return socket_ready(path); }));
    const int first = unix_connect(path);
    ASSERT_GE(first, 0);
    // The second host is one too many: accepted and closed at once (EOF).
    const int second = unix_connect(path);
    ASSERT_GE(second, 0);
    std::string got;
    EXPECT_TRUE(read_until_closed(second, got,
                                  std::chrono::steady_clock::now() + std::chrono::seconds(10)));
    ::close(second);
    output_errors e;
    ASSERT_TRUE(eventually([&] {
        e = errors_of(ctl(t.sock, {"--json", "status"}).out, "output.0:unix:");
        return e.errors >= 1;
    })) << ctl(t.sock, {"--json", "status"}).out;
    EXPECT_EQ(e.last_error, "refused a host: max_hosts (1) connected");
    const auto row = top_row(t.sock, "output.0:unix:");
    EXPECT_NE(row.find(" 1 refused a host: max_hosts (1) connected"), std::string::npos) << row;
    ::close(first);
}

TEST(OutputErrors, LogOutputWriteFailureIsAnError) {
    telecap_run t;
    // The log output writes to telecap's stderr: /dev/full fails every write (ENOSPC).
    launch(t, "errors-log", {"-o", "log"}, "2>/dev/full");
    output_errors e;
    ASSERT_TRUE(eventually([&] {
        e = errors_of(ctl(t.sock, {"--json", "status"}).out, "output.0:log");
        return e.errors >= 1;
    })) << ctl(t.sock, {"--json", "status"}).out;
    EXPECT_NE(e.last_error.find("No space left on device"), std::string::npos) << e.last_error;
    EXPECT_NE(top_row(t.sock, "output.0:log").find("No space left on device"), std::string::npos);
}

}  // namespace
}  // namespace telecap::test
