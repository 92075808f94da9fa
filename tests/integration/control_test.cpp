// telecap run's gates with real workers: the defaults from the CLI and the config, counted
// per worker and reason, never data lost; and (further down) the control socket and ctl.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

// A worker emitting `n` pairs of python.call.start and tool.execution.start events.
std::vector<std::string> emitter(int n, const std::string& name_a = "python.call.start",
                                 const std::string& name_b = "tool.execution.start") {
    const std::string line = [](const std::string& e) {
        return "echo 'TELEMETRY:{\"event\":\"" + e + "\",\"measurements\":{}}' >&2; ";
    }(name_a) + [](const std::string& e) {
        return "echo 'TELEMETRY:{\"event\":\"" + e + "\",\"measurements\":{}}' >&2; ";
    }(name_b);
    return {"/bin/sh", "-c",
            "i=0; while [ $i -lt " + std::to_string(n) + " ]; do " + line + "i=$((i+1)); done"};
}

std::vector<std::string> run_argv(std::vector<std::string> opts, std::vector<std::string> cmd) {
    std::vector<std::string> argv{bin, "run"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return argv;
}

// The value of a telecap_dropped_total series of the default worker in a --stats file.
long dropped(const std::string& stats, const std::string& reason,
             const std::string& pool = "default", const std::string& worker = "default-0") {
    const std::string key = "\"telecap_dropped_total{pool=\\\"" + pool + "\\\",reason=\\\"" +
                            reason + "\\\",worker=\\\"" + worker + "\\\"}\":";
    const auto at = stats.find(key);
    return at == std::string::npos ? -1 : std::stol(stats.substr(at + key.size()));
}

TEST(ControlGates, DenyMatchesTheWireNameAndCountsFilteredNotLost) {
    const std::string stats = temp_path("deny.json");
    const auto r = run(run_argv({"--deny", "python.*", "--stats", stats}, emitter(50)), "deny");
    ASSERT_EQ(r.exit_code, 0) << r.err;  // removed on request: not data lost
    // tool.execution.start is snakepit.python.tool... for the host, but its wire name is not
    // python.*: it passes.
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 50u);
    EXPECT_EQ(count(r.out, "\"call\",\"start\"]"), 0u);
    const std::string s = read_file(stats);
    EXPECT_EQ(dropped(s, "filtered"), 50) << s;
    EXPECT_EQ(dropped(s, "sampled"), 0) << s;
    EXPECT_NE(s.find("\"dropped\":{\"disabled\":0,\"sampled\":0,\"filtered\":50,"), std::string::npos)
        << s;
    EXPECT_EQ(r.err.find("TELEMETRY"), std::string::npos) << r.err;  // not passed through
}

TEST(ControlGates, AllowListAndSamplingPatterns) {
    const std::string stats = temp_path("sample.json");
    const auto r = run(run_argv({"--sample", "0", "--sample-pattern", "tool.*", "--stats", stats},
                                emitter(40)),
                       "sample");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"call\",\"start\"]"), 40u);  // not matched: not sampled
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 0u);
    EXPECT_EQ(dropped(read_file(stats), "sampled"), 40);

    const auto a = run(run_argv({"--allow", "tool.*"}, emitter(10)), "allow");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(count(a.out, "\"call\",\"start\"]"), 0u);
    EXPECT_EQ(count(a.out, "\"execution\",\"start\"]"), 10u);
}

TEST(ControlGates, RateLimitPerEventName) {
    const std::string stats = temp_path("limit.json");
    // 1 event/s with a burst of 5: a burst of 300 of each name keeps about 5 of each.
    const auto r = run(run_argv({"--rate-limit", "1/5", "--stats", stats}, emitter(300)), "limit");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto calls = count(r.out, "\"call\",\"start\"]");
    const auto tools = count(r.out, "\"execution\",\"start\"]");
    EXPECT_GE(calls, 5u);
    EXPECT_LE(calls, 10u);  // one more token a second at most, on a slow machine
    EXPECT_GE(tools, 5u);   // its own bucket: the other name's flood costs it nothing
    EXPECT_LE(tools, 10u);
    EXPECT_EQ(dropped(read_file(stats), "rate_limited"),
              static_cast<long>(600 - calls - tools));
}

TEST(ControlGates, BadControlFlagsAreRefused) {
    auto r = run(run_argv({"--sample", "nan"}, {"true"}), "nan");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("NaN"), std::string::npos) << r.err;
    r = run(run_argv({"--allow", "python.[call"}, {"true"}), "glob");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("unclosed '['"), std::string::npos) << r.err;
    r = run(run_argv({"--rate-limit", "ten"}, {"true"}), "limit");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--rate-limit"), std::string::npos) << r.err;
}

std::string emitter_yaml(int n) {
    std::string y = "[";
    for (const auto& a : emitter(n)) {
        std::string q;
        for (char c : a) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        y += (y.size() > 1 ? ", \"" : "\"") + q + "\"";
    }
    return y + "]";
}

TEST(ControlGates, ConfigDefaultsPerPoolOverTheTopLevel) {
    const std::string path = temp_path("control.yaml");
    const std::string stats = temp_path("control-stats.json");
    write_file(path, "control:\n"
                     "  deny: [\"python.*\"]\n"
                     "pools:\n"
                     "  - name: off\n"
                     "    command: " + emitter_yaml(20) + "\n"
                     "    control:\n"
                     "      enabled: false\n"
                     "  - name: open\n"
                     "    command: " + emitter_yaml(20) + "\n"
                     "    control:\n"
                     "      allow: [\"*\"]\n"
                     "  - name: plain\n"
                     "    command: " + emitter_yaml(20) + "\n");
    const auto r = run({bin, "run", "--config", path, "--stats", stats}, "cfg");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string s = read_file(stats);
    EXPECT_EQ(dropped(s, "disabled", "off", "off-0"), 40) << s;
    EXPECT_EQ(dropped(s, "filtered", "open", "open-0"), 0) << s;  // its own filter replaces
    EXPECT_EQ(dropped(s, "filtered", "plain", "plain-0"), 20) << s;  // the top level's
    EXPECT_EQ(count(r.out, "\"call\",\"start\"]"), 20u);
    EXPECT_EQ(count(r.out, "\"execution\",\"start\"]"), 40u);
}

TEST(ControlGates, BadConfigControlsNameTheLine) {
    const std::string path = temp_path("badcontrol.yaml");
    write_file(path, "pools:\n  - command: [\"true\"]\n    control:\n      sampling_rate: .nan\n");
    auto r = run({bin, "run", "--config", path}, "badctl");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":4:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("NaN"), std::string::npos) << r.err;
    write_file(path, "control:\n  allow:\n    - ok.*\n    - \"bad.[x\"\npools:\n  - command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "badglob");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":4:"), std::string::npos) << r.err;
    write_file(path, "control:\n  rate_limit: {events_per_second: -3}\npools:\n  - command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "badlimit");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":2:"), std::string::npos) << r.err;
    write_file(path, "control:\n  sample: 0.5\npools:\n  - command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "badkey");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("unknown key \"sample\""), std::string::npos) << r.err;
}

}  // namespace
}  // namespace telecap::test
