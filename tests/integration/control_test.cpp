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

#include "support/control_client.hpp"
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
    EXPECT_NE(s.find("\"dropped\":{\"disabled\":0,\"sampled\":0,\"filtered\":50,"),
              std::string::npos)
        << s;
    EXPECT_EQ(r.err.find("TELEMETRY"), std::string::npos) << r.err;  // not passed through
}

TEST(ControlGates, AllowListAndSamplingPatterns) {
    const std::string stats = temp_path("sample.json");
    const auto r = run(
        run_argv({"--sample", "0", "--sample-pattern", "tool.*", "--stats", stats}, emitter(40)),
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
    EXPECT_EQ(dropped(read_file(stats), "rate_limited"), static_cast<long>(600 - calls - tools));
}

// An event outside the catalog, kept by its policy under a prefix: the patterns still see the
// name the worker emitted, not the prefixed one.
TEST(ControlGates, UnknownKeptEventsAreMatchedByTheirWireName) {
    const std::string stats = temp_path("unknown.json");
    const auto r = run(run_argv({"--catalog", TELECAP_TESTDATA "/keep_catalog.json", "--deny",
                                 "my.*", "--allow", "my.*", "--allow", "your.*", "--stats", stats},
                                emitter(30, "my.custom.thing", "your.custom.thing")),
                       "unknown");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count(r.out, "\"acme\",\"other\",\"my\""), 0u) << r.out;
    EXPECT_EQ(count(r.out, "\"acme\",\"other\",\"your\",\"custom\",\"thing\"]"), 30u) << r.out;
    EXPECT_EQ(dropped(read_file(stats), "filtered"), 30);
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
    write_file(path,
               "control:\n"
               "  deny: [\"python.*\"]\n"
               "pools:\n"
               "  - name: off\n"
               "    command: " +
                   emitter_yaml(20) +
                   "\n"
                   "    control:\n"
                   "      enabled: false\n"
                   "  - name: open\n"
                   "    command: " +
                   emitter_yaml(20) +
                   "\n"
                   "    control:\n"
                   "      allow: [\"*\"]\n"
                   "  - name: plain\n"
                   "    command: " +
                   emitter_yaml(20) + "\n");
    const auto r = run({bin, "run", "--config", path, "--stats", stats}, "cfg");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string s = read_file(stats);
    EXPECT_EQ(dropped(s, "disabled", "off", "off-0"), 40) << s;
    EXPECT_EQ(dropped(s, "filtered", "open", "open-0"), 0) << s;     // its own filter replaces
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
    write_file(
        path,
        "control:\n  allow:\n    - ok.*\n    - \"bad.[x\"\npools:\n  - command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "badglob");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":4:"), std::string::npos) << r.err;
    write_file(
        path, "control:\n  rate_limit: {events_per_second: -3}\npools:\n  - command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "badlimit");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":2:"), std::string::npos) << r.err;
    write_file(path,
               "control:\n  rate_limit: {events_per_second: 5,\n    burst: 0}\npools:\n  - "
               "command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "burst0");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(path + ":3:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("burst must be at least 1"), std::string::npos) << r.err;
    write_file(path, "control:\n  sample: 0.5\npools:\n  - command: [\"true\"]\n");
    r = run({bin, "run", "--config", path}, "badkey");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("unknown key \"sample\""), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------
// The control socket and telecap ctl.

// A worker that emits a python.call.start and a tool.execution.start every 10 ms, for ever.
std::vector<std::string> steady_emitter() {
    return {"/bin/sh", "-c",
            "while :; do "
            "echo 'TELEMETRY:{\"event\":\"python.call.start\",\"measurements\":{}}' >&2; "
            "echo 'TELEMETRY:{\"event\":\"tool.execution.start\",\"measurements\":{}}' >&2; "
            "sleep 0.01; done"};
}

// The "dropped" counts of one worker in a status reply: {"disabled":N,...}.
long worker_dropped(const std::string& status, const std::string& worker,
                    const std::string& reason) {
    std::smatch m;
    const std::regex re("\"" + worker + "\":\\{\"pool\"[^{]*\"dropped\":\\{[^}]*\"" + reason +
                        "\":([0-9]+)");
    return std::regex_search(status, m, re) ? std::stol(m[1]) : -1;
}

struct running_telecap {
    process p;
    std::string sock, out, stats;
};

running_telecap start_with_control(const std::string& tag, int instances,
                                   std::vector<std::string> cmd) {
    running_telecap t;
    t.sock = temp_path(tag + ".sock");
    t.out = temp_path(tag + ".jsonl");
    t.stats = temp_path(tag + ".stats.json");
    t.p = start(
        run_argv({"--control", t.sock, "--pool", "p", "--instances", std::to_string(instances),
                  "-o", "jsonl:" + t.out, "--stats", t.stats, "--grace", "2"},
                 std::move(cmd)),
        tag);
    EXPECT_TRUE(eventually([&] { return socket_ready(t.sock); })) << "no control socket";
    return t;
}

TEST(ControlSocket, EveryCommandThroughCtl) {
    auto t = start_with_control("every", 2, steady_emitter());
    // status: readable and JSON.
    auto r = ctl(t.sock, {"status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("p-0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
    r = ctl(t.sock, {"--json", "status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("{\"ok\":true,\"uptime_seconds\":", 0), 0u) << r.out;
    const std::string pid0 = worker_field(r.out, "p-0", "pid");
    EXPECT_NE(pid0, "0");

    // toggle one worker off: only its events are removed, as disabled.
    r = ctl(t.sock, {"--worker", "p-1", "toggle", "off"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("applied to 1 worker"), std::string::npos) << r.out;
    std::string st;
    EXPECT_TRUE(eventually([&] {
        st = ctl(t.sock, {"--json", "status"}).out;
        return worker_dropped(st, "p-1", "disabled") > 0;
    })) << st;
    EXPECT_EQ(worker_dropped(st, "p-0", "disabled"), 0) << st;
    // The table says which worker's telemetry is off, and what its words mean.
    r = ctl(t.sock, {"status"});
    EXPECT_NE(r.out.find("TELEMETRY"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  off\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  on\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("done (exited, not restarted)"), std::string::npos) << r.out;

    // filter for the pool, sampling for every worker: the worker's own toggle still wins.
    ASSERT_EQ(ctl(t.sock, {"--pool", "p", "filter", "--deny", "python.*"}).exit_code, 0);
    ASSERT_EQ(ctl(t.sock, {"sample", "0", "tool.*"}).exit_code, 0);
    EXPECT_TRUE(eventually([&] {
        st = ctl(t.sock, {"--json", "status"}).out;
        return worker_dropped(st, "p-0", "filtered") > 0 &&
               worker_dropped(st, "p-0", "sampled") > 0;
    })) << st;
    EXPECT_NE(st.find("\"deny\":[\"python.*\"]"), std::string::npos) << st;
    r = ctl(t.sock, {"status"});
    EXPECT_NE(r.out.find("  sample 0(1 patterns),deny 1\n"), std::string::npos) << r.out;
    r = ctl(t.sock, {"--worker", "p-1", "toggle", "on"});
    ASSERT_EQ(r.exit_code, 0) << r.err;

    // rate-limit, then no limit again.
    ASSERT_EQ(ctl(t.sock, {"rate-limit", "5/2"}).exit_code, 0);
    st = ctl(t.sock, {"--json", "status"}).out;
    EXPECT_NE(st.find("\"rate_limit\":{\"events_per_second\":5.0,\"burst\":2.0}"),
              std::string::npos)
        << st;
    ASSERT_EQ(ctl(t.sock, {"rate-limit", "0"}).exit_code, 0);

    // stats: the live registry, with the removals per worker and reason.
    r = ctl(t.sock, {"stats"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("telecap_dropped_total{pool=\"p\",reason=\"disabled\",worker=\"p-1\"}"),
              std::string::npos)
        << r.out;
    r = ctl(t.sock, {"--json", "stats"});
    EXPECT_EQ(r.out.rfind("{\"ok\":true,\"metrics\":{", 0), 0u) << r.out;

    // Refused commands: exit 1 with the reason; nothing changes.
    r = ctl(t.sock, {"sample", "nan"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("NaN"), std::string::npos) << r.err;
    r = ctl(t.sock, {"--pool", "nope", "toggle", "off"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no pool \"nope\""), std::string::npos) << r.err;
    r = ctl(t.sock, {"filter", "--allow", "a.[x"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("unclosed"), std::string::npos) << r.err;
    st = ctl(t.sock, {"--json", "status"}).out;
    EXPECT_NE(st.find("\"deny\":[\"python.*\"]"), std::string::npos) << st;

    // reset: the pool's filter is gone (none at startup), the global sampling stays.
    r = ctl(t.sock, {"--pool", "p", "reset"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    st = ctl(t.sock, {"--json", "status"}).out;
    EXPECT_EQ(st.find("\"deny\":[\"python.*\"]"), std::string::npos) << st;
    EXPECT_NE(st.find("\"sampling_rate\":0.0,\"sampling_patterns\":[\"tool.*\"]"),
              std::string::npos)
        << st;
    ASSERT_EQ(ctl(t.sock, {"reset"}).exit_code, 0);
    st = ctl(t.sock, {"--json", "status"}).out;
    EXPECT_EQ(count(st, "\"sampling_rate\":1.0,\"sampling_patterns\":[]"), 2u) << st;

    // restart one worker: a new pid, one restart.
    ASSERT_EQ(ctl(t.sock, {"--worker", "p-0", "restart"}).exit_code, 0);
    EXPECT_TRUE(eventually([&] {
        st = ctl(t.sock, {"--json", "status"}).out;
        return worker_field(st, "p-0", "restarts") == "1" &&
               worker_field(st, "p-0", "state") == "\"running\"";
    })) << st;
    EXPECT_NE(worker_field(st, "p-0", "pid"), pid0);

    // stop the pool: the workers stay stopped and telecap keeps running; start brings them back.
    ASSERT_EQ(ctl(t.sock, {"--pool", "p", "stop"}).exit_code, 0);
    EXPECT_TRUE(eventually([&] {
        st = ctl(t.sock, {"--json", "status"}).out;
        return worker_field(st, "p-0", "state") == "\"done\"" &&
               worker_field(st, "p-1", "state") == "\"done\"";
    })) << st;
    EXPECT_NE(st.find("\"stopped_on_request\":true"), std::string::npos);
    r = ctl(t.sock, {"status"});
    EXPECT_NE(r.out.find("done*"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("*: stopped on request (ctl stop)"), std::string::npos) << r.out;
    EXPECT_FALSE(process_gone(t.p.pid));
    ASSERT_EQ(ctl(t.sock, {"start"}).exit_code, 0);
    EXPECT_TRUE(eventually([&] {
        st = ctl(t.sock, {"--json", "status"}).out;
        return worker_field(st, "p-0", "state") == "\"running\"" &&
               worker_field(st, "p-1", "state") == "\"running\"";
    })) << st;

    ::kill(t.p.pid, SIGTERM);
    const auto end = wait(t.p);
    EXPECT_FALSE(end.timed_out);
    EXPECT_FALSE(socket_ready(t.sock));  // removed at the end
    const std::string stats = read_file(t.stats);
    EXPECT_GT(dropped(stats, "disabled", "p", "p-1"), 0) << stats;
}

TEST(ControlSocket, ResetPutsBackTheConfigsDefaults) {
    const std::string cfg = temp_path("reset.yaml");
    const std::string sock = temp_path("reset.sock");
    write_file(cfg,
               "control:\n  sampling_rate: 0.5\n"
               "pools:\n  - name: p\n    command: [\"sleep\", \"60\"]\n"
               "    control:\n      deny: [\"a.*\"]\n");
    const auto p = start({bin, "run", "--config", cfg, "--control", sock}, "reset");
    ASSERT_TRUE(eventually([&] { return socket_ready(sock); }));
    ASSERT_EQ(ctl(sock, {"--pool", "p", "filter", "--allow", "b.*"}).exit_code, 0);
    ASSERT_EQ(ctl(sock, {"sample", "1"}).exit_code, 0);
    ASSERT_EQ(ctl(sock, {"--worker", "p-0", "toggle", "off"}).exit_code, 0);
    std::string st = ctl(sock, {"--json", "status"}).out;
    EXPECT_NE(st.find("\"enabled\":false,\"sampling_rate\":1.0,\"sampling_patterns\":[],"
                      "\"allow\":[\"b.*\"],\"deny\":[]"),
              std::string::npos)
        << st;
    for (auto scope : {std::vector<std::string>{"--pool", "p"}, {"--worker", "p-0"}, {}}) {
        scope.push_back("reset");
        ASSERT_EQ(ctl(sock, scope).exit_code, 0);
    }
    st = ctl(sock, {"--json", "status"}).out;
    EXPECT_NE(st.find("\"enabled\":true,\"sampling_rate\":0.5,\"sampling_patterns\":[],"
                      "\"allow\":[],\"deny\":[\"a.*\"]"),
              std::string::npos)
        << st;
    EXPECT_EQ(ctl(sock, {"--worker", "nope", "reset"}).exit_code, 1);
    ::kill(p.pid, SIGTERM);
    EXPECT_FALSE(wait(p).timed_out);
}

TEST(ControlSocket, AWorkerStoppedOnRequestIsNoFailure) {
    auto t = start_with_control("held", 1, {"sleep", "60"});
    ASSERT_EQ(ctl(t.sock, {"stop"}).exit_code, 0);
    std::string st;
    EXPECT_TRUE(eventually([&] {
        st = ctl(t.sock, {"--json", "status"}).out;
        return worker_field(st, "p-0", "state") == "\"done\"";
    })) << st;
    EXPECT_EQ(worker_field(st, "p-0", "exit_code"), "143");  // SIGTERM
    ::kill(t.p.pid, SIGTERM);
    const auto r = wait(t.p);
    EXPECT_EQ(r.exit_code, 0) << r.err;  // asked for: not the run's failure
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

std::string read_line(int fd) {
    std::string got;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') got += c;
    return got;
}

TEST(ControlSocket, BadRequestsAndAClientThatNeverReadsLeaveTheLoopAlone) {
    auto t = start_with_control("lazy", 1, steady_emitter());
    // A malformed request: an error, and the connection still answers.
    const int bad = raw_connect(t.sock);
    ASSERT_GE(bad, 0);
    const std::string junk = "{\"cmd\":\n{\"cmd\":\"reboot\"}\n{\"cmd\":\"status\"}\n";
    ASSERT_EQ(::write(bad, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    EXPECT_NE(read_line(bad).find("\"ok\":false,\"error\":\"not JSON"), std::string::npos);
    EXPECT_NE(read_line(bad).find("unknown cmd \\\"reboot\\\""), std::string::npos);
    EXPECT_EQ(read_line(bad).rfind("{\"ok\":true,", 0), 0u);
    ::close(bad);

    // A client that asks for stats again and again and never reads a reply.
    const int lazy = raw_connect(t.sock);
    ASSERT_GE(lazy, 0);
    std::string flood;
    for (int i = 0; i < 5000; ++i) flood += "{\"cmd\":\"stats\"}\n";
    (void)::send(lazy, flood.data(), flood.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    // Others are served at once and the capture goes on.
    const auto before = count(read_file(t.out), "\"execution\",\"start\"]");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = ctl(t.sock, {"status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    EXPECT_TRUE(eventually(
        [&] { return count(read_file(t.out), "\"execution\",\"start\"]") > before + 10; }));
    // A huge request: an error, then the server hangs up.
    const int huge = raw_connect(t.sock);
    ASSERT_GE(huge, 0);
    const std::string big(100 * 1024, 'x');
    (void)::send(huge, big.data(), big.size(), MSG_NOSIGNAL);
    EXPECT_NE(read_line(huge).find("request longer than 65536 bytes"), std::string::npos);
    ::close(huge);
    ::close(lazy);
    EXPECT_EQ(ctl(t.sock, {"status"}).exit_code, 0);
    ::kill(t.p.pid, SIGTERM);
    EXPECT_FALSE(wait(t.p).timed_out);
}

TEST(ControlSocket, ALiveSocketIsRefusedAndNoServerIsAnError) {
    auto t = start_with_control("live", 1, {"sleep", "60"});
    struct stat st {};
    ASSERT_EQ(::lstat(t.sock.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto r = run(run_argv({"--control", t.sock}, {"true"}), "second");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("another process is listening"), std::string::npos) << r.err;
    ::kill(t.p.pid, SIGTERM);
    EXPECT_FALSE(wait(t.p).timed_out);
    r = ctl(t.sock, {"status"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
    r = ctl(t.sock, {"toggle", "maybe"});
    EXPECT_EQ(r.exit_code, 2);  // a usage error, before any connection
}

}  // namespace
}  // namespace telecap::test
