#pragma once
// telecap-guard: one small process per worker so that nothing the worker starts outlives it,
// or telecap (docs/run.md "No leftovers").
//
// spawn() runs it instead of the worker when child_spec::guard names it (see child_spec.hpp).
// Everything spawn() sets up (pipes, telemetry fd, environment, cwd, signal state, process
// group, PR_SET_PDEATHSIG) applies to the guard, which passes its fds 0..2 and the telemetry fd
// and its environment on to the worker unchanged. The guard, single-threaded:
//  - becomes a child subreaper, so every orphan below the worker is handed to it;
//  - forks and execs the worker with spawn()'s hygiene: default signal dispositions, empty
//    mask, no other fd, PR_SET_PDEATHSIG SIGKILL (tied to the guard), PATH searched like
//    spawn() does. The worker leads its own process group (pgid == worker pid);
//  - reports the worker's pid to spawn(), or the failed step and errno (setpgid, pdeathsig,
//    fork, exec), so spawn() returns exactly the errors it would return without the guard;
//  - forwards every signal it receives to the worker's process group, except SIGCHLD and
//    guard_kill_signal(); SIGKILL and SIGSTOP cannot be caught, so they hit the guard itself;
//  - when the worker has exited: SIGKILLs every remaining descendant, whatever its session or
//    group (kill_all_descendants(), descendants.hpp), then exits with the worker's status:
//    exit code N as exit N, death by signal S by re-raising S (with core dumps off: the worker
//    dumped its own core if any, and WCOREDUMP is never set on the guard's status);
//  - on guard_kill_signal(), or when telecap dies (the parent-death signal, with
//    child_spec::die_with_parent): SIGKILLs the worker and every descendant and exits as killed
//    by SIGKILL. This also holds when telecap is SIGKILLed.
//
// Usage (spawn() builds it): telecap-guard [--report-fd N] [--parent PID] -- PROGRAM [ARG...]
// Run by hand, without --report-fd, a failure to start PROGRAM is printed on stderr and the
// guard exits 127 (not found) or 126, like a shell.

#include <string>

#include "telecap/core/result.hpp"

namespace telecap::spawn {

inline constexpr const char* guard_executable_name = "telecap-guard";
// Environment variable that overrides where find_guard_executable() looks.
inline constexpr const char* guard_path_env = "TELECAP_GUARD";

// Send it to a guard (child_process::pid()) to SIGKILL its worker and every descendant now:
// the forced stop of a guarded worker. SIGRTMAX; the guard also uses it as its parent-death
// signal, and does not forward it to the worker.
int guard_kill_signal() noexcept;

// The absolute path of telecap-guard, tried in this order:
//  1. $TELECAP_GUARD, when set and not empty (it must name an executable file; a relative path
//     is made absolute against the current directory);
//  2. telecap-guard in the directory of the running executable (/proc/self/exe): the build
//     tree, or an install with everything in bin/;
//  3. <that directory>/<TELECAP_GUARD_RELDIR>/telecap-guard, the install layout: the guard in
//     ${CMAKE_INSTALL_LIBEXECDIR}/telecap, found relative to ${CMAKE_INSTALL_BINDIR}
//     ("../libexec/telecap" by default), so a relocated install still works.
// Errors: no_such_file_or_directory if none is an executable file (permission_denied when
// $TELECAP_GUARD names a file that is not executable); the errno of reading /proc/self/exe.
// Call it once at startup: the result goes into every child_spec::guard.
Result<std::string> find_guard_executable() noexcept;

// The same search for another of telecap's executables: `$<path_env>` when set and not empty
// (path_env may be null: no override), then `name` beside the running executable, then in
// <its directory>/<TELECAP_GUARD_RELDIR>.
Result<std::string> find_telecap_executable(const char* name, const char* path_env) noexcept;

}  // namespace telecap::spawn
