#pragma once
// What to start: the input of spawn(). A plain value; spawn() validates it. Every member has a
// default initializer so designated initializers ({.argv = ...}) build warning-free.

#include <string>
#include <vector>

namespace telecap::spawn {

struct child_spec {
    // argv[0] is the program. Without a '/', it is searched for in the child's PATH (env_add
    // may override PATH), like execvp.
    std::vector<std::string> argv{};
    // "K=V" entries added to, or overriding, the inherited environment.
    std::vector<std::string> env_add{};
    // Working directory of the child; empty inherits the parent's.
    std::string cwd{};
    // Also pipe the child's stdout; otherwise it inherits the parent's fd 1.
    bool capture_stdout = false;
    // If >= 0, the child gets the write end of a dedicated pipe at this fd number and
    // TELECAP_TELEMETRY_FD=<n> in its environment. Must be in 3..2^20-1 (invalid_argument).
    int telemetry_fd = -1;
    // If >= 0, the child gets the read end of a control pipe at this fd number and
    // TELECAP_CONTROL_FD=<n> in its environment; the parent keeps the write end
    // (child_process::control_fd(), O_NONBLOCK | O_CLOEXEC). Must be in 3..2^20-1, not
    // telemetry_fd (invalid_argument).
    int control_fd = -1;
    // Written into the control pipe before the child starts, so the child finds it at its first
    // read; what does not fit (the pipe holds 64 KiB) is left to the caller:
    // child_process::control_written() says how much went in.
    std::string control_initial{};
    // Give the child /dev/null as stdin instead of the parent's fd 0. A worker in a process
    // group of its own that reads a terminal would be stopped by SIGTTIN for good.
    bool stdin_null = false;
    // Make the child the leader of a new process group (pgid == pid), so signals can be
    // forwarded to it and all of its descendants.
    bool new_process_group = true;
    // PR_SET_PDEATHSIG SIGKILL: the child dies when the *thread* that spawned it exits.
    // With a guard: the guard then SIGKILLs the worker and all its descendants.
    bool die_with_parent = true;
    // Absolute path of telecap-guard (find_guard_executable(), guard.hpp), or empty. When set,
    // spawn() starts the guard, which starts argv and makes sure that nothing the worker starts
    // outlives it or telecap, even when telecap is SIGKILLed and even for descendants that left
    // the worker's session or process group. child_process::pid() is then the guard's, and
    // child_process::worker_pid() the worker's; see guard.hpp for the rest of the contract.
    std::string guard{};
};

}  // namespace telecap::spawn
