// control/request and control/server: the protocol's parsing (strict, checked like the
// config), and the socket on a real event loop without processes: round trips, a malformed
// request, a huge one, a client that never reads, too many clients, the socket file's life.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "control/client.hpp"
#include "control/request.hpp"
#include "control/server.hpp"
#include "core/unique_fd.hpp"
#include "support/sockets.hpp"
#include "support/unit_helpers.hpp"

namespace telecap::control {
namespace {

using namespace std::chrono_literals;

TEST(ControlRequest, ParsesEachCommandWithItsScope) {
    request r;
    ASSERT_FALSE(parse_request(R"({"cmd":"status"})", r));
    EXPECT_EQ(r.cmd, command::status);
    ASSERT_FALSE(parse_request(R"({"cmd":"toggle","enabled":false,"pool":"p"})", r));
    EXPECT_EQ(r.cmd, command::toggle);
    EXPECT_EQ(r.update.enabled, false);
    EXPECT_EQ(r.where.kind, scope_kind::pool);
    EXPECT_EQ(r.where.name, "p");
    ASSERT_FALSE(parse_request(
        R"({"cmd":"sample","rate":3,"patterns":["python.call.*"],"worker":"p-1"})", r));
    EXPECT_EQ(r.update.sample->rate, 1.0);  // clamped
    EXPECT_EQ(r.update.sample->patterns, std::vector<std::string>{"python.call.*"});
    EXPECT_EQ(r.where.kind, scope_kind::worker);
    ASSERT_FALSE(parse_request(R"({"cmd":"filter","deny":["x.*"]})", r));
    EXPECT_TRUE(r.update.filt->allow.empty());  // replaces both lists
    EXPECT_EQ(r.where.kind, scope_kind::global);
    ASSERT_FALSE(parse_request(R"({"cmd":"rate-limit","events_per_second":50})", r));
    EXPECT_EQ(r.update.limit->burst, 50);
    ASSERT_FALSE(parse_request(R"({"cmd":"reset","pool":"p"})", r));
    EXPECT_EQ(r.cmd, command::reset);
    EXPECT_TRUE(parse_request(R"({"cmd":"reset","rate":1})", r));
    ASSERT_FALSE(parse_request(R"({"cmd":"restart","worker":"w"})", r));
    EXPECT_EQ(r.cmd, command::restart);
    EXPECT_FALSE(r.update.enabled || r.update.sample || r.update.filt || r.update.limit);
}

TEST(ControlRequest, RefusesWithAReason) {
    const std::pair<const char*, const char*> bad[] = {
        {"not json", "not JSON"},
        {"[1]", "JSON object"},
        {R"({"enabled":true})", "needs \"cmd\""},
        {R"({"cmd":"reboot"})", "unknown cmd \"reboot\""},
        {R"({"cmd":"reload","pool":"p"})", "unknown field \"pool\" for reload"},
        {R"({"cmd":"toggle"})", "toggle needs \"enabled\""},
        {R"({"cmd":"toggle","enabled":"no"})", "toggle needs \"enabled\""},
        {R"({"cmd":"toggle","enabled":true,"rate":1})", "unknown field \"rate\""},
        {R"({"cmd":"status","pool":"p"})", "unknown field \"pool\""},
        {R"({"cmd":"stop","pool":"p","worker":"w"})", "not both"},
        {R"({"cmd":"stop","pool":""})", "non-empty string"},
        {R"({"cmd":"sample"})", "sample needs \"rate\""},
        {R"({"cmd":"sample","rate":NaN})", "NaN"},
        {R"({"cmd":"sample","rate":"0.5"})", "\"rate\" must be a number"},
        {R"({"cmd":"sample","rate":0.5,"patterns":["a.[b"]})", "unclosed '['"},
        {R"({"cmd":"filter","allow":"a.*"})", "list of strings"},
        {R"({"cmd":"filter","deny":[""]})", "empty pattern"},
        {R"({"cmd":"rate-limit","events_per_second":-1})", "rate limit"},
        {R"({"cmd":"rate-limit","events_per_second":10,"burst":0.5})", "burst"},
        {R"({"cmd":"rate-limit","events_per_second":10,"burst":0})",
         "\"burst\" must be at least 1"},
        {R"({"cmd":"toggle","enabled":true,"enabled":false})", "duplicate field \"enabled\""},
        {R"({"cmd":"stop","cmd":"start"})", "duplicate field \"cmd\""},
        {R"({"cmd":"stop","pool":"a","pool":"b"})", "duplicate field \"pool\""},
    };
    for (const auto& [line, why] : bad) {
        request r;
        const auto e = parse_request(line, r);
        ASSERT_TRUE(e) << line;
        EXPECT_NE(e->find(why), std::string::npos) << line << " -> " << *e;
    }
}

TEST(ControlRequest, RepliesAreOneJsonObject) {
    EXPECT_EQ(error_reply("no \"x\""), R"({"ok":false,"error":"no \"x\""})");
    EXPECT_EQ(ok_reply(R"(,"workers":2)"), R"({"ok":true,"workers":2})");
}

class ControlServerTest : public ::testing::Test {
protected:
    test::temp_dir dir_;
    std::string path_ = dir_ / "ctl.sock";

