// telecap-guard: runs one worker and makes sure that nothing it starts outlives it, or telecap.
// The contract is in spawn/guard.hpp; this file explains the why of each step.
//
// Single-threaded on purpose: fork() is then safe to follow with anything, and signals are
// taken synchronously with sigwaitinfo() (tini's model), never in handlers.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "spawn/descendants.hpp"
#include "spawn/exec_search.hpp"
#include "spawn/guard.hpp"
#include "spawn/spawn_report.hpp"
#include "spawn/spawner.hpp"

namespace {

using telecap::spawn::spawn_step;
using telecap::spawn::detail::spawn_report;

struct options {
    int report_fd = -1;  // where spawn() waits for the worker's pid or the failure
    pid_t parent = 0;    // telecap, whose death kills the tree; 0: not watched
    char** argv = nullptr;
};

// A fault in the guard itself must kill it, not wait in the mask for sigwaitinfo.
constexpr int synchronous_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT};

void write_all(int fd, const void* data, std::size_t size) noexcept {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // telecap is gone: nobody to tell
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

void say(std::string_view text) noexcept { write_all(STDERR_FILENO, text.data(), text.size()); }

bool parse_int(const char* text, long lo, long hi, long& out) noexcept {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
    out = v;
    return true;
}

bool parse(int argc, char** argv, options& o) noexcept {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        long v = 0;
        if (arg == "--") {
            if (i + 1 >= argc) return false;
            o.argv = argv + i + 1;
            return true;
        }
        if (i + 1 >= argc) return false;
        if (arg == "--report-fd" && parse_int(argv[i + 1], 0, 1 << 20, v)) {
            o.report_fd = static_cast<int>(v);
        } else if (arg == "--parent" && parse_int(argv[i + 1], 1, 1L << 30, v)) {
            o.parent = static_cast<pid_t>(v);
        } else {
            return false;
        }
        ++i;
    }
    return false;
}

// Tells spawn() that the worker could not be started, reaps what there is and exits with the
// status a shell would give (127/126). Run by hand, says it on stderr instead.
[[noreturn]] void fail(const options& o, spawn_step step, int err) noexcept {
    if (o.report_fd >= 0) {
        const spawn_report report{static_cast<int>(step), err, 0};
        write_all(o.report_fd, &report, sizeof report);
    } else {
        say(std::string("telecap-guard: ") + telecap::spawn::to_string(step) + " " +
            (o.argv != nullptr ? o.argv[0] : "") + ": " + std::strerror(err) + "\n");
    }
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
    ::_exit(telecap::spawn::exit_code_for_spawn_error(telecap::errno_code(err)));
}

// ---- The worker's side of fork: async-signal-safe calls only, by habit (we are
// single-threaded, so allocation would be safe, but nothing here needs it). ----

[[noreturn]] void child_fail(int error_w, spawn_step step, int err) noexcept {
    const spawn_report report{static_cast<int>(step), err, 0};
    write_all(error_w, &report, sizeof report);
    ::_exit(127);
}

[[noreturn]] void run_worker(const options& o, pid_t guard, int error_w,
                             const std::vector<const char*>& candidates) noexcept {
    // The guard only blocked signals; it installed no handler. Reset anyway: a disposition of
    // SIG_IGN from telecap's side would otherwise survive into the worker (spawn() reset the
    // guard's, but do not rely on callers).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);

    // Its own group, so that forwarded signals reach the worker's children too, as they would
    // without a guard.
    if (::setpgid(0, 0) != 0) child_fail(error_w, spawn_step::setpgid, errno);
    // If the guard is SIGKILLed (OOM killer, telecap's forced stop), the worker goes with it;
    // what the worker started is then handed to telecap, the next subreaper up.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        child_fail(error_w, spawn_step::pdeathsig, errno);
    }
    if (::getppid() != guard) ::kill(::getpid(), SIGKILL);

    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int err = telecap::spawn::exec_candidates_errno(candidates.data(), candidates.size(),
                                                          o.argv, environ);
    child_fail(error_w, spawn_step::exec, err);
}

