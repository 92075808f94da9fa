#pragma once
// Runs a command for a test: stdout and stderr go to temporary files (no pipe deadlocks),
// with a timeout after which the command is SIGKILLed and the test fails.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace telecap::test {

inline std::string temp_path(const std::string& name) {
    static const std::string dir = [] {
        char tmpl[] = "/tmp/telecap-test-XXXXXX";
        const char* d = ::mkdtemp(tmpl);
        return std::string(d ? d : "/tmp");
    }();
    return dir + "/" + name;
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

struct process {
    pid_t pid = -1;
    std::string out_path, err_path;
};

struct result {
    int status = 0;
    int exit_code = -1;  // exit code, or 128+signal
    bool timed_out = false;
    std::string out, err;
};

// Starts argv with stdin from `in_path` (or /dev/null) and stdout/stderr to files.
inline process start(const std::vector<std::string>& argv, const std::string& tag,
                     const std::string& in_path = "/dev/null") {
    static int counter = 0;
    process p;
    const std::string base = temp_path(tag + "-" + std::to_string(++counter));
    p.out_path = base + ".out";
    p.err_path = base + ".err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&fa, 2, p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (::posix_spawn(&p.pid, args[0], &fa, nullptr, args.data(), environ) != 0) p.pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return p;
}

inline result wait(const process& p, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    result r;
    // Never started (posix_spawn failed: no such program): a pid of -1 must not reach
    // waitpid or kill, where it means every child, every process.
    if (p.pid <= 0) {
        r.err = "could not start the process";
        return r;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const pid_t got = ::waitpid(p.pid, &r.status, WNOHANG);
        if (got == p.pid) break;
        if (got < 0) return r;
        if (std::chrono::steady_clock::now() > deadline) {
            r.timed_out = true;
            ::kill(p.pid, SIGKILL);
            ::waitpid(p.pid, &r.status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.exit_code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
    r.out = read_file(p.out_path);
    r.err = read_file(p.err_path);
    return r;
}

inline result run(const std::vector<std::string>& argv, const std::string& tag = "run",
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return wait(start(argv, tag), timeout);
}

// Polls until `pred` holds or the timeout passes.
template <typename F>
bool eventually(F pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
}

// True when no live process has this pid (a zombie counts as gone: it runs nothing).
inline bool process_gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return true;
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

inline std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
        ++n;
    return n;
}

}  // namespace telecap::test
