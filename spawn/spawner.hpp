#pragma once
// Starting one child process: fork + execve with the hygiene of STYLE.md "Spawn hygiene".

#include <system_error>

#include "telecap/core/result.hpp"
#include "telecap/spawn/child_process.hpp"
#include "telecap/spawn/child_spec.hpp"

namespace telecap::spawn {

// The step that failed, for messages ("chdir /x: No such file or directory").
enum class spawn_step {
    none,
    prepare,
    pipe,
    fork,
    setpgid,
    pdeathsig,
    redirect,
    close_fds,
    chdir,
    exec,
    guard  // telecap-guard could not be exec'd, or failed before it could start the worker
};
const char* to_string(spawn_step step) noexcept;

// Starts spec.argv[0] and returns once the child has exec'd, or has failed to.
//
// The child gets: stderr (and stdout if captured) on pipes, the telemetry pipe at telemetry_fd,
// no other fd beyond 0..2, default signal dispositions, an empty signal mask, the environment
// plus env_add, its own process group and PR_SET_PDEATHSIG as spec asks.
//
// Errors; failed_step, if given, names the step:
// - invalid_argument (prepare): empty argv, telemetry_fd out of range, an env_add entry
//   without a "K=" prefix.
// - errno of the parent's pipe2/fcntl (pipe) or fork (fork).
// - errno of a step in the child, sent back through a CLOEXEC error pipe (setpgid, pdeathsig,
//   redirect, close_fds, chdir, exec). From exec: ENOENT when not found in PATH, EACCES when
//   not executable, ENOEXEC for a script without "#!" (no /bin/sh fallback, unlike execvp).
//   The failed child has already been reaped; exit_code_for_spawn_error() gives 127/126.
// - With child_spec::guard, the same errors with the same steps for the worker (the guard
//   reports setpgid, pdeathsig, fork and exec failures from its own fork of the worker),
//   plus, with step guard: invalid_argument (prepare) for a relative guard path; the errno of
//   exec'ing the guard itself (ENOENT: not installed where find_guard_executable() said);
//   protocol_error if the guard died before reporting. spawn() returns once the worker has
//   exec'd (or failed to), as without a guard.
//
// Threads: call it from one long-lived thread (the loop thread). die_with_parent fires when
// the spawning *thread* exits, and a concurrent waitpid(-1) elsewhere could steal the reap of
// a child whose exec failed.
Result<child_process> spawn(const child_spec& spec, spawn_step* failed_step = nullptr) noexcept;

// The exit code a shell reports for a spawn error: 127 for "not found" (ENOENT, ENOTDIR),
// 126 for everything else ("found but cannot run": EACCES, EPERM, ENOEXEC, ...).
int exit_code_for_spawn_error(std::error_code ec) noexcept;

}  // namespace telecap::spawn
