#pragma once
// Internal: the message a starting child sends back to spawn() through its CLOEXEC error pipe,
// written by the forked child before exec and by telecap-guard. 12 bytes, below PIPE_BUF, so a
// write is atomic and the reader gets all of it or nothing.

#include <sys/types.h>

namespace telecap::spawn::detail {

struct spawn_report {
    int step = 0;   // a spawn_step; none (0) with pid > 0: telecap-guard started the worker
    int err = 0;    // errno of the failed step
    pid_t pid = 0;  // the worker's pid (telecap-guard only)
};
static_assert(sizeof(spawn_report) == 12);

}  // namespace telecap::spawn::detail
