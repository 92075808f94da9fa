// telecap-guard (spawn/guard.hpp) and kill_all_descendants() (spawn/descendants.hpp) against
// real process trees: the fixtures in tests/fixtures/, spawn_tree especially.

#include "spawn/guard.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "spawn/child_process.hpp"
#include "spawn/descendants.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"
#include "spawn/spawner.hpp"

namespace ts = telecap::spawn;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;
const std::string guard_bin = TELECAP_GUARD_BIN;

// Reads `fd` (non-blocking) into `out` until EOF (returns true), `needle` or the timeout.
bool read_until(int fd, std::string& out, const std::string& needle = {},
                std::chrono::milliseconds timeout = 10s) {
    const auto deadline = steady::now() + timeout;
    char buf[4096];
    while (needle.empty() || out.find(needle) == std::string::npos) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) return true;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) {
            ADD_FAILURE() << "read: " << std::strerror(errno);
            return false;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (left <= 0ms) {
            ADD_FAILURE() << "timed out reading fd " << fd << ", got: " << out;
            return false;
        }
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(left.count()));
    }
    return false;
}

int wait_status(pid_t pid, std::chrono::milliseconds timeout = 10s) {
    if (pid <= 0) {
        ADD_FAILURE() << "no child to wait for";
        return -1;
    }
    const auto deadline = steady::now() + timeout;
    int status = 0;
    while (true) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) {
            ADD_FAILURE() << "waitpid " << pid << ": " << std::strerror(errno);
            return -1;
        }
        if (steady::now() > deadline) {
            ADD_FAILURE() << "child " << pid << " did not exit; killing it";
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(2ms);
    }
}

ts::child_process spawn_ok(const ts::child_spec& spec) {
    ts::spawn_step step{};
    auto result = ts::spawn(spec, &step);
    if (!result) {
        ADD_FAILURE() << "spawn " << spec.argv.front() << ": " << ts::to_string(step) << ": "
                      << result.error().message();
        return {};
    }
    return std::move(result).value();
}

bool has_no_children() { return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD; }

// One process as /proc/PID/stat shows it. The start time tells it apart from a later process
// that reuses the pid.
struct proc_info {
    bool exists = false;
    char state = '?';
    pid_t ppid = 0, pgrp = 0, session = 0;
    unsigned long long start = 0;
};

proc_info read_proc(pid_t pid) {
    proc_info p;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return p;
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) return p;
    std::istringstream fields(line.substr(paren + 2));
    std::vector<std::string> f;
    for (std::string s; fields >> s;) f.push_back(s);
    if (f.size() < 20) return p;
    p.exists = true;
    p.state = f[0][0];
    p.ppid = std::stoi(f[1]);
    p.pgrp = std::stoi(f[2]);
    p.session = std::stoi(f[3]);
    p.start = std::stoull(f[19]);  // field 22
    return p;
}

struct proc_id {
    pid_t pid;
    unsigned long long start;
    std::string kind;
};

proc_id identify(pid_t pid, std::string kind) {
    const proc_info p = read_proc(pid);
    EXPECT_TRUE(p.exists) << kind << " " << pid;
    return {pid, p.start, std::move(kind)};
}

// Still there, as a zombie or alive.
bool present(const proc_id& id) {
    const proc_info p = read_proc(id.pid);
    return p.exists && p.start == id.start;
}
bool alive(const proc_id& id) {
    const proc_info p = read_proc(id.pid);
    return p.exists && p.start == id.start && p.state != 'Z';
}

const std::vector<std::string> all_kinds = {"plain", "setsid", "setpgid", "daemon"};

