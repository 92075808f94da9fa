// telecap dialling a gRPC worker (bridge/grpc_client.hpp) against an in-process C++ server of
// StreamTelemetry: the toggle comes first, events are normalized by the capture pipeline as
// telemetry lines are, the client waits for a worker that is not listening yet, reconnects
// after the server restarts, stops promptly while connected, holds back reads while the loop
// is behind without losing anything, and malformed events are rejected and counted by reason.
// Every wait is for a condition, bounded (a failure, never a pace).

#include "bridge/grpc_client.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge/event_proto.hpp"
#include "bridge/snakepit_bridge.grpc.pb.h"
#include "capture/pipeline.hpp"
#include "loop/event_loop.hpp"

namespace telecap::bridge {
namespace {

using namespace std::chrono_literals;
constexpr auto wait_limit = 20s;

pb::TelemetryEvent make(std::vector<std::string> parts,
                        std::vector<std::pair<std::string, std::int64_t>> ints = {},
                        std::string corr = "") {
    pb::TelemetryEvent ev;
    for (auto& p : parts) ev.add_event_parts(p);
    for (auto& [k, v] : ints) (*ev.mutable_measurements())[k].set_int_value(v);
    ev.set_timestamp_ns(1700000000000000000);
    ev.set_correlation_id(std::move(corr));
    return ev;
}

// The worker side: each call records its controls, gets the events queued for it, then stays
// open (reading controls) until the client leaves or the server shuts down, or ends with OK
// when `end_after_send`.
class test_worker final : public pb::BridgeService::Service {
public:
    grpc::Status StreamTelemetry(
        grpc::ServerContext*,
        grpc::ServerReaderWriter<pb::TelemetryEvent, pb::TelemetryControl>* stream) override {
        {
            std::lock_guard lock(mu_);
            ++calls_;
        }
        cv_.notify_all();
        pb::TelemetryControl c;
        if (!stream->Read(&c)) return grpc::Status::OK;
        record(c);
        std::vector<pb::TelemetryEvent> send;
        bool end = false;
        {
            std::lock_guard lock(mu_);
            send.swap(to_send_);
            end = end_after_send_;
        }
        for (const auto& ev : send)
            if (!stream->Write(ev)) return grpc::Status::OK;
        {
            std::lock_guard lock(mu_);
            sent_ += send.size();
        }
        cv_.notify_all();
        if (end) return grpc::Status::OK;
        while (stream->Read(&c)) record(c);
        return grpc::Status::OK;
    }

    void queue(std::vector<pb::TelemetryEvent> evs, bool end_after_send = false) {
        std::lock_guard lock(mu_);
        for (auto& e : evs) to_send_.push_back(std::move(e));
        end_after_send_ = end_after_send;
    }
    std::vector<pb::TelemetryControl> controls() {
        std::lock_guard lock(mu_);
        return controls_;
    }
    // Waits (bounded) until pred() holds, under the lock.
    template <typename P>
    bool wait(P pred) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, wait_limit, [&] { return pred(*this); });
    }
    int calls_ = 0;
    std::size_t sent_ = 0;

private:
    void record(const pb::TelemetryControl& c) {
        {
            std::lock_guard lock(mu_);
            controls_.push_back(c);
        }
        cv_.notify_all();
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<pb::TelemetryEvent> to_send_;
    std::vector<pb::TelemetryControl> controls_;
    bool end_after_send_ = false;
};

struct server_handle {
    std::unique_ptr<grpc::Server> server;
    int port = 0;
};

server_handle serve(test_worker& w, int port = 0) {
    server_handle h;
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                       &h.port);
    b.RegisterService(&w);
    h.server = b.BuildAndStart();
    return h;
}

// A port that is free now: nothing listens there until a server is started on it.
int free_port() {
    test_worker probe;
    auto s = serve(probe);
    s.server->Shutdown(std::chrono::system_clock::now());
    return s.port;
}

// The loop-side host: the real capture pipeline (catalog, normalizer, counters) behind
// capture_pipeline::accept, as the intake feeds it.
class collecting_sink final : public event_sink {
public:
    void on_event(event& ev) override { events.push_back(ev); }
    std::vector<event> events;
};