    unique_fd connect_client() {
        unique_fd fd(test::unix_connect(path_));
        EXPECT_GE(fd.get(), 0) << "cannot connect to " << path_;
        return fd;
    }
    static void send_all(int fd, const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            ASSERT_GT(n, 0);
            off += static_cast<std::size_t>(n);
        }
    }
    // Turns the loop until the client has a whole line (or EOF): the line, "" on EOF.
    static std::string reply(event_loop& loop, int fd, bool* eof = nullptr) {
        std::string got;
        const auto end = test::deadline_in();
        while (std::chrono::steady_clock::now() < end) {
            loop.run_once(5ms);
            char buf[64 * 1024];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
                got.append(buf, static_cast<std::size_t>(n));
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                if (eof) *eof = true;
                return got;
            }
            if (const auto nl = got.find('\n'); nl != std::string::npos) return got.substr(0, nl);
        }
        ADD_FAILURE() << "no reply";
        return got;
    }
};

TEST_F(ControlServerTest, AnswersEachLineAndKeepsGoingAfterAMalformedOne) {
    event_loop loop;
    server s(loop, path_, [](std::string_view line) {
        request r;
        if (auto e = parse_request(line, r)) return error_reply(*e);
        return ok_reply(",\"cmd\":\"" + std::string(to_string(r.cmd)) + "\"");
    });
    struct stat st {};
    ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto c = connect_client();
    send_all(c.get(), "{\"cmd\":\"status\"}\n");
    EXPECT_EQ(reply(loop, c.get()), R"({"ok":true,"cmd":"status"})");
    send_all(c.get(), "{nope\n");
    EXPECT_NE(reply(loop, c.get()).find(R"({"ok":false,"error":"not JSON)"), std::string::npos);
    // Two requests in one write, the second split across writes.
    send_all(c.get(), "{\"cmd\":\"stats\"}\n{\"cmd\":");
    EXPECT_EQ(reply(loop, c.get()), R"({"ok":true,"cmd":"stats"})");
    send_all(c.get(), "\"stop\"}\r\n");
    EXPECT_EQ(reply(loop, c.get()), R"({"ok":true,"cmd":"stop"})");
    EXPECT_EQ(s.disconnected(), 0u);
}

TEST_F(ControlServerTest, AHugeRequestGetsAnErrorAndIsCutOff) {
    event_loop loop;
    server_options o;
    o.max_request = 1024;
    server s(
        loop, path_, [](std::string_view) { return ok_reply(); }, o);
    auto c = connect_client();
    send_all(c.get(), std::string(5000, 'x'));  // no newline: never buffered past the limit
    bool eof = false;
    const std::string r = reply(loop, c.get(), &eof);
    EXPECT_NE(r.find("request longer than 1024 bytes"), std::string::npos) << r;
    EXPECT_TRUE(eof || (reply(loop, c.get(), &eof), eof));
    EXPECT_EQ(s.disconnected(), 1u);
    EXPECT_EQ(s.clients(), 0u);
    // A complete line over the limit too.
    auto d = connect_client();
    send_all(d.get(), std::string(2000, ' ') + "{}\n");
    EXPECT_NE(reply(loop, d.get()).find("request longer"), std::string::npos);
}

TEST_F(ControlServerTest, AClientThatNeverReadsIsPausedThenCutOffAndOthersAreServed) {
    event_loop loop;
    server_options o;
    o.stall_limit = 300ms;
    int answered = 0;
    const std::string big(100 * 1024, 'y');
    server s(
        loop, path_,
        [&](std::string_view line) {
            ++answered;
            return line == "big" ? ok_reply(",\"x\":\"" + big + "\"") : ok_reply();
        },
        o);
    auto lazy = connect_client();
    std::string many;
    for (int i = 0; i < 2000; ++i) many += "big\n";
    // Its requests fill its own socket buffers; it never reads a reply.
    (void)::send(lazy.get(), many.data(), many.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    auto other = connect_client();
    send_all(other.get(), "hello\n");
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(reply(loop, other.get()), R"({"ok":true})");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    // Paused, not answered 2000 times over: a few replies fill its buffers.
    EXPECT_LT(answered, 100);
    EXPECT_TRUE(test::eventually([&] {
        loop.run_once(10ms);
        return s.disconnected() == 1;
    }));
    EXPECT_EQ(s.clients(), 1u);
    send_all(other.get(), "again\n");
    EXPECT_EQ(reply(loop, other.get()), R"({"ok":true})");
}

// A reply larger than the socket buffers (stats of a large pool) reaches a client that reads.
TEST_F(ControlServerTest, AHugeReplyIsDeliveredWhole) {
    event_loop loop;
    const std::string big(3 << 20, 'z');
    server s(loop, path_, [&](std::string_view) { return ok_reply(",\"x\":\"" + big + "\""); });
    auto c = connect_client();
    send_all(c.get(), "x\n");
    const std::string r = reply(loop, c.get());
    EXPECT_EQ(r.size(), big.size() + 18);
    EXPECT_EQ(s.disconnected(), 0u);
}

// Idle clients cannot lock the operator out: at the cap, the client that has waited longest
// for a request makes room (it is told why), and the newcomer is answered.
TEST_F(ControlServerTest, AtTheClientCapTheLongestWaitingClientIsEvicted) {
    event_loop loop;
    server_options o;
    o.max_clients = 16;
    server s(
        loop, path_, [](std::string_view) { return ok_reply(); }, o);
    std::vector<unique_fd> idle;
    for (int i = 0; i < 20; ++i) {
        idle.push_back(connect_client());
        EXPECT_TRUE(test::eventually([&] {
            loop.run_once(5ms);
            return s.accepted() == static_cast<std::uint64_t>(i + 1);
        }));
    }
    EXPECT_EQ(s.clients(), 16u);
    EXPECT_EQ(s.closed(close_reason::evicted), 4u);
    EXPECT_EQ(s.refused(), 0u);
    // The first four went, each told why.
    bool eof = false;
    EXPECT_NE(reply(loop, idle[0].get(), &eof).find("the control socket is full"),
              std::string::npos);
    auto ctl = connect_client();
    send_all(ctl.get(), "{\"cmd\":\"status\"}\n");
    EXPECT_EQ(reply(loop, ctl.get()), R"({"ok":true})");
    EXPECT_EQ(s.closed(close_reason::evicted), 5u);
}

// Only when every client is being answered (replies pending) is a newcomer refused.
TEST_F(ControlServerTest, ANewClientIsRefusedWhenEveryClientHasRepliesPending) {
    event_loop loop;
    server_options o;
    o.max_clients = 2;
    const std::string big(1 << 20, 'y');
    server s(
        loop, path_, [&](std::string_view) { return ok_reply(",\"x\":\"" + big + "\""); }, o);
    auto a = connect_client();
    auto b = connect_client();
    send_all(a.get(), "x\n");  // neither reads its megabyte
    send_all(b.get(), "x\n");
    // Both answered: the head of each reply has arrived, the rest (more than the socket
    // buffers hold) is pending.
    ASSERT_TRUE(test::eventually([&] {
        loop.run_once(5ms);
        char byte;
        return ::recv(a.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1 &&
               ::recv(b.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
    }));
    auto c = connect_client();
    EXPECT_NE(reply(loop, c.get()).find("too many control clients"), std::string::npos);
    EXPECT_EQ(s.refused(), 1u);
    EXPECT_EQ(s.closed(close_reason::evicted), 0u);
}

// A client that trickles a request (or sends nothing) is cut at idle_limit, told why.
TEST_F(ControlServerTest, AClientWithoutAWholeRequestIsCutAtTheIdleLimit) {
    event_loop loop;
    server_options o;
    o.idle_limit = 300ms;
    std::vector<close_reason> reported;
    o.on_close = [&](close_reason r) { reported.push_back(r); };
    server s(
        loop, path_, [](std::string_view) { return ok_reply(); }, o);
    auto talker = connect_client();
    send_all(talker.get(), "x\n");
    EXPECT_EQ(reply(loop, talker.get()), R"({"ok":true})");
    auto trickler = connect_client();
    const auto t0 = std::chrono::steady_clock::now();
    bool eof = false;
    std::string got;
    // A byte every 20 ms, never a newline: fresh bytes do not extend the limit.
    while (!eof && std::chrono::steady_clock::now() - t0 < 5s) {
        (void)::send(trickler.get(), "{", 1, MSG_NOSIGNAL);
        loop.run_once(20ms);
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(trickler.get(), buf, sizeof buf, MSG_DONTWAIT)) > 0)
            got.append(buf, static_cast<std::size_t>(n));
        eof = n == 0 || (n < 0 && errno != EAGAIN);
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(eof);
    EXPECT_GE(took, 280ms);
    EXPECT_LT(took, 2s);
    EXPECT_NE(got.find("no whole request within 300 ms"), std::string::npos) << got;
    // The talker, idle since its reply, went too.
    EXPECT_TRUE(test::eventually([&] {
        loop.run_once(10ms);
        return s.clients() == 0;
    }));
    EXPECT_EQ(s.closed(close_reason::idle), 2u);
    EXPECT_EQ(reported, (std::vector<close_reason>{close_reason::idle, close_reason::idle}));
}

TEST_F(ControlServerTest, StaleSocketReplacedLiveOneRefusedFileRemovedAtTheEnd) {
    {
        // A stale socket: bound, then its process (here: its fd) gone.
        unique_fd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    event_loop loop;
    {
        server s(loop, path_, [](std::string_view) { return ok_reply(); });
        try {
            server t(loop, path_, [](std::string_view) { return ok_reply(); });
            ADD_FAILURE() << "a live socket was taken over";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("another process is listening"), std::string::npos)
                << e.what();
        }
    }
    struct stat st {};
    EXPECT_NE(::lstat(path_.c_str(), &st), 0);  // removed with the server
}

TEST_F(ControlServerTest, ClientExchangeAgainstTheServerAndWithoutOne) {
    std::string r;
    const auto e = exchange(path_, "{}", 1s, r);
    ASSERT_TRUE(e);
    EXPECT_NE(e->find("cannot connect"), std::string::npos) << *e;
}

}  // namespace
}  // namespace telecap::control