// The descendants spawn_tree reports on `out` ("pid N KIND" lines), checked to be where the
// fixture says: in the worker's group and session ("plain"), in a new group ("setpgid"), or in
// a new session ("setsid", "daemon").
std::vector<proc_id> parse_tree(const std::string& out, pid_t worker,
                                const std::vector<std::string>& kinds = all_kinds) {
    std::vector<proc_id> ids;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string tag, kind;
        pid_t pid = 0;
        if (!(fields >> tag >> pid >> kind) || tag != "pid") continue;
        const proc_info p = read_proc(pid);
        if (kind == "plain") {
            EXPECT_EQ(p.pgrp, worker) << kind;
        } else if (kind == "setpgid") {
            EXPECT_EQ(p.pgrp, pid) << kind;
            EXPECT_NE(p.session, pid) << kind;
        } else {
            EXPECT_EQ(p.session, pid) << kind;
        }
        ids.push_back(identify(pid, kind));
    }
    EXPECT_EQ(ids.size(), kinds.size()) << out;
    for (const std::string& k : kinds) {
        EXPECT_EQ(
            std::count_if(ids.begin(), ids.end(), [&](const proc_id& i) { return i.kind == k; }), 1)
            << k << " in " << out;
    }
    return ids;
}

std::vector<std::string> tree_argv(const std::vector<std::string>& tail) {
    std::vector<std::string> argv{FIXTURE_SPAWN_TREE};
    argv.insert(argv.end(), all_kinds.begin(), all_kinds.end());
    argv.insert(argv.end(), tail.begin(), tail.end());
    return argv;
}

std::map<std::string, std::string> parse_report(const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const size_t colon = line.find(": ");
        if (colon != std::string::npos) out[line.substr(0, colon)] = line.substr(colon + 2);
    }
    return out;
}

class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "telecap-guard-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
        EXPECT_FALSE(path_.empty());
    }
    ~temp_dir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }
    fs::path write(const std::string& name, const std::string& content, fs::perms perms) const {
        const fs::path file = path_ / name;
        std::ofstream(file) << content;
        fs::permissions(file, perms);
        return file;
    }

private:
    fs::path path_;
};

int count_open_fds() {
    int n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

}  // namespace

TEST(guard, worker_is_a_child_of_the_guard_and_leads_its_own_group) {
    ts::child_process child =
        spawn_ok({.argv = {FIXTURE_SIGNAL_ECHO}, .capture_stdout = true, .guard = guard_bin});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    EXPECT_TRUE(child.guarded());
    EXPECT_NE(child.worker_pid(), child.pid());
    EXPECT_EQ(child.pgid(), child.pid()) << "the guard leads its own group";
    const proc_info guard = read_proc(child.pid());
    const proc_info worker = read_proc(child.worker_pid());
    EXPECT_EQ(guard.ppid, ::getpid());
    EXPECT_EQ(guard.pgrp, child.pid());
    EXPECT_EQ(worker.ppid, child.pid());
    EXPECT_EQ(worker.pgrp, child.worker_pid());
    // Not ours to signal: only the guard is our child.
    EXPECT_EQ(ts::signal_child(child.worker_pid(), 0), std::errc::no_such_process);
    EXPECT_FALSE(ts::signal_child(child.pid(), 0));
    ASSERT_FALSE(ts::forward_signal(child.pgid(), SIGTERM, true));
    EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 0);

    ts::child_process plain = spawn_ok({.argv = {FIXTURE_EXIT_WITH, "0"}});
    EXPECT_FALSE(plain.guarded());
    EXPECT_EQ(plain.worker_pid(), plain.pid());
    EXPECT_EQ(ts::exit_code_from_status(wait_status(plain.pid())), 0);
}