// Exits so that telecap's waitpid() sees what it would have seen from the worker.
[[noreturn]] void exit_like(int status) noexcept {
    if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
    const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    // No core of the guard: the worker wrote its own, if it was due one. Not dumpable skips
    // core_pattern pipes (systemd-coredump, apport) too, which RLIMIT_CORE 0 alone does not.
    ::prctl(PR_SET_DUMPABLE, 0);
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    // Every other signal is ignored, so a pending TERM cannot win the race against `sig`.
    struct sigaction sa {};
    ::sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; ++s) {
        sa.sa_handler = s == sig ? SIG_DFL : SIG_IGN;
        ::sigaction(s, &sa, nullptr);
    }
    sigset_t only;
    ::sigemptyset(&only);
    ::sigaddset(&only, sig);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::kill(::getpid(), sig);
    ::_exit(128 + sig);  // not reached for a signal whose default action terminates
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (!parse(argc, argv, o)) {
        say("usage: telecap-guard [--report-fd N] [--parent PID] -- PROGRAM [ARG...]\n");
        return 2;
    }
    // The worker must not hold the report pipe: spawn() reads it until we close it.
    if (o.report_fd >= 0 && ::fcntl(o.report_fd, F_SETFD, FD_CLOEXEC) != 0) {
        o.report_fd = -1;
        fail(o, spawn_step::guard, errno);
    }

    // Everything but faults is taken with sigwaitinfo() from here on. A signal that arrived
    // before this line had its default action on a guard that had started nothing yet.
    sigset_t waited;
    ::sigfillset(&waited);
    for (int sig : synchronous_signals) ::sigdelset(&waited, sig);
    ::sigprocmask(SIG_SETMASK, &waited, nullptr);
    // A blocked SIGCHLD stays pending for sigwaitinfo() unless it is SIG_IGN, which would also
    // make the kernel reap the worker behind our back (a shell may hand SIG_IGN down).
    ::signal(SIGCHLD, SIG_DFL);

    const int kill_signal = telecap::spawn::guard_kill_signal();
    if (o.parent > 0) {
        // spawn() set SIGKILL as our parent-death signal, which would kill the guard alone and
        // orphan the tree. Swap it for one we can catch, then make sure telecap did not die
        // before the swap (its death signal is sent once, at the time of death).
        if (::prctl(PR_SET_PDEATHSIG, kill_signal) != 0) fail(o, spawn_step::pdeathsig, errno);
        if (::getppid() != o.parent) ::_exit(128 + SIGKILL);  // nothing started yet
    }
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) fail(o, spawn_step::guard, errno);

    std::vector<std::string> candidates;
    std::vector<const char*> candidate_ptrs;
    try {
        candidates = telecap::spawn::exec_candidates(o.argv[0], std::getenv("PATH"));
        for (const std::string& c : candidates) candidate_ptrs.push_back(c.c_str());
    } catch (const std::bad_alloc&) {
        fail(o, spawn_step::guard, ENOMEM);
    }

    int error_pipe[2];
    if (::pipe2(error_pipe, O_CLOEXEC) != 0) fail(o, spawn_step::pipe, errno);
    const pid_t guard = ::getpid();
    const pid_t worker = ::fork();
    if (worker == 0) run_worker(o, guard, error_pipe[1], candidate_ptrs);
    if (worker < 0) fail(o, spawn_step::fork, errno);
    ::setpgid(worker, worker);  // from both sides; EACCES once it has exec'd, which is fine
    ::close(error_pipe[1]);

    spawn_report failure{};
    ssize_t n;
    do {
        n = ::read(error_pipe[0], &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    ::close(error_pipe[0]);
    if (n != 0) {
        if (n != static_cast<ssize_t>(sizeof failure)) {  // cannot happen with a 12-byte write
            ::kill(worker, SIGKILL);
            fail(o, spawn_step::guard, n < 0 ? errno : EIO);
        }
        fail(o, static_cast<spawn_step>(failure.step), failure.err);
    }
    if (o.report_fd >= 0) {
        const spawn_report started{static_cast<int>(spawn_step::none), 0, worker};
        write_all(o.report_fd, &started, sizeof started);
        ::close(o.report_fd);
    }

    int worker_status = 0;
    bool worker_done = false;
    while (!worker_done) {
        siginfo_t info{};
        const int sig = ::sigwaitinfo(&waited, &info);
        if (sig < 0) continue;  // EINTR
        // Either telecap died (its death signal is kill_signal too, and it may have merged
        // with another signal: hence the check on every wake-up) or it asks for a forced stop.
        if (sig == kill_signal || (o.parent > 0 && ::getppid() != o.parent)) {
            worker_status = SIGKILL;  // the wait status of a death by SIGKILL
            break;
        }
        if (sig == SIGCHLD) {
            // The worker, or orphans handed to us; those are only reaped.
            while (true) {
                int status = 0;
                const pid_t pid = ::waitpid(-1, &status, WNOHANG);
                if (pid < 0 && errno == EINTR) continue;
                if (pid <= 0) break;
                if (pid == worker) {
                    worker_status = status;
                    worker_done = true;
                }
            }
            continue;
        }
        // Our own SIGPIPE (telecap closed the report pipe early) is not telecap's to forward.
        if (info.si_code == SI_KERNEL || (info.si_code == SI_USER && info.si_pid == guard)) {
            continue;
        }
        // The worker is not reaped yet (worker_done is false), so its group id cannot have
        // been reused: the group is ours to signal.
        ::kill(-worker, sig);
    }

    const auto sweep = telecap::spawn::kill_all_descendants();
    if (sweep.left > 0) {
        say("telecap-guard: " + std::to_string(sweep.left) + " process(es) left by worker " +
            std::to_string(worker) + " could not be killed\n");
    }
    exit_like(worker_status);
}
