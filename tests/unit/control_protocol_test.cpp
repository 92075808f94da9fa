// control/protocol and control/status: requests against a fake target (no processes), and the
// status and workers JSON from a snapshot.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/protocol.hpp"

namespace telecap::control {
namespace {

struct fake_target final : target {
    std::vector<std::string> calls;
    std::optional<std::string> refuse;  // the problem every action reports
    bool has_registry = true;
    bool has_config = false;
    capture_stats stats;
    effective_controls ctl;

    std::string where(const scope& s) {
        return std::string(s.kind == scope_kind::global ? "all"
                           : s.kind == scope_kind::pool ? "pool:"
                                                        : "worker:") +
               s.name;
    }
    std::optional<std::string> set_controls(const scope& s, controls u) override {
        calls.push_back("set " + where(s) + (u.enabled ? (*u.enabled ? " on" : " off") : ""));
        return refuse;
    }
    std::optional<std::string> reset_controls(const scope& s) override {
        calls.push_back("reset " + where(s));
        return refuse;
    }
    std::optional<std::string> stop_workers(const scope& s, int* n) override {
        calls.push_back("stop " + where(s));
        *n = 2;
        return refuse;
    }
    std::optional<std::string> start_workers(const scope& s, int* n) override {
        calls.push_back("start " + where(s));
        *n = 1;
        return refuse;
    }
    std::optional<std::string> restart_workers(const scope& s, int* n) override {
        calls.push_back("restart " + where(s));
        *n = 3;
        return refuse;
    }
    int workers_in(const scope& s) const override { return s.kind == scope_kind::global ? 4 : 1; }
    status_snapshot status() const override {
        status_snapshot s;
        s.uptime_seconds = 1.5;
        s.pools.push_back({"p", 1});
        worker_status w;
        w.id = "p-0";
        w.pool = "p";
        w.pid = 10;
        w.worker_pid = 11;
        w.state = "running";
        w.restarts = 2;
        w.uptime_seconds = 0.5;
        w.stats = &stats;
        w.gated[static_cast<std::size_t>(verdict::sampled)] = 7;
        w.controls = &ctl;
        s.workers.push_back(w);
        return s;
    }
    std::optional<std::string> metrics_json() const override {
        if (!has_registry) return std::nullopt;
        return std::string("{\"telecap_workers_up\":1}");
    }
    std::optional<std::string> reload_config() override {
        if (!has_config) return std::nullopt;
        return std::string("{\"ok\":true,\"reloaded\":true}");
    }
    std::optional<std::string> reopen_files(int* n) override {
        calls.push_back("reopen");
        *n = 2;
        return std::nullopt;
    }
};

TEST(ControlProtocol, ControlsReachTheScopeAndCountItsWorkers) {
    fake_target t;
    EXPECT_EQ(handle(R"({"cmd":"toggle","enabled":false,"pool":"p"})", t),
              R"({"ok":true,"workers":1})");
    EXPECT_EQ(handle(R"({"cmd":"reset"})", t), R"({"ok":true,"workers":4})");
    EXPECT_EQ(t.calls, (std::vector<std::string>{"set pool:p off", "reset all"}));
}

TEST(ControlProtocol, LifecycleCommandsReplyWithTheCountTheTargetGives) {
    fake_target t;
    EXPECT_EQ(handle(R"({"cmd":"stop","worker":"p-0"})", t), R"({"ok":true,"workers":2})");
    EXPECT_EQ(handle(R"({"cmd":"start"})", t), R"({"ok":true,"workers":1})");
    EXPECT_EQ(handle(R"({"cmd":"restart","pool":"p"})", t), R"({"ok":true,"workers":3})");
    EXPECT_EQ(t.calls,
              (std::vector<std::string>{"stop worker:p-0", "start all", "restart pool:p"}));
}

TEST(ControlProtocol, RefusalsAndBadRequestsAreErrorReplies) {
    fake_target t;
    t.refuse = "no pool \"q\"";
    EXPECT_EQ(handle(R"({"cmd":"stop","pool":"q"})", t), R"({"ok":false,"error":"no pool \"q\""})");
    const std::string bad = handle(R"({"cmd":"explode"})", t);
    EXPECT_EQ(bad.rfind(R"({"ok":false,"error":)", 0), 0u) << bad;
    EXPECT_EQ(t.calls.size(), 1u);  // the bad request reached nothing
    t.has_registry = false;
    EXPECT_EQ(handle(R"({"cmd":"stats"})", t), R"({"ok":false,"error":"no registry to read"})");
    EXPECT_NE(handle(R"({"cmd":"reload"})", t).find("without --config"), std::string::npos);
    t.has_config = true;
    EXPECT_EQ(handle(R"({"cmd":"reload"})", t), R"({"ok":true,"reloaded":true})");
}

TEST(ControlProtocol, ReopenTakesNoScopeAndCountsTheFiles) {
    fake_target t;
    EXPECT_EQ(handle(R"({"cmd":"reopen"})", t), R"({"ok":true,"files":2})");
    EXPECT_EQ(t.calls, (std::vector<std::string>{"reopen"}));
    const std::string scoped = handle(R"({"cmd":"reopen","pool":"p"})", t);
    EXPECT_EQ(scoped, R"({"ok":false,"error":"unknown field \"pool\" for reopen"})");
    EXPECT_EQ(t.calls.size(), 1u);
}