TEST(guard, worker_starts_with_the_same_fds_signals_and_environment) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(null_fd, 0);
    const int leaked = ::dup2(null_fd, 900);  // deliberately not CLOEXEC
    ::close(null_fd);
    ASSERT_EQ(leaked, 900);
    ::setenv("TELECAP_TEST_INHERITED", "parent", 1);
    struct sigaction ignore {
    }, old_pipe{};
    ignore.sa_handler = SIG_IGN;
    ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_pipe), 0);

    std::map<std::string, std::string> reports[2];
    temp_dir dir;
    for (int guarded = 0; guarded < 2; ++guarded) {
        ts::child_process child =
            spawn_ok({.argv = {FIXTURE_FD_REPORT, "TELECAP_TEST_INHERITED", "TELECAP_TEST_ADDED"},
                      .env_add = {"TELECAP_TEST_ADDED=yes"},
                      .cwd = dir.path().string(),
                      .capture_stdout = true,
                      .telemetry_fd = 7,
                      .guard = guarded ? guard_bin : ""});
        ASSERT_TRUE(child.valid());
        std::string out;
        read_until(child.stdout_fd(), out);
        EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 0);
        reports[guarded] = parse_report(out);
    }
    EXPECT_EQ(reports[1], reports[0]);
    EXPECT_EQ(reports[1]["pgid_is_pid"], "1");
    EXPECT_EQ(reports[1]["sigmask_empty"], "1");
    EXPECT_EQ(reports[1]["telemetry_fd"], "7");
    EXPECT_EQ(reports[1]["env TELECAP_TEST_ADDED"], "yes");
    EXPECT_EQ(reports[1]["cwd"], fs::canonical(dir.path()).string());
    EXPECT_TRUE(reports[1]["fds"].ends_with(" 1 2 7")) << reports[1]["fds"];

    ::sigaction(SIGPIPE, &old_pipe, nullptr);
    ::unsetenv("TELECAP_TEST_INHERITED");
    ::close(leaked);
}

TEST(guard, every_exit_code_round_trips) {
    for (int code = 0; code <= 255; ++code) {
        ts::child_process child =
            spawn_ok({.argv = {FIXTURE_EXIT_WITH, std::to_string(code)}, .guard = guard_bin});
        ASSERT_TRUE(child.valid());
        const int status = wait_status(child.pid());
        ASSERT_TRUE(WIFEXITED(status)) << code;
        EXPECT_EQ(WEXITSTATUS(status), code);
    }
}

TEST(guard, death_by_signal_is_seen_unchanged) {
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM,
                    SIGTERM, SIGABRT, SIGRTMIN + 1}) {
        ts::child_process child =
            spawn_ok({.argv = {FIXTURE_EXIT_WITH, "0", std::to_string(sig)}, .guard = guard_bin});
        ASSERT_TRUE(child.valid());
        const int status = wait_status(child.pid());
        ASSERT_TRUE(WIFSIGNALED(status)) << ts::signal_name(sig) << " status " << status;
        EXPECT_EQ(WTERMSIG(status), sig) << ts::signal_name(sig);
        EXPECT_FALSE(WCOREDUMP(status)) << "the guard never dumps core";
        EXPECT_EQ(ts::exit_code_from_status(status), 128 + sig);
    }
}

TEST(guard, exec_failures_are_the_same_errors_as_without) {
    temp_dir dir;
    const fs::path plain = dir.write("plain", "#!/bin/sh\nexit 0\n", fs::perms::owner_read);
    const fs::path garbage =
        dir.write("garbage", "\x01\x02\x03 not a program\n", fs::perms::owner_all);
    const std::string path_env = "PATH=/nonexistent:" + dir.path().string();
    const std::vector<ts::child_spec> cases = {
        {.argv = {"/nonexistent/telecap-test-program"}},
        {.argv = {"telecap-no-such-program"}},
        {.argv = {""}},
        {.argv = {"/etc/passwd/x"}},
        {.argv = {plain.string()}},
        {.argv = {dir.path().string()}},
        {.argv = {garbage.string()}},
        {.argv = {"plain"}, .env_add = {path_env}},  // EACCES wins over ENOENT, as in execvp
        {.argv = {FIXTURE_EXIT_WITH, "0"}, .cwd = "/nonexistent-telecap-dir"},
    };
    ASSERT_TRUE(has_no_children());
    for (ts::child_spec spec : cases) {
        ts::spawn_step plain_step{}, guard_step{};
        const auto without = ts::spawn(spec, &plain_step);
        spec.guard = guard_bin;
        const auto with = ts::spawn(spec, &guard_step);
        ASSERT_FALSE(without) << spec.argv[0];
        ASSERT_FALSE(with) << spec.argv[0];
        EXPECT_EQ(with.error(), without.error()) << spec.argv[0] << ": " << with.error().message();
        EXPECT_EQ(guard_step, plain_step) << spec.argv[0] << ": " << ts::to_string(guard_step);
        EXPECT_EQ(ts::exit_code_for_spawn_error(with.error()),
                  ts::exit_code_for_spawn_error(without.error()));
        EXPECT_TRUE(has_no_children()) << "not reaped: " << spec.argv[0];
    }
}