class test_host final : public grpc_client_host {
public:
    explicit test_host(event_loop& loop)
        : loop_(loop),
          cat_(catalog::builtin()),
          pipeline_(cat_, context(), {}, &sink_, nullptr, nullptr, stats) {}

    void post(std::function<void()> fn) override { loop_.post(std::move(fn)); }
    std::uint64_t after(std::chrono::milliseconds d, std::function<void()> fn) override {
        return loop_.after(d, std::move(fn));
    }
    void cancel(std::uint64_t t) override { loop_.cancel(t); }
    bool ready() override { return accepting; }
    void on_event(const raw_event& raw, const std::function<std::string()>& text) override {
        ++delivered;
        if (!pipeline_.accept(raw, text)) last_reject = text();
    }

    const std::vector<event>& events() const { return sink_.events; }
    capture_stats stats;
    bool accepting = true;
    std::size_t delivered = 0;
    std::string last_reject;

private:
    static worker_context context() {
        worker_context ctx;
        ctx.node = "n1";
        ctx.worker_id = "w-0";
        ctx.pool_name = "p";
        ctx.pid = 4242;
        return ctx;
    }
    event_loop& loop_;
    catalog cat_;
    collecting_sink sink_;
    capture_pipeline pipeline_;
};

// Runs the loop until pred() holds (bounded).
template <typename P>
bool run_until(event_loop& loop, P pred) {
    const auto until = std::chrono::steady_clock::now() + wait_limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        loop.run_once(10ms);
    }
    return true;
}

grpc_client_options options(int port) {
    grpc_client_options o;
    o.address = "127.0.0.1:" + std::to_string(port);
    o.backoff_min = 20ms;
    o.backoff_max = 200ms;
    return o;
}