TEST(ControlProtocol, StatusAndStatsSpliceTheirObjectsIntoTheReply) {
    fake_target t;
    t.stats.events = 5;
    t.stats.lines = 9;
    const std::string status = handle(R"({"cmd":"status"})", t);
    EXPECT_EQ(
        status.rfind(
            R"({"ok":true,"uptime_seconds":1.5,"stopping":false,"pools":[{"name":"p","instances":1}],)"
            R"("workers":{"p-0":{"pool":"p","pid":11,"state":"running","stopped_on_request":false,)"
            R"("restarts":2,"uptime_seconds":0.5,"events":5,"dropped":{"disabled":0,"sampled":7,)",
            0),
        0u)
        << status;
    EXPECT_NE(status.find(R"("controls":{"enabled":true)"), std::string::npos) << status;
    EXPECT_EQ(handle(R"({"cmd":"stats"})", t), R"({"ok":true,"metrics":{"telecap_workers_up":1}})");
}

TEST(ControlStatus, StatusNamesLinesRejectsOutputsQueueAndProcess) {
    fake_target t;
    t.stats.lines = 9;
    t.stats.events = 5;
    t.stats.passthrough_lines = 4;
    t.stats.rejected_for(reject_reason::invalid_json) = 3;
    auto s = t.status();
    s.outputs.push_back({"output.0:jsonl:/x", 12, 1, 2, "/x: write failed: \"full\""});
    s.queue_depth = 6;
    s.cpu_seconds = 0.25;
    s.rss_bytes = 4096;
    s.dropped = {.queue_full = 1,
                 .shutdown = 2,
                 .output = 3,
                 .tap = 4,
                 .passthrough_lines = 5,
                 .rejects_lines = 6};
    const std::string json = status_json(s);
    // Each worker's counters after its controls; only the reasons counted so far.
    EXPECT_NE(json.find(R"("rate_limit":{"events_per_second":0.0,"burst":0.0}},"lines":9,)"
                        R"("passthrough_lines":4,"rejected":{"invalid_json":3}})"),
              std::string::npos)
        << json;
    EXPECT_EQ(json.substr(json.find("],\"outputs\"")),
              R"(],"outputs":[{"output":"output.0:jsonl:/x","events":12,"dropped":1,"errors":2,)"
              R"("last_error":"/x: write failed: \"full\""}],"queue_depth":6,)"
              R"("process":{"cpu_seconds":0.25,"rss_bytes":4096.0},)"
              R"("dropped":{"queue_full":1,"shutdown":2,"output":3,"tap":4},)"
              R"("dropped_lines":{"passthrough":5,"rejects":6}})");
}

TEST(ControlStatus, WorkersJsonNamesTheWaitedPidAndTheLineCounters) {
    fake_target t;
    t.stats.lines = 9;
    t.stats.events = 5;
    t.stats.passthrough_lines = 4;
    const auto w = t.status().workers;
    EXPECT_EQ(
        workers_json(w),
        R"({"p-0":{"pool":"p","pid":10,"state":"running","restarts":2,"lines":9,"events":5,)"
        R"("passthrough_lines":4,"rejected":0,"dropped":{"disabled":0,"sampled":7,"filtered":0,)"
        R"("rate_limited":0}}})");
}

}  // namespace
}  // namespace telecap::control