TEST(guard, a_missing_guard_is_a_guard_error) {
    ts::spawn_step step{};
    auto result =
        ts::spawn({.argv = {FIXTURE_EXIT_WITH, "0"}, .guard = "/nonexistent/telecap-guard"}, &step);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error(), std::errc::no_such_file_or_directory);
    EXPECT_EQ(step, ts::spawn_step::guard);
    EXPECT_STREQ(ts::to_string(step), "guard");

    result = ts::spawn({.argv = {FIXTURE_EXIT_WITH, "0"}, .guard = "telecap-guard"}, &step);
    EXPECT_EQ(result.error(), std::errc::invalid_argument) << "a relative guard path";
    EXPECT_EQ(step, ts::spawn_step::prepare);

    // A guard that dies before it reports (say, its libraries cannot be loaded).
    temp_dir dir;
    const fs::path mute = dir.write("mute-guard", "#!/bin/sh\nexit 127\n", fs::perms::owner_all);
    result = ts::spawn({.argv = {FIXTURE_EXIT_WITH, "0"}, .guard = mute.string()}, &step);
    EXPECT_EQ(result.error(), std::errc::protocol_error);
    EXPECT_EQ(step, ts::spawn_step::guard);
    EXPECT_TRUE(has_no_children());
}

TEST(guard, parent_fds_do_not_leak) {
    const int before = count_open_fds();
    for (int i = 0; i < 10; ++i) {
        ts::child_process child = spawn_ok({.argv = {FIXTURE_EXIT_WITH, "0"},
                                            .capture_stdout = true,
                                            .telemetry_fd = 5,
                                            .guard = guard_bin});
        EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 0);
        EXPECT_FALSE(ts::spawn({.argv = {"/nonexistent"}, .guard = guard_bin}));
    }
    EXPECT_EQ(count_open_fds(), before);
}

TEST(guard, signals_sent_to_the_guard_reach_the_worker) {
    ts::child_process child =
        spawn_ok({.argv = {FIXTURE_SIGNAL_ECHO}, .capture_stdout = true, .guard = guard_bin});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    bool to_group = true;
    for (int sig : ts::forwarded_signals) {
        if (sig == SIGTERM) continue;
        const std::string expected = "got " + ts::signal_name(sig) + "\n";
        ASSERT_FALSE(ts::forward_signal(to_group ? child.pgid() : child.pid(), sig, to_group));
        read_until(child.stdout_fd(), out, expected);
        EXPECT_NE(out.find(expected), std::string::npos) << out;
        to_group = !to_group;
    }
    ASSERT_FALSE(ts::forward_signal(child.pgid(), SIGTERM, true));
    read_until(child.stdout_fd(), out);
    EXPECT_TRUE(out.ends_with("got SIGTERM\n")) << out;
    EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 0);
}

TEST(guard, nothing_survives_the_worker_exit) {
    ts::child_process child = spawn_ok(
        {.argv = tree_argv({"--exit-on-usr1", "3"}), .capture_stdout = true, .guard = guard_bin});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    const auto tree = parse_tree(out, child.worker_pid());  // all alive: the worker waits
    ASSERT_EQ(::kill(child.worker_pid(), SIGUSR1), 0);      // now it exits with 3
    // The guard reaps every descendant before it exits: once its status is in, all are gone.
    EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 3);
    for (const proc_id& p : tree) EXPECT_FALSE(present(p)) << p.kind << " " << p.pid;
    read_until(child.stdout_fd(), out);  // EOF: nobody holds the pipe any more
    EXPECT_TRUE(has_no_children());
}