TEST(GrpcClient, TogglesOnFirstThenNormalizesAsTelemetryLines) {
    test_worker w;
    auto s = serve(w);
    ASSERT_NE(s.port, 0);
    auto with_meta = make({"tool", "execution", "start"}, {{"count", 1}}, "c-1");
    (*with_meta.mutable_metadata())["tool"] = "search";
    (*with_meta.mutable_metadata())["node"] = "worker-says";  // the host's key wins
    auto with_float = make({"python", "cpu", "sampled"});
    (*with_float.mutable_measurements())["cpu_percent"].set_float_value(1.0);
    auto with_string = make({"tool", "execution", "start"});
    (*with_string.mutable_measurements())["bytes"].set_string_value("12k");
    w.queue({with_meta, with_float, with_string, make({"python", "call", "start"}, {}, "")});

    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(s.port), host, stats);
    c.start();
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == 4; }));

    const auto ctl = w.controls();
    ASSERT_FALSE(ctl.empty());
    ASSERT_EQ(ctl[0].control_case(), pb::TelemetryControl::kToggle);
    EXPECT_TRUE(ctl[0].toggle().enabled());

    const auto& e = host.events();
    EXPECT_EQ(e[0].dotted_name(), "snakepit.python.tool.execution.start");
    EXPECT_EQ(std::get<std::int64_t>(*e[0].measurement("count")), 1);
    EXPECT_EQ(std::get<std::string>(*e[0].meta("tool")), "search");
    EXPECT_EQ(std::get<std::string>(*e[0].meta("node")), "n1");
    EXPECT_EQ(std::get<std::string>(*e[0].meta("worker_id")), "w-0");
    EXPECT_EQ(std::get<std::string>(*e[0].meta("pool_name")), "p");
    EXPECT_EQ(std::get<std::int64_t>(*e[0].meta("python_pid")), 4242);
    EXPECT_EQ(e[0].correlation_id, std::optional<std::string>("c-1"));
    EXPECT_EQ(e[0].timestamp_ns, 1700000000000000000);
    // A double with an integer value stays a double.
    EXPECT_EQ(std::get<double>(*e[1].measurement("cpu_percent")), 1.0);
    EXPECT_EQ(std::get<std::string>(*e[2].measurement("bytes")), "12k");
    // "" is no correlation id.
    EXPECT_FALSE(e[3].correlation_id.has_value());
    EXPECT_EQ(std::get<std::nullptr_t>(*e[3].meta("correlation_id")), nullptr);
    EXPECT_EQ(stats.events.load(), 4u);
    EXPECT_EQ(stats.connects.load(), 1u);
    EXPECT_EQ(host.stats.events.get(), 4u);
    c.stop();
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, MalformedEventsAreRejectedAndCountedByReason) {
    test_worker w;
    auto s = serve(w);
    auto no_value = make({"python", "call", "start"});
    (*no_value.mutable_measurements())["count"];  // a TelemetryValue with none of the three
    w.queue({make({}),                            // bad_shape
             no_value,                            // bad_measurement
             make({"no", "such", "event"}, {{"count", 1}}),              // unknown_event
             make({"python", "call", "start"}, {{"nope", 1}}),           // unknown_measurement
             make({"python", "", "start"}),                              // unknown_event
             make({"python", "call", "start"}, {{"count", 7}}, "ok")});  // accepted
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(s.port), host, stats);
    c.start();
    ASSERT_TRUE(run_until(loop, [&] { return host.delivered == 6; }));
    ASSERT_EQ(host.events().size(), 1u);
    EXPECT_EQ(host.events()[0].correlation_id, std::optional<std::string>("ok"));
    const auto n = [&](reject_reason r) { return host.stats.rejected_for(r).get(); };
    EXPECT_EQ(n(reject_reason::bad_shape), 1u);
    EXPECT_EQ(n(reject_reason::bad_measurement), 1u);
    EXPECT_EQ(n(reject_reason::unknown_event), 2u);
    EXPECT_EQ(n(reject_reason::unknown_measurement), 1u);
    EXPECT_NE(host.last_reject.find("grpc: event_parts"), std::string::npos) << host.last_reject;
    c.stop();
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, WaitsForAWorkerThatIsNotListeningYet) {
    const int port = free_port();  // nothing listens there until the server starts on it
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(port), host, stats);
    c.start();
    test_worker w;
    w.queue({make({"python", "call", "start"}, {{"count", 1}})});
    auto s = serve(w, port);
    ASSERT_NE(s.port, 0);
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == 1; }));
    EXPECT_EQ(stats.connects.load(), 1u);
    c.stop();
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, ReconnectsAfterTheServerRestarts) {
    auto w1 = std::make_unique<test_worker>();
    w1->queue({make({"python", "call", "start"}, {{"count", 1}})});
    auto s1 = serve(*w1);
    const int port = s1.port;
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(port), host, stats);
    c.start();
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == 1; }));
    // The worker goes away while the stream is open, and comes back on the same port.
    s1.server->Shutdown(std::chrono::system_clock::now());
    s1.server->Wait();
    ASSERT_TRUE(run_until(loop, [&] { return stats.failed.load() + stats.ended.load() >= 1; }));
    test_worker w2;
    w2.queue({make({"python", "call", "stop"}, {{"count", 2}})});
    auto s2 = serve(w2, port);
    ASSERT_NE(s2.port, 0);
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == 2; }));
    EXPECT_EQ(host.events()[1].dotted_name(), "snakepit.python.call.stop");
    EXPECT_GE(stats.reconnects.load(), 1u);
    EXPECT_EQ(stats.connects.load(), 2u);
    // The new stream opened with the toggle too.
    const auto ctl = w2.controls();
    ASSERT_FALSE(ctl.empty());
    EXPECT_TRUE(ctl[0].has_toggle() && ctl[0].toggle().enabled());
    c.stop();
    s2.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, StopWhileConnectedIsPrompt) {
    test_worker w;  // keeps the stream open until the client leaves
    w.queue({make({"python", "call", "start"}, {{"count", 1}})});
    auto s = serve(w);
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(s.port), host, stats);
    c.start();
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == 1; }));
    EXPECT_EQ(stats.connected.load(), 1);
    const auto t0 = std::chrono::steady_clock::now();
    c.stop();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, 1500ms);  // as below: well under stop()'s 2 s bound, with room for a busy CI
    EXPECT_EQ(stats.connected.load(), 0);
    // Nothing is started again after a stop.
    loop.run_once(0ms);
    EXPECT_EQ(stats.calls.load(), 1u);
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, StopWhileWaitingForAWorkerIsPrompt) {
    const int port = free_port();
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(port), host, stats);
    c.start();
    loop.run_once(0ms);
    const auto t0 = std::chrono::steady_clock::now();
    c.stop();
    // Well under the 2 s stop() would wait for a call that does not end, with room for a
    // loaded 2-core CI machine (the one failure seen here was gRPC's at-exit abort, not this
    // bound: tests/grpc/main.cpp).
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
}

