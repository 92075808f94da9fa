// telecap run's reload with real workers: `telecap ctl reload` and SIGHUP read the config again;
// pools added start, removed ones stop, changed ones restart one worker at a time, the others
// keep their pids; outputs are rebuilt without losing events; a bad file changes nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/control_client.hpp"
#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

// A pool entry of the config (YAML), with a command given as a shell script.
std::string pool(const std::string& name, const std::string& script, int instances = 1,
                 const std::string& more = "") {
    std::string quoted;
    for (char c : script) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return "  - name: " + name + "\n    command: [\"/bin/sh\", \"-c\", \"" + quoted +
           "\"]\n    instances: " + std::to_string(instances) + "\n" + more;
}

// Dies of the SIGTERM it gets at the end (exit status 143).
const std::string idle = "while :; do sleep 1; done";
// Exits 0 on SIGTERM.
const std::string calm = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
// A python.call.start every 20 ms, numbered 1, 2, ... in its system_time; exits 0 on SIGTERM.
const std::string ticker =
    "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); "
    "echo \"TELEMETRY:{\\\"event\\\":\\\"python.call.start\\\","
    "\\\"measurements\\\":{\\\"system_time\\\":$i}}\" >&2; sleep 0.02; done";
const std::string tick = "\"call\",\"start\"]";  // in each of the ticker's events

struct running_telecap {
    process p;
    std::string cfg, sock, out, stats;
    bool waited = false;
    running_telecap() = default;
    running_telecap(const running_telecap&) = delete;
    running_telecap& operator=(const running_telecap&) = delete;
    running_telecap(running_telecap&& o) noexcept
        : p(o.p), cfg(o.cfg), sock(o.sock), out(o.out), stats(o.stats), waited(o.waited) {
        o.waited = true;
    }
    ~running_telecap() {  // a failed assertion leaves nothing running
        if (waited || p.pid <= 0) return;
        ::kill(p.pid, SIGKILL);
        (void)wait(p);
    }
};

