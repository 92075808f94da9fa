// net/http_server: the limits, with real sockets and short deadlines. Every wait is a deadline
// on observable state (a reply, a close, a counter), never a sleep.
#include "net/http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/sockets.hpp"
#include "support/unit_helpers.hpp"

namespace telecap::net {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

using test::read_until_closed;
using test::send_all;

int connect_to(int port) { return test::tcp_connect(port); }

// Reads one reply with a Content-Length (or the deadline): its whole text. What came after
// it stays in `out` for the next call.
std::string read_reply(int fd, std::string& out, clock::time_point deadline) {
    char buf[65536];
    while (clock::now() < deadline) {
        const auto head_end = out.find("\r\n\r\n");
        if (head_end != std::string::npos) {
            const auto cl = out.find("Content-Length: ");
            const std::size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
            if (out.size() >= head_end + 4 + len) {
                std::string reply = out.substr(0, head_end + 4 + len);
                out.erase(0, reply.size());
                return reply;
            }
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

http_server::handler hello() {
    return [](const http_request& r) {
        http_response res;
        res.body = "hello " + std::string(r.path) + " " + std::string(r.header("accept")) + "\n";
        return res;
    };
}

std::string scrape(int port, std::string_view path = "/metrics") {
    const int fd = connect_to(port);
    if (fd < 0) return "connect failed";
    send_all(fd, "GET " + std::string(path) +
                     " HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nConnection: close\r\n\r\n");
    std::string out;
    read_until_closed(fd, out, clock::now() + 5s);
    ::close(fd);
    return out;
}

TEST(HttpServerTest, AnswersAndKeepsAliveWithPipelinedRequests) {
    http_server s("127.0.0.1", 0, hello());
    const int fd = connect_to(s.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "GET /a HTTP/1.1\r\nAccept: x/y\r\n\r\nGET /b HTTP/1.1\r\n\r\n"));
    std::string buffered;
    const auto first = read_reply(fd, buffered, clock::now() + 5s);
    EXPECT_NE(first.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << first;
    EXPECT_NE(first.find("Connection: keep-alive"), std::string::npos) << first;
    EXPECT_NE(first.find("hello /a x/y\n"), std::string::npos) << first;
    const auto second = read_reply(fd, buffered, clock::now() + 5s);
    EXPECT_NE(second.find("hello /b \n"), std::string::npos) << second;
    ::close(fd);
    EXPECT_EQ(s.requests(), 2u);
}

TEST(HttpServerTest, NotHttpIs400AndOtherMethods405) {
    http_server s("127.0.0.1", 0, hello());
    int fd = connect_to(s.port());
    ASSERT_TRUE(send_all(fd, "hello there\r\n\r\n"));
    std::string out;
    EXPECT_TRUE(read_until_closed(fd, out, clock::now() + 5s));
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
    ::close(fd);
    fd = connect_to(s.port());
    ASSERT_TRUE(send_all(fd, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
    out.clear();
    EXPECT_TRUE(read_until_closed(fd, out, clock::now() + 5s));  // a body: closed after
    EXPECT_EQ(out.rfind("HTTP/1.1 405", 0), 0u) << out;
    ::close(fd);
    EXPECT_EQ(s.closed(http_close_reason::bad_request), 1u);
}

TEST(HttpServerTest, ATrickledHeadIsClosedAtTheHeadDeadline) {
    http_server_options o;
    o.head_deadline = 400ms;
    http_server s("127.0.0.1", 0, hello(), o);
    const int fd = connect_to(s.port());
    ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\n"));
    const auto t0 = clock::now();
    // A header line every 50 ms: each read() sees fresh bytes, the head never ends.
    bool closed = false;
    for (int i = 0; !closed && clock::now() - t0 < 5s; ++i) {
        closed = !send_all(fd, "X-Slow-" + std::to_string(i) + ": 1\r\n");
        pollfd p{fd, POLLIN, 0};
        if (!closed && ::poll(&p, 1, 50) > 0) {
            char c;
            closed = ::recv(fd, &c, 1, 0) <= 0;
        }
    }
    const auto took = clock::now() - t0;
    ::close(fd);
    EXPECT_TRUE(closed);
    EXPECT_GE(took, 350ms);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(s.closed(http_close_reason::slow_head), 1u);
}

TEST(HttpServerTest, AHugeHeadIsAnswered431WithoutBeingBuffered) {
    http_server_options o;
    o.max_head = 16 * 1024;
    http_server s("127.0.0.1", 0, hello(), o);
    const int fd = connect_to(s.port());
    // 20 KiB of one header line and nothing more: the reply comes without the head ending,
    // so the server answered from what it had (at most max_head + 1 bytes), not the whole.
    ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(20 * 1024, 'a')));
    std::string out;
    EXPECT_TRUE(read_until_closed(fd, out, clock::now() + 5s));
    EXPECT_EQ(out.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u) << out;
    ::close(fd);
    EXPECT_EQ(s.closed(http_close_reason::head_too_large), 1u);
    EXPECT_NE(scrape(s.port()).find("200 OK"), std::string::npos);  // still serving
}

TEST(HttpServerTest, AScraperGetsInPastTheConnectionCap) {
    http_server_options o;
    o.max_connections = 4;
    http_server s("127.0.0.1", 0, hello(), o);
    std::vector<int> idle;
    for (int i = 0; i < 12; ++i) idle.push_back(connect_to(s.port()));  // never send a byte
    ASSERT_TRUE(test::eventually([&] {
        return s.closed(http_close_reason::evicted) >= 8 && s.connections() == 4;
    })) << s.closed(http_close_reason::evicted)
        << " " << s.connections();
    const auto reply = scrape(s.port());
    EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
    EXPECT_GE(s.closed(http_close_reason::evicted), 9u);
    for (int fd : idle) ::close(fd);
}

TEST(HttpServerTest, AReaderThatStallsIsCutAtTheWriteDeadline) {
    http_server_options o;
    o.write_deadline = 300ms;
    http_server s(
        "127.0.0.1", 0,
        [](const http_request&) {
            http_response r;
            r.body.assign(32 << 20, 'x');  // far more than the socket buffers hold
            return r;
        },
        o);
    const int fd = connect_to(s.port());
    ASSERT_TRUE(send_all(fd, "GET / HTTP/1.1\r\n\r\n"));  // and never read
    EXPECT_TRUE(test::eventually([&] { return s.closed(http_close_reason::slow_reader) == 1; }));
    ::close(fd);
}

TEST(HttpServerTest, StopDoesNotWaitForClients) {
    auto s = std::make_unique<http_server>("127.0.0.1", 0, hello());
    std::vector<int> fds;
    for (int i = 0; i < 8; ++i) {
        fds.push_back(connect_to(s->port()));
        send_all(fds.back(), "GET /metrics HTTP/1.1\r\nX-Half: ");  // a head begun, never ended
    }
    ASSERT_TRUE(test::eventually([&] { return s->connections() == 8; }));
    const auto t0 = clock::now();
    s.reset();
    EXPECT_LT(clock::now() - t0, 500ms);
    for (int fd : fds) {
        std::string out;
        EXPECT_TRUE(read_until_closed(fd, out, clock::now() + 2s));  // closed by the stop
        ::close(fd);
    }
}

// CPU time (user + system, clock ticks) of a process so far.
long cpu_ticks(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), {});
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) stime = std::stol(field);
    }
    return utime + stime;
}

