// The listeners of `telecap run` against hostile clients, with real sockets and the real
// binary: the Prometheus endpoint (slow, trickling, idle and huge-header connections), the
// control socket (idle clients past its cap, duplicate keys, burst 0), and the stop's one
// deadline with a stalled output reader. Every wait is a deadline on observable state.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "support/sockets.hpp"
#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const std::string bin = TELECAP_BIN;

// Everything until the peer closes, or the deadline.
std::string read_to_close(int fd, clock::duration limit = 10s) {
    std::string out;
    test::read_until_closed(fd, out, clock::now() + limit);
    return out;
}

std::string scrape(int port) {
    const int fd = tcp_connect(port);
    if (fd < 0) return "(connect failed)";
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    std::string r = read_to_close(fd);
    ::close(fd);
    return r;
}

// kB of a /proc/PID/status field (VmRSS, VmHWM), -1 when absent.
long status_kb(pid_t pid, const std::string& field) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    return -1;
}

// The port telecap says it serves /metrics on (stderr, at the default log level).
int logged_port(const std::string& err_path, clock::duration limit = 10s) {
    int port = -1;
    eventually(
        [&] {
            std::smatch m;
            const std::string err = read_file(err_path);
            static const std::regex re("serving /metrics on http://127\\.0\\.0\\.1:([0-9]+)/");
            if (std::regex_search(err, m, re)) port = std::stoi(m[1]);
            return port > 0;
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(limit));
    return port;
}

// A set of connections that each send a header line every `every`: never a whole head.
class tricklers {
public:
    tricklers(int port, int n, std::chrono::milliseconds every) {
        for (int i = 0; i < n; ++i) {
            const int fd = tcp_connect(port);
            if (fd >= 0 && send_all(fd, "GET /metrics HTTP/1.1\r\n")) fds_.push_back(fd);
        }
        thread_ = std::thread([this, port, every] {
            for (long i = 0; !stop_; ++i) {
                for (auto& fd : fds_) {
                    if (send_all(fd, "X-Trickle-" + std::to_string(i) + ": 1\r\n")) continue;
                    // Closed by the server (the head deadline): a new one takes its place,
                    // as a determined client would.
                    ++reconnects_;
                    ::close(fd);
                    fd = tcp_connect(port);
                    if (fd >= 0) send_all(fd, "GET /metrics HTTP/1.1\r\n");
                }
                for (auto until = clock::now() + every; clock::now() < until && !stop_;)
                    std::this_thread::sleep_for(10ms);  // the trickle's pace, not a handshake
            }
        });
    }
    ~tricklers() {
        stop_ = true;
        thread_.join();
        for (int fd : fds_) ::close(fd);
    }
    std::size_t size() const { return fds_.size(); }
    int reconnects() const { return reconnects_; }

private:
    std::vector<int> fds_;
    std::atomic<bool> stop_{false};
    std::atomic<int> reconnects_{0};
    std::thread thread_;
};

pid_t spawn_with_stdio(const std::vector<std::string>& argv, int out, int err) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (out >= 0) ::dup2(out, 1);
        if (err >= 0) ::dup2(err, 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

int wait_exit(pid_t pid, clock::duration limit, bool& timed_out) {
    int status = 0;
    const auto until = clock::now() + limit;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (clock::now() > until) {
            timed_out = true;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(2ms);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// -----------------------------------------------------------------------------------------
// Prometheus

TEST(PrometheusListener, ScrapesGetInAndTermExitsWhateverTheClientsDo) {
    const std::string stats = temp_path("prom-hostile.json");
    auto p = start({bin, "run", "-o", "prometheus:127.0.0.1:0", "-o", "null", "--grace", "1",
                    "--stats", stats, "--", "/bin/sleep", "600"},
                   "prom-hostile");
    const int port = logged_port(p.err_path);
    ASSERT_GT(port, 0) << read_file(p.err_path);
    EXPECT_NE(scrape(port).find("HTTP/1.1 200 OK"), std::string::npos);

    // 40 connections that never send a byte: more than the 32 the server keeps (the oldest
    // waiting ones are evicted).
    std::vector<int> idle;
    for (int i = 0; i < 40; ++i) idle.push_back(tcp_connect(port));
    // Two connections that send a header line every 200 ms (each read() sees fresh bytes).
    tricklers slow(port, 2, 200ms);
    ASSERT_EQ(slow.size(), 2u);
    // Scrapes still get in, every time.
    for (int i = 0; i < 5; ++i) {
        const std::string r = scrape(port);
        EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos) << i << ": " << r.substr(0, 200);
        EXPECT_NE(r.find("telecap_prometheus_connections_closed_total"), std::string::npos);
    }
    // The tricklers are cut at the head deadline (5 s) however steady their pace.
    EXPECT_TRUE(eventually([&] { return slow.reconnects() >= 2; }, 15s));
    EXPECT_NE(scrape(port).find("HTTP/1.1 200 OK"), std::string::npos);

    // A 64 MiB header: answered 431 once the head passes 16 KiB; what was sent past it is
    // read and thrown away, so telecap's memory does not grow with it.
    const long hwm_before = status_kb(p.pid, "VmHWM");
    const int big = tcp_connect(port);
    ASSERT_GE(big, 0);
    send_all(big, "GET /metrics HTTP/1.1\r\nX-Huge: ");
    const std::string chunk(1 << 20, 'a');
    std::string reply;
    char buf[4096];
    for (int i = 0; i < 64; ++i) {
        if (!send_all(big, chunk)) break;  // the server closed: fine, the reply came first
        const ssize_t n = ::recv(big, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) reply.append(buf, static_cast<std::size_t>(n));
    }
    reply += read_to_close(big, 5s);
    ::close(big);
    EXPECT_EQ(reply.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u)
        << reply.substr(0, 200);
    const long hwm_after = status_kb(p.pid, "VmHWM");
    EXPECT_LT(hwm_after - hwm_before, 8 * 1024) << hwm_before << " kB -> " << hwm_after << " kB";

    // SIGTERM with the tricklers and the idle connections still there: out within grace
    // (1 s) + 2 s.
    const auto t0 = clock::now();
    ::kill(p.pid, SIGTERM);
    const auto r = wait(p, 20s);
    const auto took = clock::now() - t0;
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + SIGTERM);  // sleep's own status: it got the TERM
    EXPECT_LT(took, 3s) << std::chrono::duration<double>(took).count() << " s";
    for (int fd : idle) ::close(fd);

    // Counted by reason, said once each.
    const std::string s = read_file(stats);
    for (const char* reason : {"evicted", "slow_head", "head_too_large"}) {
        std::smatch m;
        const std::regex re("telecap_prometheus_connections_closed_total\\{[^}]*reason=[^a-z]*" +
                            std::string(reason) + "[^}]*\\}\":([0-9]+)");
        ASSERT_TRUE(std::regex_search(s, m, re)) << reason << " not in " << s;
        EXPECT_GE(std::stol(m[1]), 1) << reason;
    }
    EXPECT_EQ(count(r.err, "closed a connection: its request head was too large"), 1u) << r.err;
}

// -----------------------------------------------------------------------------------------
// The control socket

TEST(ControlListener, StatusGetsInPastIdleClientsAndNamesThePrometheusPort) {
    const std::string sock = temp_path("idle-ctl.sock");
    ::unlink(sock.c_str());
    auto p = start({bin, "run", "--control", sock, "-o", "prometheus:127.0.0.1:0", "-o", "null",
                    "--grace", "1", "--", "/bin/sleep", "600"},
                   "idle-ctl");
    const int port = logged_port(p.err_path);
    ASSERT_GT(port, 0) << read_file(p.err_path);
    // The control socket listens a moment after the prometheus port is said (on a slow build
    // a connect could come first and be refused).
    ASSERT_TRUE(eventually([&] {
        const int fd = unix_connect(sock);
        if (fd >= 0) ::close(fd);
        return fd >= 0;
    }));
    std::vector<int> idle;
    for (int i = 0; i < 24; ++i) idle.push_back(unix_connect(sock));  // 16 at most are kept
    for (int fd : idle) ASSERT_GE(fd, 0);
    for (int i = 0; i < 3; ++i) {
        const auto r = run({bin, "ctl", "--socket", sock, "status"}, "idle-ctl-status");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(
            r.out.find("prometheus serves http://127.0.0.1:" + std::to_string(port) + "/metrics"),
            std::string::npos)
            << r.out;
    }
    const auto js = run({bin, "ctl", "--socket", sock, "--json", "status"}, "idle-ctl-json");
    EXPECT_NE(js.out.find("\"listeners\":[{\"output\":\"prometheus\",\"url\":\"http://127.0.0.1:" +
                          std::to_string(port) + "/metrics\"}]"),
              std::string::npos)
        << js.out;

    // Duplicate keys and an explicit burst of 0 are refused, with the reason.
    const auto ask = [&](const std::string& line) {
        const int fd = unix_connect(sock);
        send_all(fd, line + "\n");
        std::string got;
        char buf[4096];
        const auto until = clock::now() + 10s;
        while (got.find('\n') == std::string::npos && clock::now() < until) {
            pollfd pf{fd, POLLIN, 0};
            if (::poll(&pf, 1, 50) <= 0) continue;
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        return got;
    };
    EXPECT_NE(ask(R"({"cmd":"toggle","enabled":false,"enabled":true})")
                  .find(R"({"ok":false,"error":"duplicate field \"enabled\")"),
              std::string::npos);
    EXPECT_NE(ask(R"({"cmd":"rate-limit","events_per_second":5,"burst":0})")
                  .find(R"("ok":false,"error":"\"burst\" must be at least 1)"),
              std::string::npos);

    // The idle clients past the cap were evicted (told why); the rest go at the idle limit.
    std::size_t told = 0;
    for (int fd : idle) {
        char buf[512];
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0 && std::string(buf, static_cast<std::size_t>(n)).find("socket is full") !=
                         std::string::npos)
            ++told;
    }
    EXPECT_GE(told, 8u);
    ::kill(p.pid, SIGTERM);
    const auto r = wait(p, 20s);
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.err;
    for (int fd : idle) ::close(fd);
}

// -----------------------------------------------------------------------------------------
// One stop deadline for every writer

// Whether the pipe whose read end is `fd` has no room left (a write would block).
bool pipe_full(int fd) {
    const int w =
        ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (w < 0) return false;
    pollfd p{w, POLLOUT, 0};
    const int n = ::poll(&p, 1, 0);
    ::close(w);
    return n == 0;
}

TEST(StopDeadline, AStalledStdoutReaderStopsWithinGracePlusTwoSeconds) {
    // stdout (the events, -o jsonl) is a pipe nobody reads; the worker floods it and hangs.
    // Before, the handlers and then the streams each got their own bound after the grace
    // period, one after another (grace + 4 s and more). (A stalled stderr reader:
    // RunFaults.AStalledStderrReaderNeverFreezesTheSupervisor in run_test.cpp.)
    for (const char* overflow : {"drop-newest", "block"}) {
        int out[2];
        ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
        const int err = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        const pid_t pid =
            spawn_with_stdio({bin, "run", "--overflow", overflow, "--grace", "1", "-o", "jsonl",
                              "--", FIXTURE_WRITE_LINES, "200000", "telemetry", "hang"},
                             out[1], err);
        ::close(out[1]);
        ::close(err);
        ASSERT_GT(pid, 0);
        ASSERT_TRUE(eventually([&] { return pipe_full(out[0]); }, 20s))
            << (::kill(pid, SIGKILL), "stdout never filled");
        const auto t0 = clock::now();
        ::kill(pid, SIGTERM);
        bool timed_out = false;
        const int code = wait_exit(pid, 20s, timed_out);
        const auto took = clock::now() - t0;
        ::close(out[0]);
        EXPECT_FALSE(timed_out) << overflow;
        EXPECT_EQ(code, 128 + SIGTERM) << overflow;  // the worker's status: it got the TERM
        EXPECT_LT(took, 3s) << overflow << ": " << std::chrono::duration<double>(took).count()
                            << " s";
    }
}

}  // namespace
}  // namespace telecap::test