TEST(GrpcClient, ReadsWaitForTheLoopAndNothingIsLost) {
    test_worker w;
    std::vector<pb::TelemetryEvent> evs;
    constexpr int n = 2000;
    for (int i = 0; i < n; ++i) evs.push_back(make({"python", "call", "start"}, {{"count", i}}));
    w.queue(std::move(evs));
    auto s = serve(w);
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    auto o = options(s.port);
    o.max_pending = 16;
    grpc_client c(o, host, stats);
    c.start();
    // The loop does not run: the client reads 16 events and waits for it.
    const auto until = std::chrono::steady_clock::now() + wait_limit;
    while (stats.read_pauses.load() == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
    ASSERT_EQ(stats.read_pauses.load(), 1u);
    EXPECT_EQ(host.delivered, 0u);
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == n; }));
    for (int i = 0; i < n; ++i)
        ASSERT_EQ(std::get<std::int64_t>(
                      *host.events()[static_cast<std::size_t>(i)].measurement("count")),
                  i);
    EXPECT_GE(stats.read_pauses.load(), 2u);
    c.stop();
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, HoldsItsReadsWhileTheIntakeHoldsItsOwn) {
    test_worker w;
    std::vector<pb::TelemetryEvent> evs;
    for (int i = 0; i < 100; ++i) evs.push_back(make({"python", "call", "start"}, {{"count", i}}));
    w.queue(std::move(evs));
    auto s = serve(w);
    event_loop loop;
    test_host host(loop);
    host.accepting = false;  // as the intake paused by --overflow block
    grpc_client_stats stats;
    auto o = options(s.port);
    o.max_pending = 16;
    grpc_client c(o, host, stats);
    c.start();
    // The loop runs, but nothing is handed over: the client stops reading at 16.
    ASSERT_TRUE(run_until(loop, [&] { return stats.read_pauses.load() == 1; }));
    for (int i = 0; i < 5; ++i) loop.run_once(5ms);
    EXPECT_EQ(host.delivered, 0u);
    EXPECT_EQ(stats.read_pauses.load(), 1u);
    host.accepting = true;
    ASSERT_TRUE(run_until(loop, [&] { return host.events().size() == 100; }));
    c.stop();
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClient, ControlsGoDownTheStream) {
    test_worker w;
    auto s = serve(w);
    event_loop loop;
    test_host host(loop);
    grpc_client_stats stats;
    grpc_client c(options(s.port), host, stats);
    c.start();
    ASSERT_TRUE(w.wait([](test_worker& t) { return t.calls_ == 1; }));
    ASSERT_TRUE(run_until(loop, [&] { return stats.controls_sent.load() == 1; }));
    control::effective_controls e;
    e.enabled = false;
    e.filt.deny = {"python.*"};
    c.set_controls(e);
    ASSERT_TRUE(run_until(loop, [&] { return w.controls().size() == 3; }));
    const auto ctl = w.controls();
    EXPECT_TRUE(ctl[0].has_toggle() && ctl[0].toggle().enabled());
    ASSERT_TRUE(ctl[1].has_filter());
    EXPECT_EQ(ctl[1].filter().deny(0), "python.*");
    EXPECT_TRUE(ctl[2].has_toggle() && !ctl[2].toggle().enabled());
    c.stop();
    s.server->Shutdown(std::chrono::system_clock::now());
}

TEST(GrpcClientAddress, Checks) {
    EXPECT_FALSE(check_grpc_address("127.0.0.1:50051", false));
    EXPECT_FALSE(check_grpc_address("[::1]:50051", false));
    EXPECT_FALSE(check_grpc_address("unix:/tmp/w.sock", false));
    EXPECT_FALSE(check_grpc_address("127.0.0.1:{port}", true));
    EXPECT_TRUE(check_grpc_address("127.0.0.1:{port}", false));
    EXPECT_TRUE(check_grpc_address("127.0.0.1", true));
    EXPECT_TRUE(check_grpc_address("127.0.0.1:0", true));
    EXPECT_TRUE(check_grpc_address("127.0.0.1:70000", true));
    EXPECT_TRUE(check_grpc_address("unix:", true));
}

}  // namespace
}  // namespace telecap::bridge
