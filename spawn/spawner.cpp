#include "spawn/spawner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spawn/exec_search.hpp"
#include "spawn/spawn_report.hpp"

namespace telecap::spawn {
namespace {

using detail::spawn_report;

// Everything the child needs, built before fork. Between fork and exec the child may only make
// async-signal-safe calls: another thread of the parent may have held the malloc lock at fork
// time, so the child must not allocate. Hence no execvp (it may build paths) and no setenv.
struct exec_plan {
    std::vector<std::string> env;
    std::vector<char*> envp;
    std::vector<std::string> guard_args;  // telecap-guard's options, before "--" and spec.argv
    std::vector<char*> argv;
    std::vector<std::string> candidates;  // execve targets, in PATH order
    std::vector<const char*> candidate_ptrs;
};

// The fds, numbers and flags the child uses; plain values, readable after fork.
struct child_args {
    const exec_plan* plan;
    const char* cwd;  // nullptr: inherit
    pid_t parent_pid;
    int error_w;
    int stderr_w;
    int stdout_w;     // -1: inherit fd 1
    int telemetry_w;  // -1: none
    int telemetry_fd;
    int control_r;  // -1: none
    int control_fd;
    bool new_process_group;
    bool die_with_parent;
    bool guarded;  // exec telecap-guard, which keeps error_w open to report the worker's start
    bool stdin_null;
};

bool has_key(std::string_view entry, std::string_view key) {
    return entry.size() > key.size() && entry[key.size()] == '=' && entry.starts_with(key);
}

void set_env(std::vector<std::string>& env, std::string entry) {
    const std::string_view key = std::string_view(entry).substr(0, entry.find('='));
    auto it =
        std::find_if(env.begin(), env.end(), [&](const std::string& e) { return has_key(e, key); });
    if (it != env.end()) {
        *it = std::move(entry);
    } else {
        env.push_back(std::move(entry));
    }
}

// report_fd and parent_pid are the guard's --report-fd and --parent. Throws std::bad_alloc only.
void make_plan(const child_spec& spec, int report_fd, pid_t parent_pid, exec_plan& plan) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) plan.env.emplace_back(*e);
    for (const std::string& entry : spec.env_add) set_env(plan.env, entry);
    if (spec.telemetry_fd >= 0) {
        set_env(plan.env, "TELECAP_TELEMETRY_FD=" + std::to_string(spec.telemetry_fd));
    }
    if (spec.control_fd >= 0) {
        set_env(plan.env, "TELECAP_CONTROL_FD=" + std::to_string(spec.control_fd));
    }
    for (std::string& e : plan.env) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);

    if (!spec.guard.empty()) {
        // The guard searches the worker's PATH itself, in the environment built here.
        plan.guard_args = {spec.guard, "--report-fd", std::to_string(report_fd)};
        if (spec.die_with_parent) {
            plan.guard_args.insert(plan.guard_args.end(), {"--parent", std::to_string(parent_pid)});
        }
        plan.guard_args.emplace_back("--");
        for (std::string& arg : plan.guard_args) plan.argv.push_back(arg.data());
        plan.candidates.push_back(spec.guard);
    } else {
        // execvp's search, done here with the child's PATH.
        auto entry = std::find_if(plan.env.begin(), plan.env.end(),
                                  [](const std::string& e) { return has_key(e, "PATH"); });
        plan.candidates = exec_candidates(spec.argv.front(),
                                          entry != plan.env.end() ? entry->c_str() + 5 : nullptr);
    }
    for (const std::string& arg : spec.argv) plan.argv.push_back(const_cast<char*>(arg.c_str()));
    plan.argv.push_back(nullptr);
    for (const std::string& c : plan.candidates) plan.candidate_ptrs.push_back(c.c_str());
}

std::error_code validate(const child_spec& spec) noexcept {
    if (spec.argv.empty()) return std::make_error_code(std::errc::invalid_argument);
    // The guard is exec'd after chdir(cwd): a relative path would name another file.
    if (!spec.guard.empty() && spec.guard.front() != '/') {
        return std::make_error_code(std::errc::invalid_argument);
    }
    // The upper bound is the kernel's own limit (fs.nr_open) and keeps telemetry_fd + 1 defined.
    if (spec.telemetry_fd >= 0 && (spec.telemetry_fd <= 2 || spec.telemetry_fd >= (1 << 20))) {
        return std::make_error_code(std::errc::invalid_argument);
    }
    if (spec.control_fd >= 0 && (spec.control_fd <= 2 || spec.control_fd >= (1 << 20) ||
                                 spec.control_fd == spec.telemetry_fd)) {
        return std::make_error_code(std::errc::invalid_argument);
    }
    for (const std::string& e : spec.env_add) {
        const size_t eq = e.find('=');
        if (eq == 0 || eq == std::string::npos) {
            return std::make_error_code(std::errc::invalid_argument);
        }
    }
    return {};
}

