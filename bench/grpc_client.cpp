// A gRPC client for bench/grpc_bench.py: dials telecap's `-o grpc`, prints "ready" once the
// stream is registered (its initial metadata came back), sends toggle(true) as Snakepit's host
// does, then reads every event until the stream ends and prints one JSON line: the events
// received and the latency from the event's timestamp_ns (the worker stamps it when it writes
// the line) to its arrival here, p50/p99/max in microseconds.
// Usage: bench_grpc_client ADDR

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bridge/snakepit_bridge.grpc.pb.h"

namespace pb = ::snakepit::bridge;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: bench_grpc_client ADDR\n");
        return 2;
    }
    auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
    auto stub = pb::BridgeService::NewStub(channel);
    grpc::ClientContext ctx;
    auto stream = stub->StreamTelemetry(&ctx);
    stream->WaitForInitialMetadata();
    std::printf("ready\n");
    std::fflush(stdout);
    pb::TelemetryControl on;
    on.mutable_toggle()->set_enabled(true);
    stream->Write(on);
    pb::TelemetryEvent ev;
    std::vector<std::int64_t> latency_ns;
    latency_ns.reserve(1 << 22);
    while (stream->Read(&ev)) {
        const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        latency_ns.push_back(now - ev.timestamp_ns());
    }
    const auto status = stream->Finish();
    std::sort(latency_ns.begin(), latency_ns.end());
    const auto at = [&](double q) {
        if (latency_ns.empty()) return 0.0;
        const auto i = static_cast<std::size_t>(q * static_cast<double>(latency_ns.size() - 1));
        return static_cast<double>(latency_ns[i]) / 1000.0;
    };
    std::printf(
        "{\"received\":%zu,\"status\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
        latency_ns.size(), static_cast<int>(status.error_code()), at(0.5), at(0.99), at(1.0));
    return 0;
}
