// spawn/ against real child processes: the fixtures in tests/fixtures/.

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
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
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "spawn/child_process.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"
#include "spawn/spawner.hpp"

namespace ts = telecap::spawn;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

// Appends what `fd` (non-blocking) yields to `out` until EOF, `done(out)` or the timeout.
// Returns true on EOF.
template <typename Done>
bool read_into(int fd, std::string& out, Done done, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = steady::now() + timeout;
    char buf[65536];
    while (!done(out)) {
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

std::string read_all(int fd) {
    std::string out;
    EXPECT_TRUE(read_into(fd, out, [](const std::string&) { return false; }));
    return out;
}

// Reads until `needle` has been seen; `out` keeps everything read so far.
void read_until(int fd, std::string& out, const std::string& needle) {
    read_into(fd, out, [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

// waitpid with a deadline, so that a broken child fails the test instead of hanging it.
int wait_status(pid_t pid, std::chrono::milliseconds timeout = 10s) {
    if (pid <= 0) {  // waitpid would wait for any child instead
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

int wait_exit_code(pid_t pid) { return ts::exit_code_from_status(wait_status(pid)); }

// Fails the test and returns an empty child_process on error.
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

bool proc_exists(pid_t pid) { return fs::exists("/proc/" + std::to_string(pid)); }

bool has_no_children() { return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD; }

int count_open_fds() {
    int n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
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

std::map<std::string, std::string> run_fd_report(ts::child_spec spec) {
    spec.capture_stdout = true;
    ts::child_process child = spawn_ok(spec);
    if (!child.valid()) return {};
    const std::string out = read_all(child.stdout_fd());
    EXPECT_EQ(wait_exit_code(child.pid()), 0);
    return parse_report(out);
}

class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "telecap-spawn-XXXXXX").string();
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

}  // namespace

TEST(spawn, missing_program_is_enoent_and_leaves_no_zombie) {
    ASSERT_TRUE(has_no_children());
    for (const char* name :
         {"/nonexistent/telecap-test-program", "telecap-no-such-program", "", "/etc/passwd/x"}) {
        ts::spawn_step step{};
        const auto result = ts::spawn({.argv = {name}}, &step);
        ASSERT_FALSE(result) << name;
        EXPECT_EQ(step, ts::spawn_step::exec) << name;
        EXPECT_EQ(ts::exit_code_for_spawn_error(result.error()), 127) << name;
        EXPECT_TRUE(has_no_children()) << "failed child was not reaped: " << name;
    }
    EXPECT_EQ(ts::spawn({.argv = {"telecap-no-such-program"}}).error(),
              std::errc::no_such_file_or_directory);
    EXPECT_EQ(ts::spawn({.argv = {"/etc/passwd/x"}}).error(), std::errc::not_a_directory);
}

TEST(spawn, unrunnable_program_is_126) {
    temp_dir dir;
    const fs::path plain = dir.write("plain", "#!/bin/sh\nexit 0\n", fs::perms::owner_read);
    const fs::path no_shebang =
        dir.write("garbage", "\x01\x02\x03 not a program\n", fs::perms::owner_all);
    const std::pair<fs::path, std::errc> cases[] = {
        {plain, std::errc::permission_denied},
        {dir.path(), std::errc::permission_denied},
        {no_shebang, std::errc::executable_format_error},
    };
    for (const auto& [path, expected] : cases) {
        ts::spawn_step step{};
        const auto result = ts::spawn({.argv = {path.string()}}, &step);
        ASSERT_FALSE(result) << path;
        EXPECT_EQ(result.error(), expected) << path << ": " << result.error().message();
        EXPECT_EQ(step, ts::spawn_step::exec);
        EXPECT_EQ(ts::exit_code_for_spawn_error(result.error()), 126);
    }
    EXPECT_TRUE(has_no_children());
}

TEST(spawn, path_search_skips_unrunnable_entries_like_execvp) {
    temp_dir dir;
    const fs::path fixture_dir = fs::path(FIXTURE_EXIT_WITH).parent_path();
    dir.write("fixture_exit_with", "#!/bin/sh\nexit 99\n", fs::perms::owner_read);
    const std::string path =
        "PATH=/nonexistent:" + dir.path().string() + ":" + fixture_dir.string();

    ts::child_process child = spawn_ok({.argv = {"fixture_exit_with", "7"}, .env_add = {path}});
    ASSERT_TRUE(child.valid());
    EXPECT_EQ(wait_exit_code(child.pid()), 7);

    // Only the unrunnable candidate: EACCES wins over the ENOENT of the other entries.
    const auto result = ts::spawn(
        {.argv = {"fixture_exit_with"}, .env_add = {"PATH=/nonexistent:" + dir.path().string()}});
    EXPECT_EQ(result.error(), std::errc::permission_denied);
}

TEST(spawn, chdir_failure_is_reported_and_cwd_applies) {
    ts::spawn_step step{};
    const auto result =
        ts::spawn({.argv = {FIXTURE_EXIT_WITH, "0"}, .cwd = "/nonexistent-telecap-dir"}, &step);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error(), std::errc::no_such_file_or_directory);
    EXPECT_EQ(step, ts::spawn_step::chdir);
    EXPECT_TRUE(has_no_children());

    temp_dir dir;
    const auto report = run_fd_report({.argv = {FIXTURE_FD_REPORT}, .cwd = dir.path().string()});
    EXPECT_EQ(report.at("cwd"), fs::canonical(dir.path()).string());
}

TEST(spawn, rejects_invalid_specs) {
    const ts::child_spec bad[] = {
        {},
        {.argv = {FIXTURE_EXIT_WITH}, .telemetry_fd = 2},
        {.argv = {FIXTURE_EXIT_WITH}, .telemetry_fd = std::numeric_limits<int>::max()},
        {.argv = {FIXTURE_EXIT_WITH}, .telemetry_fd = 0},
        {.argv = {FIXTURE_EXIT_WITH}, .env_add = {"NO_EQUALS_SIGN"}},
        {.argv = {FIXTURE_EXIT_WITH}, .env_add = {"=value"}},
    };
    for (const auto& spec : bad) {
        ts::spawn_step step{};
        EXPECT_EQ(ts::spawn(spec, &step).error(), std::errc::invalid_argument);
        EXPECT_EQ(step, ts::spawn_step::prepare);
    }
    EXPECT_TRUE(has_no_children());
}

TEST(spawn, every_exit_code_round_trips) {
    for (int code = 0; code <= 255; ++code) {
        ts::child_process child = spawn_ok({.argv = {FIXTURE_EXIT_WITH, std::to_string(code)}});
        ASSERT_TRUE(child.valid());
        const int status = wait_status(child.pid());
        ASSERT_TRUE(WIFEXITED(status)) << code;
        EXPECT_EQ(ts::exit_code_from_status(status), code);
    }
}

TEST(spawn, death_by_signal_is_128_plus_signal) {
    for (int sig : {SIGHUP, SIGINT, SIGKILL, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM}) {
        ts::child_process child = spawn_ok({.argv = {FIXTURE_EXIT_WITH, "0", std::to_string(sig)}});
        ASSERT_TRUE(child.valid());
        const int status = wait_status(child.pid());
        ASSERT_TRUE(WIFSIGNALED(status)) << ts::signal_name(sig);
        EXPECT_EQ(ts::exit_code_from_status(status), 128 + sig) << ts::signal_name(sig);
    }
}

TEST(spawn, child_sees_only_its_stdio_and_telemetry_fds) {
    // Deliberately not CLOEXEC, as careless code elsewhere in the parent might do.
    const int leaked = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(leaked, 0);
    const int leaked_high = ::dup2(leaked, 900);
    ASSERT_EQ(leaked_high, 900);

    std::string expected;
    for (int fd = 0; fd <= 2; ++fd) {
        // fd 0 is inherited as is; 1 and 2 are our pipes.
        if (fd > 0 || ::fcntl(fd, F_GETFD) != -1) expected += std::to_string(fd) + " ";
    }
    expected += "7";

    const auto report = run_fd_report({.argv = {FIXTURE_FD_REPORT}, .telemetry_fd = 7});
    EXPECT_EQ(report.at("fds"), expected);
    EXPECT_EQ(report.at("telemetry_fd"), "7");

    const auto plain = run_fd_report({.argv = {FIXTURE_FD_REPORT}});
    EXPECT_EQ(plain.at("fds"), expected.substr(0, expected.size() - 2));
    EXPECT_EQ(plain.at("telemetry_fd"), "<unset>");
    ::close(leaked);
    ::close(leaked_high);
}

TEST(spawn, parent_fds_do_not_leak) {
    const int before = count_open_fds();
    for (int i = 0; i < 20; ++i) {
        ts::child_process child =
            spawn_ok({.argv = {FIXTURE_EXIT_WITH, "0"}, .capture_stdout = true, .telemetry_fd = 5});
        EXPECT_EQ(wait_exit_code(child.pid()), 0);
        EXPECT_FALSE(ts::spawn({.argv = {"/nonexistent"}, .capture_stdout = true}));
        EXPECT_FALSE(ts::spawn({.argv = {FIXTURE_EXIT_WITH}, .cwd = "/nonexistent"}));
    }
    EXPECT_EQ(count_open_fds(), before);
}

TEST(spawn, child_signal_state_is_clean) {
    // Give the parent the kind of state that would survive into a careless child: ignored
    // signals (SIG_IGN survives exec), a handler and a blocked signal (the mask survives exec).
    struct sigaction ignore {
    }, handler{}, old_usr1{}, old_pipe{}, old_hup{};
    ignore.sa_handler = SIG_IGN;
    handler.sa_handler = [](int) {};
    ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &old_usr1), 0);
    ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_pipe), 0);
    ASSERT_EQ(::sigaction(SIGHUP, &handler, &old_hup), 0);
    sigset_t usr2, old_mask;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    ASSERT_FALSE(ts::block_signals(usr2, &old_mask));

    const auto report = run_fd_report({.argv = {FIXTURE_FD_REPORT}});
    EXPECT_EQ(report.at("sigmask_empty"), "1");
#if defined(__SANITIZE_ADDRESS__)
    // The sanitizer runtime in the fixture installs its own SEGV/BUS/FPE handlers.
    for (int sig : {SIGUSR1, SIGPIPE, SIGHUP}) {
        EXPECT_EQ(
            (" " + report.at("non_default_signals") + " ").find(" " + std::to_string(sig) + " "),
            std::string::npos)
            << sig;
    }
#else
    EXPECT_EQ(report.at("non_default_signals"), "");
#endif

    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGUSR1, &old_usr1, nullptr);
    ::sigaction(SIGPIPE, &old_pipe, nullptr);
    ::sigaction(SIGHUP, &old_hup, nullptr);
}

