#pragma once
// telecap dialling a gRPC worker's `/snakepit.bridge.BridgeService/StreamTelemetry` the way
// Snakepit's host does (docs/grpc.md, "Client"): `toggle{enabled:true}` first (then the
// worker's current controls, if any differ from the defaults), then each TelemetryEvent
// received is decoded into the raw_event the stderr parser would have made of the same emit
// (bridge/event_proto.hpp, to_raw) and handed to the host on the loop thread, where the
// capture normalizer, the gates and the batches treat it as a telemetry line.
//
// - No deadline on the call; the call waits for the worker to listen (wait_for_ready), and
//   when it ends or fails it is started again after a backoff (backoff_min doubling up to
//   backoff_max, back to backoff_min once a call got an answer). Counted in grpc_client_stats.
// - Threads: gRPC's callback threads read the events into a vector under a mutex; the loop is
//   woken once when it goes non-empty (host.post) and takes the whole vector. At max_pending
//   events not yet taken the client stops reading until the loop has taken them: the worker
//   then waits for HTTP/2 flow control (and drops by its own policy when its buffer fills).
//   Nothing is lost between the socket and the loop.
// - stop() cancels the call and returns once gRPC is done with it (bounded: at most 2 s),
//   after handing over the events received before.
// No gRPC header here: the agent includes this without gRPC's compile cost.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "capture/parser.hpp"
#include "capture/stats.hpp"
#include "control/controls.hpp"

namespace telecap::bridge {

struct grpc_client_options {
    std::string address;  // HOST:PORT or unix:PATH
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    std::size_t max_pending = 4096;  // events read and not yet taken by the loop
};

// An address telecap may dial: HOST:PORT ([IPV6]:PORT too) or unix:PATH, where PORT may be
// `{port}` when `allow_port_template` (the pool's port, picked per worker). The problem as a
// phrase, or nothing.
std::optional<std::string> check_grpc_address(std::string_view address, bool allow_port_template);

// What the client needs from its owner.
class grpc_client_host {
public:
    virtual ~grpc_client_host() = default;
    // Any thread: runs fn on the loop thread.
    virtual void post(std::function<void()> fn) = 0;
    // Loop thread: runs fn on the loop thread after d; an id for cancel().
    virtual std::uint64_t after(std::chrono::milliseconds d, std::function<void()> fn) = 0;
    virtual void cancel(std::uint64_t timer) = 0;
    // Loop thread: whether events may be handed over now. While not, the client holds its
    // reads back (asking again every 2 ms): the intake's back-pressure (--overflow block).
    virtual bool ready() { return true; }
    // Loop thread: one event from the wire. `text` renders it (for a rejects record).
    virtual void on_event(const raw_event& raw, const std::function<std::string()>& text) = 0;
};

class grpc_client {
public:
    // The host and stats must outlive the client. Nothing happens before start().
    grpc_client(grpc_client_options o, grpc_client_host& host, grpc_client_stats& stats);
    ~grpc_client();  // stop()
    grpc_client(const grpc_client&) = delete;
    grpc_client& operator=(const grpc_client&) = delete;

    // Loop thread: dials, and keeps dialling until stop().
    void start();
    // Loop thread: cancels the call, hands over what was received, and returns once gRPC has
    // let go of it (at most ~2 s). No call of the host after it returns.
    void stop();
    // Loop thread: the worker is gone. A stream it answered ends by itself when its socket
    // closes: what is still on the way is taken (for at most `patience`), then stop().
    void finish(std::chrono::milliseconds patience);
    // Loop thread: the worker's controls (ctl toggle, sample, filter), sent down the stream now
    // when it is open, and after toggle{true} on every later call. Rate limits are telecap's
    // own: they have no TelemetryControl and stay in telecap's gate.
    void set_controls(const control::effective_controls& c);

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace telecap::bridge