// pipe2(O_CLOEXEC), with the child's (write) end moved to an fd >= min_fd. The child dup2()s
// write ends onto 1, 2 and telemetry_fd; if a write end (or the error pipe) already sat on one
// of those numbers, which happens when the parent runs with 0..2 closed, an earlier dup2 would
// clobber it. Keeping every fd the child needs above all targets rules that out.
std::error_code make_pipe(unique_fd& read_end, unique_fd& write_end, int min_fd) noexcept {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno_code(errno);
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
    if (write_end.get() < min_fd) {
        const int moved = ::fcntl(write_end.get(), F_DUPFD_CLOEXEC, min_fd);
        if (moved < 0) return errno_code(errno);
        write_end.reset(moved);
    }
    return {};
}

// The pipes telecap reads grow from 64 KiB to 1 MiB (pipe-max-size, the default maximum): a
// worker that writes faster than telecap reads for a moment goes on instead of sleeping on a
// full pipe (and being woken again), and each read(2) takes more lines. The kernel fills the
// pages only as data waits, so an idle pipe costs nothing more. Refused (an unprivileged user
// past pipe-user-pages-soft): the pipe keeps its size.
void widen_pipe(int fd) noexcept { ::fcntl(fd, F_SETPIPE_SZ, 1 << 20); }

std::error_code set_nonblocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return errno_code(errno);
    return {};
}

// ---- Child side: async-signal-safe calls only, from fork to exec. ----

[[noreturn]] void child_fail(int error_w, spawn_step step, int err) noexcept {
    const spawn_report failure{static_cast<int>(step), err, 0};
    ssize_t n;
    do {
        n = ::write(error_w, &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    ::_exit(127);
}

// Marks fds lo..hi close-on-exec. Marking instead of closing keeps the error pipe usable until
// exec succeeds. This is what stops fds that other code in the parent opened without O_CLOEXEC
// (or inherited) from leaking into the child.
bool cloexec_range(unsigned lo, unsigned hi) noexcept {
    if (lo > hi) return true;
    if (::close_range(lo, hi, CLOSE_RANGE_CLOEXEC) == 0) return true;
    // Kernels before 5.11 (ENOSYS, or EINVAL for the flag): one fcntl per possible fd.
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
    const rlim_t end = std::min<rlim_t>(limit.rlim_cur, rlim_t{hi} + 1);
    for (rlim_t fd = lo; fd < end; ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return true;
}

[[noreturn]] void run_child(const child_args& a) noexcept {
    // All signals are blocked (see spawn()). Reset every disposition before unblocking: a parent
    // handler running here would act on the child's copy of the parent's state, and SIG_IGN
    // (SIGPIPE, commonly) would survive exec. sigaction fails harmlessly for SIGKILL, SIGSTOP
    // and glibc's internal signals.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);

    if (a.new_process_group && ::setpgid(0, 0) != 0) {
        child_fail(a.error_w, spawn_step::setpgid, errno);
    }

    if (a.die_with_parent) {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
            child_fail(a.error_w, spawn_step::pdeathsig, errno);
        }
        // The parent may have died between fork and prctl: then no death signal will come, and
        // we have been reparented. Die as the death signal would have made us die.
        if (::getppid() != a.parent_pid) ::kill(::getpid(), SIGKILL);
    }

    // dup2 clears FD_CLOEXEC on the target; the sources are above every target (make_pipe) and
    // stay CLOEXEC, so they vanish at exec.
    if (::dup2(a.stderr_w, STDERR_FILENO) < 0) child_fail(a.error_w, spawn_step::redirect, errno);
    if (a.stdout_w >= 0 && ::dup2(a.stdout_w, STDOUT_FILENO) < 0) {
        child_fail(a.error_w, spawn_step::redirect, errno);
    }
    if (a.telemetry_w >= 0 && ::dup2(a.telemetry_w, a.telemetry_fd) < 0) {
        child_fail(a.error_w, spawn_step::redirect, errno);
    }
    if (a.control_r >= 0 && ::dup2(a.control_r, a.control_fd) < 0) {
        child_fail(a.error_w, spawn_step::redirect, errno);
    }
    if (a.stdin_null) {
        // Every target is taken by now, so the new fd is none of them.
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || ::dup2(null, STDIN_FILENO) < 0)
            child_fail(a.error_w, spawn_step::redirect, errno);
        ::close(null);
    }

    // Everything from 3 up is marked CLOEXEC but the telemetry and control fds.
    int keep[2] = {a.telemetry_fd, a.control_fd};
    if (keep[0] > keep[1]) std::swap(keep[0], keep[1]);
    unsigned lo = 3;
    bool fds_ok = true;
    for (const int k : keep) {
        if (k < 0) continue;
        fds_ok = fds_ok && cloexec_range(lo, static_cast<unsigned>(k) - 1);
        lo = static_cast<unsigned>(k) + 1;
    }
    fds_ok = fds_ok && cloexec_range(lo, ~0U);
    if (!fds_ok) child_fail(a.error_w, spawn_step::close_fds, errno);
    // The guard inherits the error pipe: it reports the worker's pid, or why it did not start.
    if (a.guarded && ::fcntl(a.error_w, F_SETFD, 0) != 0) {
        child_fail(a.error_w, spawn_step::close_fds, errno);
    }

    if (a.cwd != nullptr && ::chdir(a.cwd) != 0) child_fail(a.error_w, spawn_step::chdir, errno);

    // Unblock last. A signal already pending (say TERM forwarded to the new group) now takes its
    // default action before exec, just as it would have right after exec.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    const int err =
        exec_candidates_errno(a.plan->candidate_ptrs.data(), a.plan->candidate_ptrs.size(),
                              a.plan->argv.data(), a.plan->envp.data());
    child_fail(a.error_w, a.guarded ? spawn_step::guard : spawn_step::exec, err);
}

}  // namespace