TEST(spawn, new_process_group_makes_the_child_a_group_leader) {
    ts::child_process child = spawn_ok({.argv = {FIXTURE_FD_REPORT}, .capture_stdout = true});
    ASSERT_TRUE(child.valid());
    EXPECT_EQ(child.pgid(), child.pid());
    EXPECT_EQ(::getpgid(child.pid()), child.pid());
    EXPECT_EQ(parse_report(read_all(child.stdout_fd())).at("pgid_is_pid"), "1");
    EXPECT_EQ(wait_exit_code(child.pid()), 0);

    ts::child_process same =
        spawn_ok({.argv = {FIXTURE_FD_REPORT}, .capture_stdout = true, .new_process_group = false});
    ASSERT_TRUE(same.valid());
    EXPECT_EQ(same.pgid(), ::getpgrp());
    EXPECT_EQ(::getpgid(same.pid()), ::getpgrp());
    EXPECT_EQ(parse_report(read_all(same.stdout_fd())).at("pgid_is_pid"), "0");
    EXPECT_EQ(wait_exit_code(same.pid()), 0);
}

TEST(spawn, env_add_overrides_and_extends_the_environment) {
    ::setenv("TELECAP_TEST_INHERITED", "parent", 1);
    ::setenv("TELECAP_TEST_OVERRIDDEN", "parent", 1);
    const auto report = run_fd_report(
        {.argv = {FIXTURE_FD_REPORT, "TELECAP_TEST_INHERITED", "TELECAP_TEST_OVERRIDDEN",
                  "TELECAP_TEST_ADDED", "TELECAP_TELEMETRY_FD"},
         .env_add = {"TELECAP_TEST_OVERRIDDEN=child", "TELECAP_TEST_ADDED=a=b",
                     "TELECAP_TELEMETRY_FD=99"},
         .telemetry_fd = 4});
    EXPECT_EQ(report.at("env TELECAP_TEST_INHERITED"), "parent");
    EXPECT_EQ(report.at("env TELECAP_TEST_OVERRIDDEN"), "child");
    EXPECT_EQ(report.at("env TELECAP_TEST_ADDED"), "a=b");
    EXPECT_EQ(report.at("env TELECAP_TELEMETRY_FD"), "4") << "the real fd wins";
    ::unsetenv("TELECAP_TEST_INHERITED");
    ::unsetenv("TELECAP_TEST_OVERRIDDEN");
}