TEST(guard, nothing_survives_a_stop) {
    ts::child_process child =
        spawn_ok({.argv = tree_argv({"--wait"}), .capture_stdout = true, .guard = guard_bin});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    const auto tree = parse_tree(out, child.worker_pid());
    for (const proc_id& p : tree) EXPECT_TRUE(alive(p)) << p.kind;
    ASSERT_FALSE(ts::forward_signal(child.pgid(), SIGTERM, true));
    EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 0);
    for (const proc_id& p : tree) EXPECT_FALSE(present(p)) << p.kind << " " << p.pid;
}

TEST(guard, kill_signal_kills_the_whole_tree) {
    ts::child_process child =
        spawn_ok({.argv = tree_argv({"--wait"}), .capture_stdout = true, .guard = guard_bin});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    auto tree = parse_tree(out, child.worker_pid());
    tree.push_back(identify(child.worker_pid(), "worker"));
    ASSERT_EQ(::kill(child.pid(), ts::guard_kill_signal()), 0);
    const int status = wait_status(child.pid());
    ASSERT_TRUE(WIFSIGNALED(status)) << status;
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    for (const proc_id& p : tree) EXPECT_FALSE(present(p)) << p.kind << " " << p.pid;
}

TEST(guard, nothing_survives_a_sigkill_of_the_spawner) {
    // A helper process spawns the tree under a guard, passes everything's pid on, and is
    // SIGKILLed: the guard learns of it from its parent-death signal. As a subreaper, this
    // process then adopts the guard and can wait for it (the container's init may not reap).
    ASSERT_FALSE(ts::become_subreaper());
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const pid_t helper = ::fork();
    ASSERT_GE(helper, 0);
    if (helper == 0) {
        ::close(pipe_fds[0]);
        auto child =
            ts::spawn({.argv = tree_argv({"--wait"}), .capture_stdout = true, .guard = guard_bin});
        if (!child) ::_exit(1);
        std::string out;
        read_until(child->stdout_fd(), out, "ready\n");
        out += "guard " + std::to_string(child->pid()) + "\nworker " +
               std::to_string(child->worker_pid()) + "\n";
        if (::write(pipe_fds[1], out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
            ::_exit(1);
        }
        ::close(pipe_fds[1]);
        ::alarm(60);
        while (true) ::pause();
    }
    ::close(pipe_fds[1]);
    ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    std::string out;
    read_until(pipe_fds[0], out);  // to EOF: the helper closed its end
    ::close(pipe_fds[0]);
    const auto field = [&](const std::string& key) {
        const size_t at = out.find("\n" + key + " ");
        return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + key.size() + 2);
    };
    const pid_t guard = field("guard"), worker = field("worker");
    ASSERT_GT(guard, 0) << out;
    ASSERT_GT(worker, 0) << out;
    auto tree = parse_tree(out, worker);
    tree.push_back(identify(worker, "worker"));
    const proc_id guard_id = identify(guard, "guard");
    for (const proc_id& p : tree) ASSERT_TRUE(alive(p)) << p.kind;

    ASSERT_EQ(::kill(helper, SIGKILL), 0);
    EXPECT_EQ(ts::exit_code_from_status(wait_status(helper)), 128 + SIGKILL);

    // The guard, now ours, kills the tree, reaps it and dies as if by SIGKILL.
    const int status = wait_status(guard);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    EXPECT_FALSE(present(guard_id));
    for (const proc_id& p : tree) {
        EXPECT_FALSE(present(p)) << p.kind << " " << p.pid << " survived telecap's SIGKILL";
    }
    EXPECT_TRUE(has_no_children());
}

