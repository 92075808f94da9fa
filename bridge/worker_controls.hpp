#pragma once
// Where the controls of a `-o grpc?control=workers` stream go: to the workers the stream
// selected, through the same table, gates and control pipes as `telecap ctl` (the agent
// implements it over the supervisor, on the loop thread). No gRPC header here.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "bridge/stream_info.hpp"
#include "telecap/control/controls.hpp"

namespace telecap::bridge {

class worker_controls {
public:
    // Called once, from any thread, with the problem ("no worker \"w9\"") or nothing.
    using reply = std::function<void(std::optional<std::string> problem)>;
    virtual ~worker_controls() = default;
    // From gRPC's threads, in the order the stream sent them: `update` (checked already) for
    // the workers `sel` names (a worker, a pool, or every worker), held by `stream`.
    virtual void apply(std::uint64_t stream, const selection& sel, control::controls update,
                       reply done) = 0;
    // The stream ended: its writes are withdrawn (control/held_controls.hpp).
    virtual void release(std::uint64_t stream) = 0;
};

}  // namespace telecap::bridge