const char* to_string(spawn_step step) noexcept {
    switch (step) {
        case spawn_step::none:
            return "none";
        case spawn_step::prepare:
            return "prepare";
        case spawn_step::pipe:
            return "pipe";
        case spawn_step::fork:
            return "fork";
        case spawn_step::setpgid:
            return "setpgid";
        case spawn_step::pdeathsig:
            return "pdeathsig";
        case spawn_step::redirect:
            return "redirect";
        case spawn_step::close_fds:
            return "close_fds";
        case spawn_step::chdir:
            return "chdir";
        case spawn_step::exec:
            return "exec";
        case spawn_step::guard:
            return "guard";
    }
    return "unknown";
}

Result<child_process> spawn(const child_spec& spec, spawn_step* failed_step) noexcept {
    spawn_step ignored;
    spawn_step& step = failed_step != nullptr ? *failed_step : ignored;
    step = spawn_step::prepare;
    if (std::error_code ec = validate(spec)) return ec;

    step = spawn_step::pipe;
    const int min_fd = std::max({3, spec.telemetry_fd + 1, spec.control_fd + 1});
    unique_fd error_r, error_w, stderr_r, stderr_w, stdout_r, stdout_w, telemetry_r, telemetry_w;
    unique_fd control_r, control_w;
    if (std::error_code ec = make_pipe(error_r, error_w, min_fd)) return ec;
    if (std::error_code ec = make_pipe(stderr_r, stderr_w, min_fd)) return ec;
    widen_pipe(stderr_r.get());
    if (spec.capture_stdout) {
        if (std::error_code ec = make_pipe(stdout_r, stdout_w, min_fd)) return ec;
        widen_pipe(stdout_r.get());
    }
    if (spec.telemetry_fd >= 0) {
        if (std::error_code ec = make_pipe(telemetry_r, telemetry_w, min_fd)) return ec;
        widen_pipe(telemetry_r.get());
    }
    std::size_t control_written = 0;
    if (spec.control_fd >= 0) {
        // Reversed: the child reads, we write. make_pipe moves the second fd above min_fd.
        if (std::error_code ec = make_pipe(control_w, control_r, min_fd)) return ec;
        int fds[2] = {control_w.release(), control_r.release()};
        // make_pipe gave (read, write) in (control_w, control_r): swap the names back.
        control_r.reset(fds[0]);
        control_w.reset(fds[1]);
        if (control_r.get() < min_fd) {
            const int moved = ::fcntl(control_r.get(), F_DUPFD_CLOEXEC, min_fd);
            if (moved < 0) return errno_code(errno);
            control_r.reset(moved);
        }
        if (std::error_code ec = set_nonblocking(control_w.get())) return ec;
        // The first state, there before the child's first instruction.
        while (control_written < spec.control_initial.size()) {
            const ssize_t n =
                ::write(control_w.get(), spec.control_initial.data() + control_written,
                        spec.control_initial.size() - control_written);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // full: the caller writes the rest
            control_written += static_cast<std::size_t>(n);
        }
    }
    // Only the parent's read ends are non-blocking (for epoll); the child's write ends stay
    // blocking, as most programs do not expect EAGAIN on stderr.
    for (const unique_fd* fd : {&stderr_r, &stdout_r, &telemetry_r}) {
        if (fd->valid()) {
            if (std::error_code ec = set_nonblocking(fd->get())) return ec;
        }
    }

    step = spawn_step::prepare;
    exec_plan plan;
    try {
        make_plan(spec, error_w.get(), ::getpid(), plan);
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    }

    const bool guarded = !spec.guard.empty();
    const child_args args{&plan,
                          spec.cwd.empty() ? nullptr : spec.cwd.c_str(),
                          ::getpid(),
                          error_w.get(),
                          stderr_w.get(),
                          stdout_w.get(),
                          telemetry_w.get(),
                          spec.telemetry_fd,
                          control_r.get(),
                          spec.control_fd,
                          spec.new_process_group,
                          spec.die_with_parent,
                          guarded,
                          spec.stdin_null};
    const pid_t parent_pgid = ::getpgrp();

    // Block every signal across fork, so that no parent handler runs in the child before
    // run_child() has reset the dispositions.
    step = spawn_step::fork;
    sigset_t all, old;
    ::sigfillset(&all);
    if (const int err = ::pthread_sigmask(SIG_SETMASK, &all, &old)) return errno_code(err);
    const pid_t pid = ::fork();
    if (pid == 0) run_child(args);
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) return errno_code(fork_errno);

    // Set the group from both sides, the usual job-control idiom: it no longer depends on which
    // process runs first. Once the child has exec'd this fails with EACCES, which is fine.
    if (spec.new_process_group) ::setpgid(pid, pid);

    // Our copies of the child's ends must go, or the error pipe never reports EOF.
    error_w.reset();
    stderr_w.reset();
    stdout_w.reset();
    telemetry_w.reset();
    control_r.reset();

    // Without a guard: EOF when the write end closes at exec, or a failure. With one: the
    // guard's report once the worker has exec'd, or a failure; EOF means the guard died first.
    spawn_report report{};
    ssize_t n;
    do {
        n = ::read(error_r.get(), &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    const bool started = guarded ? n == static_cast<ssize_t>(sizeof report) &&
                                       report.step == static_cast<int>(spawn_step::none) &&
                                       report.pid > 0
                                 : n == 0;
    if (started) {
        step = spawn_step::none;
        child_process child(pid, spec.new_process_group ? pid : parent_pgid, std::move(stderr_r),
                            std::move(stdout_r), std::move(telemetry_r), guarded ? report.pid : -1);
        child.set_control(std::move(control_w), control_written);
        return child;
    }

    std::error_code ec;
    if (n == static_cast<ssize_t>(sizeof report) &&
        report.step != static_cast<int>(spawn_step::none)) {
        step = static_cast<spawn_step>(report.step);
        ec = errno_code(report.err);
    } else {  // a torn report, or a guard gone silent; do not leave the child half-started
        if (guarded) step = spawn_step::guard;
        ec = n == 0 ? std::make_error_code(std::errc::protocol_error)
                    : errno_code(n < 0 ? errno : EIO);
        ::kill(pid, SIGKILL);
    }
    // The child has _exit()ed or is about to; reap it here so that no zombie is left behind.
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return ec;
}

int exit_code_for_spawn_error(std::error_code ec) noexcept {
    const bool not_found =
        ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory;
    return not_found ? 127 : 126;
}

}  // namespace telecap::spawn
