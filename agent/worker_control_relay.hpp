#pragma once
// Controls that arrive on other threads for the workers (a `-o grpc?control=workers` stream's,
// docs/grpc.md), carried to the supervisor on the loop thread, as `telecap ctl`'s requests
// are. The outputs are made before the loop and the supervisor exist, and live on after the
// run: what arrives before attach() waits for it, in order; what arrives after detach() is
// answered "telecap is stopping" (a release is then moot: the workers are gone).

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "loop/event_loop.hpp"
#include "supervise/supervisor.hpp"

namespace telecap::agent {

class worker_control_relay {
public:
    using reply = std::function<void(std::optional<std::string> problem)>;

    // Any thread. `update` for the workers of `worker` (a worker id, with `pool` its pool or
    // empty), else of `pool`, else every worker, held by `holder` until release(holder).
    // `done` runs on the loop thread with the supervisor's answer (or at once, any thread,
    // once detached).
    void apply(std::uint64_t holder, std::string worker, std::string pool, control::controls update,
               reply done);
    void release(std::uint64_t holder);

    // A number no other caller of this relay got: what keeps two outputs' holders apart.
    std::uint64_t next_owner();

    // Loop thread, before the run: from now on everything goes to `sup` through `loop`.
    void attach(event_loop& loop, supervisor& sup);
    // Once the run is over (before the loop and the supervisor go).
    void detach();

private:
    void submit(std::function<void(supervisor&)> fn, reply refused);

    std::mutex mu_;
    event_loop* loop_ = nullptr;  // guarded by mu_
    supervisor* sup_ = nullptr;
    bool detached_ = false;
    std::vector<std::function<void(supervisor&)>> waiting_;  // before attach()
    std::uint64_t owners_ = 0;
};

}  // namespace telecap::agent