running_telecap start_config(const std::string& tag, const std::string& config,
                             std::vector<std::string> extra = {}) {
    running_telecap t;
    t.cfg = temp_path(tag + ".yaml");
    t.sock = temp_path(tag + ".sock");
    t.out = temp_path(tag + ".jsonl");
    t.stats = temp_path(tag + ".stats.json");
    ::unlink(t.out.c_str());  // outputs append: a test run again starts afresh
    write_file(t.cfg, config);
    std::vector<std::string> argv{bin,       "run",     "--config", t.cfg, "--control",
                                  t.sock,    "--stats", t.stats,    "-o",  "jsonl:" + t.out,
                                  "--grace", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    t.p = start(argv, tag);
    EXPECT_TRUE(eventually([&] { return socket_ready(t.sock); })) << "no control socket";
    return t;
}

std::string status(const running_telecap& t) { return ctl(t.sock, {"--json", "status"}).out; }

bool all_running(const running_telecap& t, const std::vector<std::string>& workers,
                 std::string* st = nullptr) {
    const std::string s = status(t);
    if (st) *st = s;
    for (const auto& w : workers)
        if (worker_field(s, w, "state") != "\"running\"") return false;
    return true;
}

result stop(running_telecap& t) {
    ::kill(t.p.pid, SIGTERM);
    t.waited = true;
    return wait(t.p);
}

TEST(Reload, AddsRemovesRestartsAndResizesPoolsAndKeepsTheRest) {
    auto t = start_config("pools", "pools:\n" + pool("keep", calm) + pool("change", idle, 2) +
                                       pool("gone", idle) + pool("grow", idle));
    std::string st;
    ASSERT_TRUE(eventually([&] {
        return all_running(t, {"keep-0", "change-0", "change-1", "gone-0", "grow-0"}, &st);
    })) << st;
    const std::string keep = worker_field(st, "keep-0", "pid");
    const std::string grow = worker_field(st, "grow-0", "pid");
    const std::string change0 = worker_field(st, "change-0", "pid");
    const std::string change1 = worker_field(st, "change-1", "pid");

    write_file(t.cfg, "pools:\n" + pool("keep", calm) + pool("change", "sleep 1; " + idle, 2) +
                          pool("grow", idle, 3) + pool("new", idle));
    auto r = ctl(t.sock, {"--json", "reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"pools\":{\"added\":[\"new\"],\"removed\":[\"gone\"],\"changed\":"
                         "[\"change\"],\"resized\":[\"grow\"],\"unchanged\":[\"keep\"]}"),
              std::string::npos)
        << r.out;
    ASSERT_TRUE(eventually([&] {
        return all_running(t, {"keep-0", "grow-0", "grow-1", "grow-2", "new-0"}, &st) &&
               worker_field(st, "change-0", "restarts") == "1" &&
               worker_field(st, "change-1", "restarts") == "1" &&
               worker_field(st, "gone-0", "state").empty();
    })) << st;
    EXPECT_EQ(worker_field(st, "keep-0", "pid"), keep);  // untouched
    EXPECT_EQ(worker_field(st, "grow-0", "pid"), grow);  // only more of them
    EXPECT_EQ(worker_field(st, "keep-0", "restarts"), "0");
    EXPECT_NE(worker_field(st, "change-0", "pid"), change0);
    EXPECT_NE(worker_field(st, "change-1", "pid"), change1);
    EXPECT_NE(st.find("{\"name\":\"grow\",\"instances\":3}"), std::string::npos) << st;
    EXPECT_EQ(st.find("\"gone\""), std::string::npos) << st;

    // The human-readable reply names what happened.
    write_file(t.cfg, "pools:\n" + pool("keep", calm));
    r = ctl(t.sock, {"reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("pools removed: change, grow, new"), std::string::npos) << r.out;
    ASSERT_TRUE(eventually([&] {
        st = status(t);
        return worker_field(st, "new-0", "state").empty() &&
               worker_field(st, "grow-2", "state").empty();
    })) << st;

    const auto end = stop(t);
    EXPECT_FALSE(end.timed_out);
    EXPECT_EQ(end.exit_code, 0) << end.err;  // workers removed by a reload are no failure
    const std::string stats = read_file(t.stats);
    EXPECT_NE(stats.find("\"telecap_reloads_total{result=\\\"ok\\\"}\":2"), std::string::npos)
        << stats;
}

// A changed pool restarts worker by worker: the next stops only once the previous one runs
// again. Read from the lifecycle events, in the order telecap made them.
TEST(Reload, AChangedPoolRestartsOneWorkerAtATime) {
    auto t = start_config("roll", "pools:\n" + pool("p", idle, 3));
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0", "p-1", "p-2"}, &st); })) << st;
    write_file(t.cfg, "pools:\n" + pool("p", "true; " + idle, 3));
    ASSERT_EQ(ctl(t.sock, {"reload"}).exit_code, 0);
    ASSERT_TRUE(eventually([&] {
        st = status(t);
        for (const char* w : {"p-0", "p-1", "p-2"})
            if (worker_field(st, w, "restarts") != "1" ||
                worker_field(st, w, "state") != "\"running\"")
                return false;
        return true;
    })) << st;
    const auto end = stop(t);
    EXPECT_FALSE(end.timed_out);
    // Each worker's "terminated" (of its first run) and "restarted", in event order.
    const std::string out = read_file(t.out);
    std::vector<std::string> seq;
    std::size_t at = 0;
    while ((at = out.find('\n', at)) != std::string::npos) {
        const auto begin = out.rfind('\n', at - 1);
        const std::string line = out.substr(begin == std::string::npos ? 0 : begin + 1,
                                            at - (begin == std::string::npos ? 0 : begin + 1));
        ++at;
        for (const char* w : {"p-0", "p-1", "p-2"}) {
            if (line.find(std::string("\"worker_id\":\"") + w + "\"") == std::string::npos)
                continue;
            if (line.find("\"restarted\"]") != std::string::npos)
                seq.push_back(std::string("R") + w);
            if (line.find("\"terminated\"]") != std::string::npos && seq.size() < 6)
                seq.push_back(std::string("T") + w);
        }
    }
    ASSERT_GE(seq.size(), 6u) << out;
    EXPECT_EQ(std::vector<std::string>(seq.begin(), seq.begin() + 6),
              (std::vector<std::string>{"Tp-0", "Rp-0", "Tp-1", "Rp-1", "Tp-2", "Rp-2"}));
}

TEST(Reload, ABadFileChangesNothingAndSaysWhere) {
    auto t = start_config("bad", "pools:\n" + pool("p", calm));
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0"}, &st); })) << st;
    const std::string pid = worker_field(st, "p-0", "pid");

    // Not YAML, an unknown key at line 4, a pool without a command, a bad output.
    const std::vector<std::pair<std::string, std::string>> bad{
        {"pools: [\n", ":2:"},
        {"pools:\n" + pool("p", calm) + "    colour: red\n", ":5: unknown key \"colour\""},
        {"pools:\n  - name: q\n", ":2: pool \"q\" has no command"},
        {"outputs: [\"bogus:1\"]\npools:\n" + pool("p", calm), "unknown output \"bogus:1\""},
    };
    for (const auto& [text, where] : bad) {
        write_file(t.cfg, text);
        const auto r = ctl(t.sock, {"reload"});
        EXPECT_EQ(r.exit_code, 1) << text;
        EXPECT_NE(r.err.find("reload refused, nothing changed"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
    }
    st = status(t);
    EXPECT_EQ(worker_field(st, "p-0", "pid"), pid);
    EXPECT_EQ(worker_field(st, "p-0", "restarts"), "0");
    EXPECT_EQ(worker_field(st, "q-0", "state"), "");

    const auto end = stop(t);
    EXPECT_EQ(end.exit_code, 0) << end.err;
    EXPECT_NE(end.err.find("reload refused, nothing changed"), std::string::npos) << end.err;
    const std::string stats = read_file(t.stats);
    EXPECT_NE(stats.find("\"telecap_reloads_total{result=\\\"failed\\\"}\":4"), std::string::npos)
        << stats;
}

// telecap runs a command line that needs the gRPC bridge in telecap-grpc, as it starts
// (docs/grpc.md): a running telecap that started without it cannot take a grpc output on
// reload, and says to restart it.
TEST(Reload, AGrpcOutputAddedToATelecapStartedWithoutTheBridgeAsksForARestart) {
    auto t = start_config("grpc", "pools:\n" + pool("p", calm));
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0"}, &st); })) << st;
    write_file(t.cfg, "outputs: [\"grpc:127.0.0.1:0\"]\npools:\n" + pool("p", calm));
    const auto r = ctl(t.sock, {"reload"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("reload refused, nothing changed: output \"grpc:127.0.0.1:0\": "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("started without the gRPC bridge: restart it"), std::string::npos)
        << r.err;
    EXPECT_EQ(worker_field(status(t), "p-0", "restarts"), "0");
    const auto end = stop(t);
    EXPECT_EQ(end.exit_code, 0) << end.err;
}

// The controls become the config's; changes made with ctl since are dropped; settings a reload
// cannot change are named in the reply.
TEST(Reload, ControlsComeFromTheFileAndFixedSettingsAreNamed) {
    auto t = start_config("controls", "control:\n  deny: [\"a.*\"]\npools:\n" + pool("p", idle));
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0"}, &st); })) << st;
    ASSERT_EQ(ctl(t.sock, {"--worker", "p-0", "toggle", "off"}).exit_code, 0);
    write_file(t.cfg, "queue: 100\ncontrol:\n  deny: [\"b.*\"]\npools:\n" + pool("p", idle) +
                          "    control:\n      sampling_rate: 0.5\n");
    const auto r = ctl(t.sock, {"--json", "reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"not_applied\":[\"queue\"]"), std::string::npos) << r.out;
    st = status(t);
    EXPECT_NE(st.find("\"enabled\":true,\"sampling_rate\":0.5,\"sampling_patterns\":[],"
                      "\"allow\":[],\"deny\":[\"b.*\"]"),
              std::string::npos)
        << st;
    const auto end = stop(t);
    EXPECT_NE(end.err.find("\"queue\" changed"), std::string::npos) << end.err;
}

// Outputs that stay keep every event across reloads; an output added gets the events from then
// on, one removed stops getting them; a pool's own output follows its pool.
TEST(Reload, OutputsAreRebuiltWithoutLosingEvents) {
    const std::string added = temp_path("outputs-added.jsonl");
    const std::string pool_out = temp_path("outputs-pool.jsonl");
    ::unlink(added.c_str());
    ::unlink(pool_out.c_str());
    auto t = start_config("outputs", "pools:\n" + pool("p", ticker), {"--overflow", "block"});
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0"}, &st); })) << st;
    ASSERT_TRUE(eventually([&] { return count(read_file(t.out), tick) >= 5; }));

    write_file(t.cfg, "outputs: [\"jsonl:" + added + "\"]\npools:\n" + pool("p", ticker) +
                          "    outputs: [\"jsonl:" + pool_out + "\"]\n");
    auto r = ctl(t.sock, {"--json", "reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"outputs\":{\"added\":[\"jsonl:" + added + "\",\"p: jsonl:" + pool_out +
                         "\"],\"removed\":[]}"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\"unchanged\":[\"p\"]"), std::string::npos) << r.out;
    ASSERT_TRUE(eventually([&] {
        return count(read_file(added), tick) >= 5 && count(read_file(pool_out), tick) >= 5;
    }));

    write_file(t.cfg, "pools:\n" + pool("p", ticker));
    r = ctl(t.sock, {"--json", "reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"removed\":[\"jsonl:" + added + "\",\"p: jsonl:" + pool_out + "\"]"),
              std::string::npos)
        << r.out;
    // The removed ones are finished on the dispatch thread: once the kept output has more
    // events than were there at the reload, the removed ones got their last.
    const std::size_t at_reload = count(read_file(t.out), tick);
    ASSERT_TRUE(eventually([&] { return count(read_file(t.out), tick) > at_reload + 5; }));
    const std::size_t frozen = count(read_file(added), tick);
    ASSERT_TRUE(eventually([&] { return count(read_file(t.out), tick) > at_reload + 15; }));
    EXPECT_EQ(count(read_file(added), tick), frozen);

    const auto end = stop(t);
    EXPECT_EQ(end.exit_code, 0) << end.err;
    // The output that stayed has every event of the one run, 1..N without a gap.
    const std::string out = read_file(t.out);
    const std::size_t n = count(out, tick);
    ASSERT_GT(n, 20u);
    for (std::size_t i = 1; i <= n; ++i)
        ASSERT_NE(out.find("\"system_time\":" + std::to_string(i) + "}"), std::string::npos) << i;
}

// The numbers in a ticker's events (its system_time), each as often as it occurs (not the
// lifecycle events': their system_time is the clock).
std::map<long, int> numbers_in(const std::string& text) {
    std::map<long, int> seen;
    const std::string key = tick + ",\"measurements\":{\"system_time\":";
    for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + 1))
        ++seen[std::strtol(text.c_str() + pos + key.size(), nullptr, 10)];
    return seen;
}

// Writes the config whole (a reload never reads half of it).
void replace_file(const std::string& path, const std::string& text) {
    write_file(path + ".tmp", text);
    ASSERT_EQ(::rename((path + ".tmp").c_str(), path.c_str()), 0);
}

// A storm of 1,000 SIGHUPs, each with the outputs swapped (A, then B, then A...), then B and
// A once more by ctl:
// every event a worker numbered is in the output files, each exactly once. Before, a removed
// jsonl output dropped the batch it had not handed to its stream yet (52 of ~1,000 lost over
// 20 reloads), and a reload that took back a file removed a moment before was refused.
TEST(Reload, ASighupStormWithSwappedOutputsLosesNoEvent) {
    // Numbered events in bursts of 50 (about 4,000 a second); exits 0 on SIGTERM.
    const std::string numbered =
        "trap 'exit 0' TERM; i=0; while :; do j=0; while [ $j -lt 50 ]; do i=$((i+1)); "
        "j=$((j+1)); echo \"TELEMETRY:{\\\"event\\\":\\\"python.call.start\\\","
        "\\\"measurements\\\":{\\\"system_time\\\":$i}}\" >&2; done; sleep 0.01; done";
    const std::string a = temp_path("storm-a.jsonl"), b = temp_path("storm-b.jsonl");
    const std::string cfg = temp_path("storm-outputs.yaml"), sock = temp_path("storm-out.sock");
    const std::string stats = temp_path("storm-out.stats.json");
    ::unlink(a.c_str());
    ::unlink(b.c_str());
    const auto config = [&](int i) {
        return "outputs: [\"jsonl:" + (i % 2 == 0 ? a : b) + "\"]\npools:\n" + pool("p", numbered);
    };
    replace_file(cfg, config(0));
    running_telecap t;
    t.p = start({bin, "run", "--config", cfg, "--control", sock, "--stats", stats, "--overflow",
                 "block", "--passthrough", "none"},
                "storm-out");
    ASSERT_TRUE(eventually([&] { return socket_ready(sock); }));
    ASSERT_TRUE(eventually([&] { return numbers_in(read_file(a)).size() >= 50; }));
    // The storm ends on A (i = 1000).
    int hups = 0;
    for (int i = 1; i <= 1000; ++i) {
        replace_file(cfg, config(i));
        ::kill(t.p.pid, SIGHUP);
        ++hups;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    // Whatever the storm's reloads read (on a slow build they may each have found A, or left
    // B too briefly for a burst to reach it), B once for sure, and events in it: a reload by
    // ctl answers when it is done.
    replace_file(cfg, config(1));
    const auto to_b = ctl(sock, {"--json", "reload"});
    ASSERT_EQ(to_b.exit_code, 0) << to_b.err << to_b.out;
    ASSERT_TRUE(eventually([&] { return !numbers_in(read_file(b)).empty(); }));
    // Then A again, the last one applied.
    replace_file(cfg, config(1000));
    const auto r = ctl(sock, {"--json", "reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const std::size_t in_a_before = numbers_in(read_file(a)).size();
    ASSERT_TRUE(eventually([&] { return numbers_in(read_file(a)).size() > in_a_before + 100; }));
    const auto end = stop(t);
    ASSERT_FALSE(end.timed_out);
    EXPECT_EQ(end.exit_code, 0) << end.err.substr(0, 4000);
    EXPECT_EQ(end.err.find("refused"), std::string::npos) << end.err.substr(0, 4000);

    const auto in_a = numbers_in(read_file(a)), in_b = numbers_in(read_file(b));
    ASSERT_FALSE(in_a.empty());
    ASSERT_FALSE(in_b.empty()) << "no reload took effect";
    std::map<long, int> all = in_a;
    for (const auto& [n, times] : in_b) all[n] += times;
    const long last = all.rbegin()->first;
    ASSERT_GT(last, 1000);
    long missing = 0, twice = 0;
    for (long n = 1; n <= last; ++n) {
        const auto it = all.find(n);
        if (it == all.end())
            ++missing;
        else if (it->second != 1)
            ++twice;
    }
    EXPECT_EQ(missing, 0) << "of " << last << " events, over " << hups << " SIGHUPs";
    EXPECT_EQ(twice, 0) << "of " << last;
    // The reloads happened (signals sent close together may be taken as one).
    const std::string st = read_file(stats);
    const std::string key = "telecap_reloads_total{result=\\\"ok\\\"}\":";
    const auto at = st.find(key);
    ASSERT_NE(at, std::string::npos) << st.substr(0, 2000);
    const long reloads = std::strtol(st.c_str() + at + key.size(), nullptr, 10);
    EXPECT_GT(reloads, 100);
    EXPECT_NE(st.find("telecap_reloads_total{result=\\\"failed\\\"}\":0"), std::string::npos);
    std::cerr << "reload storm: " << last << " events, " << hups << " SIGHUPs, " << reloads
              << " reloads, A " << in_a.size() << ", B " << in_b.size() << "\n";
}

// An output removed and added back by the next reload, at once: the second reload is applied
// (before, it was refused with "output jsonl:X and output jsonl:X are both X" while the
// removed output had not been let go), and the file gets the events again.
TEST(Reload, AnOutputRemovedAndAddedBackAtOnceWorks) {
    const std::string side = temp_path("readd-side.jsonl");
    ::unlink(side.c_str());
    auto t =
        start_config("readd", "outputs: [\"jsonl:" + side + "\"]\npools:\n" + pool("p", ticker),
                     {"--overflow", "block"});
    ASSERT_TRUE(eventually([&] { return count(read_file(side), tick) >= 3; }));
    for (int i = 0; i < 5; ++i) {
        write_file(t.cfg, "pools:\n" + pool("p", ticker));
        auto r = ctl(t.sock, {"--json", "reload"});
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        write_file(t.cfg, "outputs: [\"jsonl:" + side + "\"]\npools:\n" + pool("p", ticker));
        r = ctl(t.sock, {"--json", "reload"});
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        EXPECT_NE(r.out.find("\"outputs\":{\"added\":[\"jsonl:" + side + "\"]"), std::string::npos)
            << r.out;
    }
    const std::size_t before = count(read_file(side), tick);
    ASSERT_TRUE(eventually([&] { return count(read_file(side), tick) > before + 3; }));
    const auto end = stop(t);
    EXPECT_EQ(end.exit_code, 0) << end.err;
    EXPECT_EQ(end.err.find("refused"), std::string::npos) << end.err;
}

// A port nothing listens on now (the kernel's pick for port 0).
std::string free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return std::to_string(ntohs(a.sin_port));
}

std::string metrics_file(const std::string& counter) {
    return "service_name: t\ncounters:\n  - name: " + counter +
           "\n    description: calls\n    event: snakepit.python.call.start\n";
}

// The metrics file read again: the exporters serve the new derived series, from the events
// after the reload; a bad metrics file is refused like a bad config.
TEST(Reload, TheMetricsFileIsReadAgain) {
    const std::string mfile = temp_path("reload-metrics.yaml");
    write_file(mfile, metrics_file("first_calls"));
    const std::string port = free_port();
    auto t = start_config("metrics", "metrics: " + mfile + "\npools:\n" + pool("p", ticker),
                          {"-o", "prometheus:127.0.0.1:" + port});
    const auto scrape = [&] {
        return run({"/usr/bin/curl", "-s", "http://127.0.0.1:" + port + "/metrics"}, "curl").out;
    };
    std::string m;
    ASSERT_TRUE(eventually([&] {
        m = scrape();
        return m.find("\nfirst_calls_total ") != std::string::npos;
    })) << m;

    write_file(mfile, "counters: [{name: broken, nonsense: 1}]\n");
    auto r = ctl(t.sock, {"reload"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("bad metrics file"), std::string::npos) << r.err;
    EXPECT_NE(scrape().find("\nfirst_calls_total "), std::string::npos);

    write_file(mfile, metrics_file("second_calls"));
    r = ctl(t.sock, {"--json", "reload"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"metrics\":\"reloaded\""), std::string::npos) << r.out;
    ASSERT_TRUE(eventually([&] {
        m = scrape();
        return m.find("\nsecond_calls_total ") != std::string::npos;
    })) << m;
    EXPECT_EQ(m.find("first_calls"), std::string::npos) << m;
    EXPECT_NE(m.find("telecap_reloads_total{result=\"ok\"} 1"), std::string::npos) << m;
    stop(t);
}

// SIGHUP reloads with --config and is not forwarded; without --config it is forwarded as
// before, and ctl reload is refused.
TEST(Reload, SighupReloadsWithAConfigAndIsForwardedWithout) {
    const std::string traps =
        "trap 'echo got-HUP >&2' HUP; trap 'echo got-USR2 >&2' USR2; "
        "while :; do sleep 0.05; done";
    auto t = start_config("hup", "pools:\n" + pool("p", traps));
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0"}, &st); })) << st;
    write_file(t.cfg, "pools:\n" + pool("p", traps) + pool("q", idle));
    ::kill(t.p.pid, SIGHUP);
    ASSERT_TRUE(eventually([&] { return all_running(t, {"p-0", "q-0"}, &st); })) << st;
    // USR2 is forwarded: once the worker says so, a forwarded HUP (sent earlier) would have
    // been said too.
    ::kill(t.p.pid, SIGUSR2);
    ASSERT_TRUE(
        eventually([&] { return read_file(t.p.err_path).find("got-USR2") != std::string::npos; }));
    auto end = stop(t);
    EXPECT_EQ(end.err.find("got-HUP"), std::string::npos) << end.err;

    const std::string sock = temp_path("hup-plain.sock");
    const auto plain =
        start({bin, "run", "--control", sock, "--", "/bin/sh", "-c", traps}, "plain");
    ASSERT_TRUE(eventually([&] { return socket_ready(sock); }));
    const auto r = ctl(sock, {"reload"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("without --config"), std::string::npos) << r.err;
    ASSERT_TRUE(eventually(
        [&] {
            ::kill(plain.pid, SIGHUP);
            return read_file(plain.err_path).find("got-HUP") != std::string::npos;
        },
        std::chrono::seconds(10)));
    ::kill(plain.pid, SIGTERM);
    EXPECT_FALSE(wait(plain).timed_out);
}

// Reloads while a pool crashes and restarts as fast as its backoff lets it: every reload is
// answered, the pool takes the new spec, and telecap stops cleanly afterwards.
TEST(Reload, DuringARestartStorm) {
    const std::string storm_opts =
        "    restart: always\n    backoff_min: 0.01\n    backoff_max: 0.02\n"
        "    max_restarts: 100000\n";
    auto t = start_config(
        "storm", "pools:\n" + pool("crash", "exit 1", 4, storm_opts) + pool("steady", idle));
    std::string st;
    ASSERT_TRUE(eventually([&] { return all_running(t, {"steady-0"}, &st); })) << st;
    const std::string steady = worker_field(st, "steady-0", "pid");
    for (int i = 0; i < 10; ++i) {
        write_file(t.cfg,
                   "pools:\n" +
                       pool("crash", "exit " + std::to_string(i % 2 + 1), 1 + i % 4, storm_opts) +
                       pool("steady", idle));
        const auto r = ctl(t.sock, {"--json", "reload"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    // The last config: 2 crashing workers.
    ASSERT_TRUE(eventually([&] {
        st = status(t);
        return worker_field(st, "crash-1", "state") != "" &&
               worker_field(st, "crash-2", "state") == "" &&
               worker_field(st, "crash-3", "state") == "";
    })) << st;
    EXPECT_EQ(worker_field(st, "steady-0", "pid"), steady);
    const auto end = stop(t);
    EXPECT_FALSE(end.timed_out);
    EXPECT_EQ(end.err.find("left behind"), std::string::npos) << end.err;
}

}  // namespace
}  // namespace telecap::test
