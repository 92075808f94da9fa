#pragma once
// Output `-o grpc[:ADDR]`: serves Snakepit's `/snakepit.bridge.BridgeService/StreamTelemetry`
// so that a Snakepit host (or any client of the project's bridge/snakepit_bridge.proto) gets
// the captured events exactly as a Python gRPC worker would send them (docs/grpc.md).
//
// - ADDR is `HOST:PORT` (port 0: a free one, see address()) or `unix:PATH`; default
//   127.0.0.1:50051. Plain text (no TLS), as Snakepit's worker.
// - Each call is one stream (bridge/stream_state.hpp): its selection by call metadata
//   (`telecap-worker`, `telecap-pool`), its controls (toggle, sampling with patterns, filter)
//   from its request stream, its bounded queue. handle() never blocks: an event a stream has
//   no room for is dropped for that stream alone and counted. Streams past `max_streams` are
//   refused (RESOURCE_EXHAUSTED), counted.
// - With `control=workers` a stream's controls go to the workers it selected instead
//   (worker_controls, applied on the loop thread), and are withdrawn when it ends; the
//   stream's own gates stay open (a second draw would square a sampling rate).
// - Only worker events go out (those with a wire name in the catalog); the pool's lifecycle
//   and telecap's own events are skipped and counted, unless `host_events` (then their full
//   dotted name is split into event_parts).
// - The call's deadline is gRPC's: when it passes the call is cancelled (the client sees
//   DEADLINE_EXCEEDED) and what was queued for it is counted as `closed`.
// - finish(): no new stream, each stream sends what it has queued and ends with OK, until the
//   deadline (at most drain_timeout); then the server shuts down, cancelling the rest.
// - Counters are readable from any thread (stream snapshots take each stream's lock briefly).
// No gRPC header here: the agent includes this without gRPC's compile cost.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/stream_info.hpp"
#include "bridge/worker_controls.hpp"
#include "capture/catalog.hpp"
#include "capture/handler.hpp"

namespace telecap::bridge {

inline constexpr const char* grpc_default_address = "127.0.0.1:50051";

struct grpc_output_options {
    std::string address = grpc_default_address;
    std::size_t queue = 1024;  // events per stream, as Snakepit's worker buffers
    std::size_t max_streams = 16;
    bool host_events = false;
    // `control=workers`: a stream's controls drive the workers it selected (their gates and
    // emitters, as `telecap ctl` does) instead of the stream's own delivery, and are withdrawn
    // when the stream ends. `workers` is where they go (required then; the agent's).
    bool control_workers = false;
    std::shared_ptr<worker_controls> workers;
    std::chrono::milliseconds drain_timeout{2000};
    // Back-pressure (`run --overflow block`): the output is congested while half a reading
    // stream's queue waits (the run loop stops reading the workers), and what the loop read
    // past a full queue is held behind it (up to twice `queue` waiting in all) instead of
    // dropped. A
    // stream whose writes have not progressed for `stall` (its client stopped reading), or
    // that has held events that long, holds no more: its events are dropped and counted as
    // without back-pressure.
    bool block = false;
    std::chrono::milliseconds stall{500};
};

// The argument of
// `grpc[:ADDR][?queue=N&max_streams=N&host_events=0|1&control=stream|workers&stall=MS]`;
// the problem as a phrase, or nothing.
std::optional<std::string> parse_grpc_output(std::string_view arg, grpc_output_options& out);

class grpc_output final : public handler {
public:
    // Listens and starts serving. Throws std::runtime_error ("cannot listen on ADDR ...", or
    // control=workers without `workers`).
    grpc_output(grpc_output_options opts, const catalog& cat);
    ~grpc_output() override;
    grpc_output(const grpc_output&) = delete;
    grpc_output& operator=(const grpc_output&) = delete;

    void handle(const event& ev) override;
    // Starts the writes of the idle streams that have events waiting (stream_state::kick).
    void flush() override;
    // With `block`: a stream's queue is half full and its client reads (stream_state::behind).
    bool congested() const override;
    // Without `block`: the same (what finds the queue full will be dropped).
    bool about_to_drop() const override;
    void finish(std::chrono::steady_clock::time_point deadline) override;
    // {"address":"...","control":"stream|workers","streams_accepted":N,"streams_active":N,
    //  "streams_refused":N,"events_sent":N,"events_dropped":{"queue_full":N,"closed":N},
    //  "events_removed":{"disabled":N,"sampled":N,"filtered":N},"host_events_skipped":N,
    //  "controls":{"applied":N,"rejected":N,"withdrawn":N},"streams":[{"id":1,...},...]}
    // Sums over streams, closed ones included; "streams" lists the open ones and the last
    // closed ones.
    std::string counters_json() const override;
    // Failures to serve (ctl status, telecap top): streams refused past max_streams, control
    // messages refused.
    std::uint64_t errors() const override;
    std::string last_error() const override;

    // Where it listens: "127.0.0.1:PORT" with the port taken, or "unix:PATH".
    const std::string& address() const noexcept;
    int port() const noexcept;

    struct totals {
        std::uint64_t streams_accepted = 0, streams_refused = 0, streams_active = 0;
        std::uint64_t sent = 0, dropped_queue_full = 0, dropped_closed = 0;
        std::uint64_t disabled = 0, sampled = 0, filtered = 0;
        std::uint64_t held = 0;  // back-pressure (`block`): waited for at a full queue
        std::uint64_t host_events_skipped = 0, controls_applied = 0, controls_rejected = 0;
        // control=workers: streams that ended holding controls on the workers, withdrawn.
        std::uint64_t controls_withdrawn = 0;
    };
    totals sum() const;
    // The open streams and the last closed ones (at most closed_kept), by id.
    std::vector<stream_info> streams() const;
    static constexpr std::size_t closed_kept = 64;

private:
    bool any_behind() const;  // a stream is behind (stream_state::behind)
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace telecap::bridge
