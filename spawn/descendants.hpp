#pragma once
// Killing everything below this process, for a child subreaper (become_subreaper(), reaper.hpp).
//
// Only processes that are this process's own children are ever signalled: by pidfd where the
// kernel has pidfd_open (Linux 5.3+), by pid otherwise, and only after checking that their
// parent is still us. Never by process group: a group id outlives its leader's reaping as long
// as a member lives, and once the group is empty the number can name an unrelated group.
//
// Why repeating "kill my children" reaches every descendant: when a process dies, its children
// are handed to the nearest living subreaper among its ancestors. With this process a subreaper
// (and none below it), every orphan of the sweep comes to us, whatever setsid() or setpgid() it
// did, and the next round kills it. Limits (docs/run.md "No leftovers"): a descendant we may not
// signal (a setuid program, when we are not root) survives; so does one that another subreaper
// below us keeps until that subreaper dies; one in uninterruptible sleep dies only when it wakes.

#include <sys/types.h>

#include <chrono>
#include <system_error>
#include <vector>

#include "telecap/core/result.hpp"

namespace telecap::spawn {

// The pids of this process's children, from every thread, zombies included, in no particular
// order. Reads /proc/self/task/*/children (CONFIG_PROC_CHILDREN); without it, scans /proc/*/stat
// for our pid as the parent. Errors: the errno of opening /proc; not_enough_memory.
Result<std::vector<pid_t>> list_children() noexcept;

// Sends `sig` to `pid` only if it is a child of this process.
// Errors: no_such_process if it is gone or is not our child (nothing was sent); the errno of
// pidfd_send_signal or kill otherwise (operation_not_permitted for a child that changed uid).
//
// Without pidfd_open, the check and kill() are two steps: a pid is safe from reuse until its
// parent reaps it, so call this from the thread that reaps (the check then cannot race).
std::error_code signal_child(pid_t pid, int sig) noexcept;

struct sweep_result {
    int reaped = 0;  // children reaped: killed ones and ones that had already exited
    int left = 0;    // children still there when the sweep stopped (see kill_all_descendants)
};

// SIGKILLs every child of this process and reaps it, then does the same to the orphans that
// this hands over to us, until waitpid() reports no child (ECHILD). Returns early, with `left`
// set, when every remaining child refuses the signal (EPERM) or when `timeout` has passed with
// children still alive (uninterruptible sleep): those are left as they are, unreaped.
//
// Call it as a subreaper, or grandchildren escape to init. It reaps with waitpid(-1): every
// child's exit status is consumed, so call it once the statuses no longer matter (at exit, or
// in telecap-guard after the worker's own status is in hand) and with no other thread reaping.
// Waiting polls waitpid(WNOHANG) with short sleeps (at most 10 ms).
sweep_result kill_all_descendants(
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) noexcept;

}  // namespace telecap::spawn
