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
#include <string_view>
#include <vector>

#include "telecap/control/controls.hpp"
#include "telecap/loop/event_loop.hpp"

namespace telecap::control {

// What the relay acts on (the supervisor). Loop thread.
class held_target {
public:
    // `update` (checked or not) for `worker` (which must then be in `pool`, if given), else
    // `pool`, else every worker, held by `holder`: the problem, or nothing.
    virtual std::optional<std::string> hold_controls(std::uint64_t holder, std::string_view worker,
                                                     std::string_view pool, controls update) = 0;
    // The holder ended: its writes are withdrawn (held_controls.hpp).
    virtual void release_controls(std::uint64_t holder) = 0;

protected:
    ~held_target() = default;
};

class worker_control_relay {
public:
    using reply = std::function<void(std::optional<std::string> problem)>;

    // Any thread. `done` runs on the loop thread with the target's answer (or at once, on the
    // caller's thread, once detached).
    void apply(std::uint64_t holder, std::string worker, std::string pool, controls update,
               reply done);
    void release(std::uint64_t holder);

    // A number no other caller of this relay got: what keeps two outputs' holders apart.
    std::uint64_t next_owner();

    // From now on everything goes to `t` through `loop` (what waited first, in order).
    void attach(event_loop& loop, held_target& t);
    // Once the loop turns no more (before the loop and the target go).
    void detach();

private:
    void submit(std::function<void(held_target&)> fn, const reply& refused);

    std::mutex mu_;
    event_loop* loop_ = nullptr;  // guarded by mu_, as the rest
    held_target* target_ = nullptr;
    bool detached_ = false;
    std::vector<std::function<void(held_target&)>> waiting_;  // before attach()
    std::uint64_t owners_ = 0;
};

}  // namespace telecap::control
