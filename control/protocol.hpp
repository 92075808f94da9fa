#pragma once
// The control protocol (docs/control.md): one request line in, one reply line out. It parses
// the request (control/request.hpp) and acts on a target, the supervisor, through the narrow
// interface below, so the protocol is tested without processes and the supervisor knows
// nothing of requests and replies.

#include <optional>
#include <string>
#include <string_view>

#include "telecap/control/controls.hpp"
#include "telecap/control/status.hpp"

namespace telecap::control {

// What the control socket's commands act on. Each action returns the problem when refused
// (nothing changed then). Called on the loop thread.
class target {
public:
    virtual std::optional<std::string> set_controls(const scope& where, controls update) = 0;
    virtual std::optional<std::string> reset_controls(const scope& where) = 0;
    // *count: the workers acted on.
    virtual std::optional<std::string> stop_workers(const scope& where, int* count) = 0;
    virtual std::optional<std::string> start_workers(const scope& where, int* count) = 0;
    virtual std::optional<std::string> restart_workers(const scope& where, int* count) = 0;
    // The workers a scope reaches now (the scope was checked by the action before).
    virtual int workers_in(const scope& where) const = 0;
    virtual status_snapshot status() const = 0;
    // The live counters as {"name":value,...} pairs (metrics::to_json), or nullopt when
    // there is no registry.
    virtual std::optional<std::string> metrics_json() const = 0;
    // The reply of a reload, or nullopt when there is nothing to reload (no --config).
    virtual std::optional<std::string> reload_config() = 0;
    // Every output file, pass-through and rejects file reopened by path (after a rotation);
    // *count: the files.
    virtual std::optional<std::string> reopen_files(int* count) = 0;

protected:
    ~target() = default;
};

// One request line (without its newline) in, its reply out (without its newline).
std::string handle(std::string_view line, target& t);

}  // namespace telecap::control