TEST(guard, find_guard_executable_honours_the_override) {
    const char* old = std::getenv(ts::guard_path_env);
    const std::string saved = old != nullptr ? old : "";

    ::setenv(ts::guard_path_env, guard_bin.c_str(), 1);
    auto found = ts::find_guard_executable();
    ASSERT_TRUE(found) << found.error().message();
    EXPECT_EQ(*found, guard_bin);

    ::setenv(ts::guard_path_env, "/nonexistent/telecap-guard", 1);
    EXPECT_EQ(ts::find_guard_executable().error(), std::errc::no_such_file_or_directory);
    ::setenv(ts::guard_path_env, "/etc/passwd", 1);
    EXPECT_EQ(ts::find_guard_executable().error(), std::errc::permission_denied);

    // Without the override: next to this test binary there is none, nor in ../libexec/telecap.
    ::unsetenv(ts::guard_path_env);
    const fs::path self = fs::read_symlink("/proc/self/exe");
    if (!fs::exists(self.parent_path() / ts::guard_executable_name)) {
        EXPECT_EQ(ts::find_guard_executable().error(), std::errc::no_such_file_or_directory);
    }
    if (!saved.empty()) ::setenv(ts::guard_path_env, saved.c_str(), 1);
}

TEST(descendants, signal_child_signals_only_our_children) {
    EXPECT_EQ(ts::signal_child(::getppid(), 0), std::errc::no_such_process);
    EXPECT_EQ(ts::signal_child(1, 0), std::errc::no_such_process);
    EXPECT_EQ(ts::signal_child(0, SIGKILL), std::errc::invalid_argument);
    EXPECT_EQ(ts::signal_child(-1, SIGKILL), std::errc::invalid_argument);

    ts::child_process child = spawn_ok({.argv = {FIXTURE_SIGNAL_ECHO}, .capture_stdout = true});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    auto children = ts::list_children();
    ASSERT_TRUE(children) << children.error().message();
    EXPECT_NE(std::find(children->begin(), children->end(), child.pid()), children->end());
    EXPECT_FALSE(ts::signal_child(child.pid(), SIGUSR1));
    read_until(child.stdout_fd(), out, "got SIGUSR1\n");
    EXPECT_FALSE(ts::signal_child(child.pid(), SIGKILL));
    EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 128 + SIGKILL);
    EXPECT_EQ(ts::signal_child(child.pid(), 0), std::errc::no_such_process);
}

TEST(descendants, kill_all_descendants_leaves_nothing) {
    ASSERT_TRUE(has_no_children());
    ASSERT_FALSE(ts::become_subreaper());  // so that the orphans come to us, not to init

    // A worker that has exited, leaving its tree to us; then one still running, whose tree is
    // still below it.
    for (const char* mode : {"--exit", "--wait"}) {
        const bool exits = std::string(mode) == "--exit";
        ts::child_process child =
            spawn_ok({.argv = tree_argv(exits ? std::vector<std::string>{"--exit", "0"}
                                              : std::vector<std::string>{"--wait"}),
                      .capture_stdout = true});
        ASSERT_TRUE(child.valid());
        std::string out;
        read_until(child.stdout_fd(), out, "ready\n");
        auto tree = parse_tree(out, child.pid());
        if (exits) {
            EXPECT_EQ(ts::exit_code_from_status(wait_status(child.pid())), 0);
        } else {
            tree.push_back(identify(child.pid(), "worker"));
        }
        for (const proc_id& p : tree) ASSERT_TRUE(alive(p)) << mode << " " << p.kind;

        const ts::sweep_result r = ts::kill_all_descendants();
        EXPECT_EQ(r.left, 0) << mode;
        EXPECT_EQ(r.reaped, static_cast<int>(tree.size())) << mode;
        for (const proc_id& p : tree) EXPECT_FALSE(present(p)) << mode << " " << p.kind;
        EXPECT_TRUE(has_no_children()) << mode;
    }
    const ts::sweep_result none = ts::kill_all_descendants();
    EXPECT_EQ(none.reaped, 0);
    EXPECT_EQ(none.left, 0);
}