TEST(spawn, stderr_pipe_delivers_every_byte) {
    ts::child_process child =
        spawn_ok({.argv = {FIXTURE_WRITE_LINES, "1000", "plain", "huge=300000", "partial"}});
    ASSERT_TRUE(child.valid());
    EXPECT_EQ(child.stdout_fd(), -1);
    EXPECT_EQ(child.telemetry_fd(), -1);
    EXPECT_NE(::fcntl(child.stderr_fd(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(child.stderr_fd(), F_GETFD) & FD_CLOEXEC, 0);

    const std::string out = read_all(child.stderr_fd());
    std::string expected;
    for (int i = 1; i <= 1000; ++i) expected += "line " + std::to_string(i) + "\n";
    expected += std::string(300000, 'x') + "\n" + "line 1001";
    EXPECT_EQ(out.size(), expected.size());
    EXPECT_TRUE(out == expected);
    EXPECT_EQ(wait_exit_code(child.pid()), 0);
}

TEST(spawn, pipes_survive_a_child_killed_mid_stream) {
    ts::child_process child = spawn_ok({.argv = {FIXTURE_WRITE_LINES, "3", "kill"}});
    ASSERT_TRUE(child.valid());
    const std::string out = read_all(child.stderr_fd());
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3);
    EXPECT_TRUE(out.starts_with("TELEMETRY:{\"event\": \"tool.execution.start\""));
    EXPECT_EQ(wait_exit_code(child.pid()), 128 + SIGKILL);
}

TEST(spawn, telemetry_fd_gets_its_own_pipe) {
    // fd 3 is likely the number pipe2() hands out next, which exercises the dup2 collision path.
    for (int tfd : {3, 4, 63}) {
        ts::child_process child =
            spawn_ok({.argv = {FIXTURE_WRITE_LINES, "3", "fd=telemetry"}, .telemetry_fd = tfd});
        ASSERT_TRUE(child.valid());
        ASSERT_GE(child.telemetry_fd(), 0);
        EXPECT_NE(::fcntl(child.telemetry_fd(), F_GETFL) & O_NONBLOCK, 0);
        const std::string telemetry = read_all(child.telemetry_fd());
        EXPECT_EQ(std::count(telemetry.begin(), telemetry.end(), '\n'), 3) << telemetry;
        EXPECT_NE(telemetry.find("\"timestamp_ns\": 3"), std::string::npos);
        EXPECT_EQ(read_all(child.stderr_fd()), "");
        EXPECT_EQ(wait_exit_code(child.pid()), 0);
    }
}

TEST(spawn, pipe_fds_never_collide_with_target_fds) {
    // The error pipe is made first, so its write end usually lands on the lowest free fd + 1:
    // a telemetry_fd there would clobber it unless spawn() moved it out of the way.
    const int lowest_free = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(lowest_free, 0);
    ::close(lowest_free);
    for (int tfd = lowest_free; tfd <= lowest_free + 4; ++tfd) {
        EXPECT_EQ(ts::spawn({.argv = {"/nonexistent"}, .telemetry_fd = tfd}).error(),
                  std::errc::no_such_file_or_directory)
            << tfd;
        ts::child_process child =
            spawn_ok({.argv = {FIXTURE_WRITE_LINES, "2", "fd=telemetry"}, .telemetry_fd = tfd});
        ASSERT_TRUE(child.valid());
        const std::string telemetry = read_all(child.telemetry_fd());
        EXPECT_EQ(std::count(telemetry.begin(), telemetry.end(), '\n'), 2) << tfd;
        EXPECT_EQ(wait_exit_code(child.pid()), 0);
    }
}

TEST(spawn, works_from_a_parent_with_stdio_closed) {
    // Daemons run with 0..2 closed; then pipe2() hands out exactly the numbers the child
    // dup2()s onto. Run spawn() in a helper process that closes them, and check by exit code.
    const pid_t helper = ::fork();
    ASSERT_GE(helper, 0);
    if (helper == 0) {
        ::close(0);
        ::close(1);
        ::close(2);
        const auto run = []() -> int {
            if (ts::spawn({.argv = {"/nonexistent"}, .capture_stdout = true}).error() !=
                std::errc::no_such_file_or_directory) {
                return 10;
            }
            auto child =
                ts::spawn({.argv = {FIXTURE_WRITE_LINES, "2", "plain"}, .capture_stdout = true});
            if (!child) return 11;
            std::string err;
            read_into(child->stderr_fd(), err, [](const std::string&) { return false; });
            if (err != "line 1\nline 2\n") return 12;
            auto out_child = ts::spawn(
                {.argv = {FIXTURE_WRITE_LINES, "1", "plain", "fd=stdout"}, .capture_stdout = true});
            if (!out_child) return 13;
            std::string out;
            read_into(out_child->stdout_fd(), out, [](const std::string&) { return false; });
            return out == "line 1\n" ? 0 : 14;
        };
        const int code = run();
        while (::wait(nullptr) > 0) {
        }
        ::_exit(code);
    }
    EXPECT_EQ(wait_exit_code(helper), 0);
}

TEST(spawn, child_process_moves_and_releases) {
    ts::child_process child = spawn_ok({.argv = {FIXTURE_EXIT_WITH, "3"}, .capture_stdout = true});
    ASSERT_TRUE(child.valid());
    const pid_t pid = child.pid();
    const int err_fd = child.stderr_fd();

    ts::child_process moved = std::move(child);
    EXPECT_FALSE(child.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(child.stderr_fd(), -1);
    EXPECT_EQ(moved.pid(), pid);
    EXPECT_EQ(moved.pgid(), pid);
    EXPECT_EQ(moved.stderr_fd(), err_fd);

    telecap::unique_fd taken = moved.release_stderr();
    EXPECT_EQ(taken.get(), err_fd);
    EXPECT_EQ(moved.stderr_fd(), -1);
    EXPECT_EQ(moved.release(), pid);
    EXPECT_FALSE(moved.valid());
    EXPECT_EQ(wait_exit_code(pid), 3);
}

TEST(spawn, destructor_neither_kills_nor_waits) {
    pid_t pid;
    {
        ts::child_process child = spawn_ok({.argv = {FIXTURE_SIGNAL_ECHO}, .capture_stdout = true});
        ASSERT_TRUE(child.valid());
        std::string out;
        read_until(child.stdout_fd(), out, "ready\n");
        pid = child.pid();
    }
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), 0) << "child should still be running";
    ASSERT_FALSE(ts::forward_signal(pid, SIGKILL, true));
    EXPECT_EQ(wait_exit_code(pid), 128 + SIGKILL);
}