TEST(HttpServerTest, OutOfFdsPausesAcceptingInsteadOfSpinning) {
    // The server runs in a child whose fd limit leaves no room for a new connection: accept4
    // fails with EMFILE while the connections wait in the backlog (the listening socket stays
    // readable). The server must pause accepting, not poll and fail in a loop.
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        http_server s("127.0.0.1", 0, hello());
        int highest = 0;
        for (int fd = 0; fd < 1024; ++fd)
            if (::fcntl(fd, F_GETFD) != -1) highest = fd;
        const rlimit lim{static_cast<rlim_t>(highest + 1), static_cast<rlim_t>(highest + 1)};
        ::setrlimit(RLIMIT_NOFILE, &lim);
        while (::open("/dev/null", O_RDONLY) >= 0) {  // fill every free fd below the limit
        }
        const int port = s.port();
        (void)!::write(ready[1], &port, sizeof port);
        ::pause();  // killed by the parent
        ::_exit(0);
    }
    ::close(ready[1]);
    int port = 0;
    ASSERT_EQ(::read(ready[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
    ::close(ready[0]);
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) fds.push_back(connect_to(port));  // queued in the backlog
    const long before = cpu_ticks(child);
    std::this_thread::sleep_for(1s);  // a measuring window, not a handshake
    const long spent = cpu_ticks(child) - before;
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    for (int fd : fds) ::close(fd);
    // Spinning takes a whole core (~100 ticks a second); pausing 100 ms at a time, almost none.
    EXPECT_LT(spent, 20) << "ticks of CPU in 1 s";
}

TEST(HttpServerTest, ABadAddressNamesIt) {
    http_server first("127.0.0.1", 0, hello());
    try {
        http_server second("127.0.0.1", first.port(), hello());
        FAIL() << "bound twice";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace telecap::net
