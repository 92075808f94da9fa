// A C++ gRPC test worker for the client benchmark (bench/grpc_client_bench.py): serves
// /snakepit.bridge.BridgeService/StreamTelemetry on 127.0.0.1:PORT, and to the first call that
// opens with toggle(enabled=true) sends RATE events a second for SECONDS (one batch every
// 10 ms, shaped like Snakepit's python.call.stop, each stamped with the wall clock), ends the
// stream with OK and exits. The sync API's Write waits for HTTP/2 flow control, so a reader
// that falls behind slows the worker down instead of losing events: the achieved rate says
// whether telecap kept up. Prints `sent N in S s` on stderr at the end.
//
// Usage: bench_grpc_worker PORT RATE SECONDS

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "bridge/snakepit_bridge.grpc.pb.h"

namespace pb = ::snakepit::bridge;

namespace {

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class worker final : public pb::BridgeService::Service {
public:
    worker(long rate, double seconds) : rate_(rate), seconds_(seconds) {}

    grpc::Status StreamTelemetry(
        grpc::ServerContext*,
        grpc::ServerReaderWriter<pb::TelemetryEvent, pb::TelemetryControl>* stream) override {
        pb::TelemetryControl first;
        if (!stream->Read(&first) || !first.has_toggle() || !first.toggle().enabled())
            return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "toggle(true) first");
        if (started_.exchange(true)) return grpc::Status::OK;  // one stream: the benchmark's
        pb::TelemetryEvent ev;
        ev.add_event_parts("python");
        ev.add_event_parts("call");
        ev.add_event_parts("stop");
        (*ev.mutable_measurements())["duration"].set_int_value(1234567);
        (*ev.mutable_measurements())["count"].set_int_value(1);
        (*ev.mutable_metadata())["tool"] = "search";
        (*ev.mutable_metadata())["session_id"] = "s1";
        const long total = static_cast<long>(static_cast<double>(rate_) * seconds_);
        const long batch = rate_ / 100 > 0 ? rate_ / 100 : 1;
        const auto t0 = std::chrono::steady_clock::now();
        long sent = 0;
        bool ok = true;
        while (ok && sent < total) {
            const long n = std::min(batch, total - sent);
            for (long i = 0; i < n && ok; ++i) {
                ev.set_timestamp_ns(wall_ns());
                // No buffer hint: the sync API's Write would wait for a flush that only a
                // later write without it makes, and the last of a batch would wait for the next.
                ok = stream->Write(ev);
                if (ok) ++sent;
            }
            // Pacing the load (not a handshake): the next batch at its time.
            const auto due = t0 + std::chrono::duration<double>(static_cast<double>(sent) /
                                                                static_cast<double>(rate_));
            std::this_thread::sleep_until(due);
        }
        const double took =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "sent %ld in %.3f s\n", sent, took);
        done_.set_value();
        return grpc::Status::OK;
    }

    std::promise<void> done_;

private:
    long rate_;
    double seconds_;
    std::atomic<bool> started_{false};
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: bench_grpc_worker PORT RATE SECONDS\n");
        return 2;
    }
    worker w(std::atol(argv[2]), std::atof(argv[3]));
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort(std::string("127.0.0.1:") + argv[1], grpc::InsecureServerCredentials(),
                       &port);
    b.RegisterService(&w);
    auto server = b.BuildAndStart();
    if (!server || port == 0) {
        std::fprintf(stderr, "bench_grpc_worker: cannot listen on port %s\n", argv[1]);
        return 3;
    }
    w.done_.get_future().wait();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return 0;
}