TEST(signals, forwarded_signals_reach_the_child_group) {
    ts::child_process child = spawn_ok({.argv = {FIXTURE_SIGNAL_ECHO}, .capture_stdout = true});
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
    out += read_all(child.stdout_fd());
    EXPECT_TRUE(out.ends_with("got SIGTERM\n")) << out;
    EXPECT_EQ(wait_exit_code(child.pid()), 0);
}

TEST(signals, a_child_ignoring_term_needs_kill) {
    ts::child_process child =
        spawn_ok({.argv = {FIXTURE_SIGNAL_ECHO, "--ignore-term"}, .capture_stdout = true});
    ASSERT_TRUE(child.valid());
    std::string out;
    read_until(child.stdout_fd(), out, "ready\n");
    ASSERT_FALSE(ts::forward_signal(child.pgid(), SIGTERM, true));
    read_until(child.stdout_fd(), out, "got SIGTERM\n");
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(::waitpid(child.pid(), nullptr, WNOHANG), 0) << "TERM should have been ignored";
    ASSERT_FALSE(ts::forward_signal(child.pgid(), SIGKILL, true));
    EXPECT_EQ(wait_exit_code(child.pid()), 128 + SIGKILL);
}

TEST(signals, forwarding_to_a_gone_process_succeeds) {
    ts::child_process child = spawn_ok({.argv = {FIXTURE_EXIT_WITH, "0"}});
    ASSERT_TRUE(child.valid());
    EXPECT_EQ(wait_exit_code(child.pid()), 0);
    EXPECT_FALSE(ts::forward_signal(child.pid(), SIGTERM, false));
    EXPECT_FALSE(ts::forward_signal(child.pgid(), SIGTERM, true));

    // Targets kill() would read as "my own group" or "everyone".
    EXPECT_EQ(ts::forward_signal(0, SIGTERM, true), std::errc::invalid_argument);
    EXPECT_EQ(ts::forward_signal(-1, SIGTERM, false), std::errc::invalid_argument);
    EXPECT_EQ(ts::forward_signal(1, SIGTERM, true), std::errc::invalid_argument);
    EXPECT_EQ(ts::forward_signal(::getpid(), 12345, false), std::errc::invalid_argument);
}

TEST(signals, signalfd_reports_blocked_signals) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    ASSERT_FALSE(ts::block_signals(set, &old));
    auto fd = ts::make_signalfd(set);
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);

    signalfd_siginfo info{};
    EXPECT_EQ(::read(fd->get(), &info, sizeof info), -1);
    EXPECT_EQ(errno, EAGAIN) << "signalfd must be non-blocking";

    ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
    ASSERT_EQ(::read(fd->get(), &info, sizeof info), static_cast<ssize_t>(sizeof info));
    EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR1));
    EXPECT_EQ(info.ssi_pid, static_cast<uint32_t>(::getpid()));
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST(reaper, reap_all_collects_every_exit_and_leaves_no_zombie) {
    ASSERT_TRUE(has_no_children());
    std::map<pid_t, int> expected;
    for (int code = 10; code < 15; ++code) {
        ts::child_process child = spawn_ok({.argv = {FIXTURE_EXIT_WITH, std::to_string(code)}});
        ASSERT_TRUE(child.valid());
        expected[child.pid()] = code;
    }
    std::map<pid_t, int> got;
    const auto deadline = steady::now() + 10s;
    while (got.size() < expected.size() && steady::now() < deadline) {
        for (const ts::reaped& r : ts::reap_all()) got[r.pid] = ts::exit_code_from_status(r.status);
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(got, expected);
    for (const auto& [pid, code] : expected) EXPECT_FALSE(proc_exists(pid)) << pid;
    EXPECT_TRUE(ts::reap_all().empty());
    EXPECT_TRUE(has_no_children());
}

TEST(reaper, subreaper_adopts_and_reaps_orphans) {
    ASSERT_FALSE(ts::become_subreaper());
    ts::child_process child =
        spawn_ok({.argv = {FIXTURE_SPAWN_GRANDCHILD, "30"}, .capture_stdout = true});
    ASSERT_TRUE(child.valid());
    const std::string out = read_all(child.stdout_fd());  // EOF once the middle process exits
    const pid_t grandchild = std::atoi(out.c_str());
    ASSERT_GT(grandchild, 0) << out;
    EXPECT_EQ(wait_exit_code(child.pid()), 0);

    // Now ours: its parent field points at us, and it is still in the child's group.
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    char state;
    pid_t ppid, pgrp;
    fields >> state >> ppid >> pgrp;
    EXPECT_EQ(ppid, ::getpid());
    EXPECT_EQ(pgrp, child.pgid());

    ASSERT_FALSE(ts::forward_signal(child.pgid(), SIGTERM, true));
    int status = -1;
    const auto deadline = steady::now() + 10s;
    while (status == -1 && steady::now() < deadline) {
        for (const ts::reaped& r : ts::reap_all()) {
            if (r.pid == grandchild) status = r.status;
        }
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(ts::exit_code_from_status(status), 128 + SIGTERM);
    EXPECT_FALSE(proc_exists(grandchild));
    EXPECT_TRUE(has_no_children());
}

// A helper process spawns signal_echo and exits; returns the orphan's exit code.
int orphan_exit_code(bool die_with_parent) {
    EXPECT_FALSE(ts::become_subreaper());  // so the orphan comes to us, and we can wait for it
    int pid_pipe[2];
    EXPECT_EQ(::pipe2(pid_pipe, O_CLOEXEC), 0);
    const pid_t helper = ::fork();
    if (helper == 0) {
        auto child = ts::spawn({.argv = {FIXTURE_SIGNAL_ECHO},
                                .capture_stdout = true,
                                .die_with_parent = die_with_parent});
        if (!child) ::_exit(1);
        // Wait for "ready": the orphan then idles, and only the death signal can kill it.
        std::string out;
        read_until(child->stdout_fd(), out, "ready\n");
        const pid_t pid = child->pid();
        if (::write(pid_pipe[1], &pid, sizeof pid) != sizeof pid) ::_exit(1);
        ::_exit(0);
    }
    ::close(pid_pipe[1]);
    pid_t orphan = -1;
    EXPECT_EQ(::read(pid_pipe[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
    ::close(pid_pipe[0]);
    EXPECT_EQ(wait_exit_code(helper), 0);
    if (orphan <= 0) return -1;

    if (!die_with_parent) {
        std::this_thread::sleep_for(200ms);
        EXPECT_EQ(::waitpid(orphan, nullptr, WNOHANG), 0) << "orphan should still run";
        EXPECT_FALSE(ts::forward_signal(orphan, SIGTERM, false));
    }
    return wait_exit_code(orphan);
}

TEST(spawn, die_with_parent_kills_the_orphan) {
    EXPECT_EQ(orphan_exit_code(true), 128 + SIGKILL);
    // Survives its parent; exits 0 on our TERM, unless the write of "got SIGTERM" to the pipe
    // its late parent held raises SIGPIPE first. Either way, not the death signal.
    const int code = orphan_exit_code(false);
    EXPECT_TRUE(code == 0 || code == 128 + SIGPIPE) << code;
}

namespace {

TEST(spawn, the_pipes_telecap_reads_hold_a_megabyte) {
    // A worker that outpaces telecap for a moment goes on writing instead of sleeping on a full
    // pipe. (As root nothing limits it; an unprivileged user past pipe-user-pages-soft keeps
    // 64 KiB pipes, which spawning tolerates.)
    ts::child_spec spec{.argv = {FIXTURE_EXIT_WITH}, .telemetry_fd = 7};
    spec.capture_stdout = true;
    ts::child_process child = spawn_ok(spec);
    ASSERT_TRUE(child.valid());
    const bool limited = ::geteuid() != 0;
    for (int fd : {child.stderr_fd(), child.stdout_fd(), child.telemetry_fd()}) {
        const int size = ::fcntl(fd, F_GETPIPE_SZ);
        if (limited)
            EXPECT_GE(size, 64 * 1024);
        else
            EXPECT_EQ(size, 1 << 20);
    }
    EXPECT_EQ(wait_exit_code(child.pid()), 0);
}

}  // namespace
