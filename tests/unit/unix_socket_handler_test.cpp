// unix_socket_handler (-o unix:PATH): the socket file (mode, umask untouched, stale, live, not a
// socket, unlinked), fan-out of whole lines to every host, late hosts, the budgets (a host that
// never reads is disconnected past max_backlog while the others get everything; the slowest
// goes first past max_total_backlog; hosts past max_hosts or short of fds are refused, EMFILE
// included), counters and warnings, hosts that leave.
#include "outputs/unix_socket_handler.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "capture/event_json.hpp"
#include "core/log.hpp"
#include "core/unique_fd.hpp"
#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

event make_event(int i) {
    event ev;
    ev.name = {"snakepit", "python", "tool", "execution", "stop"};
    ev.measurements.emplace_back("duration", std::int64_t{1000} + i);
    ev.metadata.emplace_back("tool", std::string("search \"q\"\nnext"));  // escaped newline
    ev.metadata.emplace_back("seq", std::to_string(i));
    ev.timestamp_ns = 1700000000000000000 + i;
    ev.correlation_id = "c-" + std::to_string(i);
    return ev;
}

std::string line_of(int i) {
    std::string s;
    append_event_json(s, make_event(i));
    return s;
}

// The process umask as /proc tells it (reading it with umask(2) would change it).
std::string proc_umask() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Umask:", 0) == 0) return line.substr(6);
    return "?";
}

std::size_t open_fds() {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        (void)e;
        ++n;
    }
    return n - 1;  // the iterator's own
}

// The library's logger, captured: the last messages, readable from any thread.
class captured_log {
public:
    captured_log() : sink_(std::make_shared<test::memory_sink>()) {
        auto l = std::make_shared<spdlog::logger>("test", sink_);
        l->set_pattern("%l: %v");
        l->set_level(spdlog::level::info);
        set_logger(std::move(l));
    }
    ~captured_log() { set_logger(nullptr); }
    std::string text() const { return sink_->text(); }

private:
    std::shared_ptr<test::memory_sink> sink_;
};

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
    const auto end = clock::now() + limit;
    while (!pred()) {
        if (clock::now() >= end) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), std::min(path.size(), sizeof a.sun_path - 1));
    return a;
}

unique_fd connect_to(const std::string& path) {
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const auto a = address(path);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    return fd;
}

// Reads whole lines from a host's socket.
class line_reader {
public:
    explicit line_reader(unique_fd fd) : fd_(std::move(fd)) {}

    // Reads until `n` lines came, EOF, or the time limit.
    std::vector<std::string> read(std::size_t n, std::chrono::milliseconds limit = 10s) {
        std::vector<std::string> lines;
        const auto end = clock::now() + limit;
        while (lines.size() < n) {
            take(lines, n);
            if (lines.size() >= n || eof_) break;
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now());
            if (left.count() <= 0) break;
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[65536];
            const ssize_t r = ::read(fd_.get(), buf, sizeof buf);
            if (r > 0)
                buf_.append(buf, static_cast<std::size_t>(r));
            else if (r == 0 || errno != EINTR)
                eof_ = true;
        }
        take(lines, n);
        return lines;
    }
    std::vector<std::string> read_to_eof(std::chrono::milliseconds limit = 20s) {
        return read(static_cast<std::size_t>(-1), limit);
    }
    bool eof() const noexcept { return eof_; }
    const std::string& partial() const noexcept { return buf_; }  // bytes of an unfinished line
    int fd() const noexcept { return fd_.get(); }
    void close() { fd_.reset(); }

private:
    void take(std::vector<std::string>& lines, std::size_t n) {
        std::size_t pos = 0, nl;
        while (lines.size() < n && (nl = buf_.find('\n', pos)) != std::string::npos) {
            lines.push_back(buf_.substr(pos, nl + 1 - pos));
            pos = nl + 1;
        }
        buf_.erase(0, pos);
    }

    unique_fd fd_;
    std::string buf_;
    bool eof_ = false;
};

class UnixSocketHandlerTest : public testing::Test {
protected:
    void SetUp() override {
        spdlog::set_level(spdlog::level::off);  // "host N does not keep up"
        char tmpl[] = "/tmp/telecap-unix-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/s.sock";
    }
    void TearDown() override {
        spdlog::set_level(spdlog::level::info);
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    // Handles events [from, to) and flushes, as the dispatcher does.
    static void emit(unix_socket_handler& h, int from, int to) {
        for (int i = from; i < to; ++i) h.handle(make_event(i));
        h.flush();
    }

    static void expect_lines(const std::vector<std::string>& got, int from, int to) {
        ASSERT_EQ(got.size(), static_cast<std::size_t>(to - from));
        for (int i = from; i < to; ++i)
            ASSERT_EQ(got[static_cast<std::size_t>(i - from)], line_of(i)) << "event " << i;
    }

    std::string dir_;
    std::string path_;
};

TEST_F(UnixSocketHandlerTest, SocketHasMode0600EvenUnderAPermissiveUmask) {
    const mode_t old = ::umask(0);
    auto h = std::make_unique<unix_socket_handler>(path_);
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(h->path(), path_);
}

TEST_F(UnixSocketHandlerTest, ProcessUmaskIsNeverChanged) {
    // Another thread watches the umask while handlers start: a library must not change
    // process-wide state, even for a moment (other threads may create files meanwhile).
    const mode_t old = ::umask(022);
    const std::string expected = proc_umask();
    ASSERT_NE(expected, "?");
    std::atomic<bool> done{false};
    std::atomic<int> changed{0};
    std::thread watcher([&] {
        while (!done.load())
            if (proc_umask() != expected) changed.fetch_add(1);
    });
    for (int i = 0; i < 50; ++i) {
        unix_socket_handler h(path_);
        struct stat st {};
        ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
    }
    done.store(true);
    watcher.join();
    EXPECT_EQ(changed.load(), 0);
    EXPECT_EQ(::umask(old), 022u);  // and as it was after
}

TEST_F(UnixSocketHandlerTest, StaleSocketIsReplaced) {
    {
        // A socket file left by a process that is gone: bound, never unlinked (mode 0777).
        unique_fd old(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const auto a = address(path_);
        const mode_t mask = ::umask(0);
        ASSERT_EQ(::bind(old.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
        ::umask(mask);
    }
    struct stat before {};
    ASSERT_EQ(::lstat(path_.c_str(), &before), 0);
    ASSERT_EQ(before.st_mode & 0777, 0777u);

    unix_socket_handler h(path_);
    struct stat after {};
    ASSERT_EQ(::lstat(path_.c_str(), &after), 0);
    EXPECT_TRUE(S_ISSOCK(after.st_mode));
    EXPECT_EQ(after.st_mode & 0777, 0600u);  // ours now
    line_reader host(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    emit(h, 0, 3);
    expect_lines(host.read(3), 0, 3);
}

TEST_F(UnixSocketHandlerTest, LiveSocketIsAnError) {
    unix_socket_handler first(path_);
    try {
        unix_socket_handler second(path_);
        FAIL() << "a second listener on a live socket";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("another process is listening"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
    }
    // The first one is untouched and still serves.
    struct stat st {};
    ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
    line_reader host(connect_to(path_));
    // The second one's probe connected too (and left): wait for ours.
    ASSERT_TRUE(wait_until(
        [&] { return first.clients_accepted() == 2 && first.clients_connected() == 1; }));
    emit(first, 0, 2);
    expect_lines(host.read(2), 0, 2);
}

TEST_F(UnixSocketHandlerTest, NonSocketFileIsAnError) {
    { std::ofstream(path_) << "precious\n"; }
    EXPECT_THROW(unix_socket_handler h(path_), std::runtime_error);
    std::ifstream in(path_);
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, "precious");  // not removed

    const std::string sub = dir_ + "/d";
    ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
    try {
        unix_socket_handler h(sub);
        FAIL() << "a directory was replaced";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("not a socket"), std::string::npos) << e.what();
    }
}

TEST_F(UnixSocketHandlerTest, BadPathsAreErrors) {
    EXPECT_THROW(unix_socket_handler h(std::string(200, 'x')), std::runtime_error);
    EXPECT_THROW(unix_socket_handler h(""), std::runtime_error);
    EXPECT_THROW(unix_socket_handler h(dir_ + "/missing/s.sock"), std::runtime_error);
}

TEST_F(UnixSocketHandlerTest, TwoHostsReceiveEveryEventAsWholeLines) {
    unix_socket_handler h(path_);
    line_reader a(connect_to(path_));
    line_reader b(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 2; }));

    constexpr int n = 2000;
    std::vector<std::string> got_a, got_b;
    std::thread ra([&] { got_a = a.read(n); });
    std::thread rb([&] { got_b = b.read(n); });
    emit(h, 0, n);
    ra.join();
    rb.join();
    expect_lines(got_a, 0, n);
    expect_lines(got_b, 0, n);
    EXPECT_TRUE(a.partial().empty());
    EXPECT_TRUE(b.partial().empty());
    // The handler counts a send after it returns, so a host can read the bytes first.
    ASSERT_TRUE(wait_until([&] { return h.events_sent() == 2u * n; }));
    EXPECT_EQ(h.events_missed(), 0u);
    const auto info = h.clients();
    ASSERT_EQ(info.size(), 2u);
    EXPECT_EQ(info[0].id, 1u);
    EXPECT_EQ(info[1].id, 2u);
    for (const auto& c : info) {
        EXPECT_EQ(c.sent, static_cast<std::uint64_t>(n));
        EXPECT_EQ(c.backlog, 0u);
    }
}

TEST_F(UnixSocketHandlerTest, CountersForTheStatsFile) {
    unix_socket_handler h(path_);
    line_reader a(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    std::vector<std::string> got;
    std::thread ra([&] { got = a.read(3); });
    emit(h, 0, 3);
    ra.join();
    // The handler counts a send after it returns, so a host can read the bytes first.
    ASSERT_TRUE(wait_until([&] { return h.events_sent() == 3u; }));
    EXPECT_EQ(h.counters_json(),
              R"({"clients_accepted":1,"clients_connected":1,"events_sent":3,"events_missed":0,)"
              R"("clients_refused":{"max_hosts":0,"fds":0},)"
              R"("clients_dropped":{"backlog":0,"total_backlog":0}})");
}

TEST_F(UnixSocketHandlerTest, EventsWithoutHostsAreNeitherSentNorMissed) {
    unix_socket_handler h(path_);
    emit(h, 0, 10);
    EXPECT_EQ(h.clients_connected(), 0u);
    EXPECT_EQ(h.events_sent(), 0u);
    EXPECT_EQ(h.events_missed(), 0u);
}

TEST_F(UnixSocketHandlerTest, LateHostGetsEventsFromThenOn) {
    unix_socket_handler h(path_);
    line_reader early(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    emit(h, 0, 10);
    expect_lines(early.read(10), 0, 10);

    line_reader late(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 2; }));
    emit(h, 10, 20);
    expect_lines(early.read(10), 10, 20);
    expect_lines(late.read(10), 10, 20);  // starts at 10: a whole line, nothing from before
    EXPECT_EQ(h.clients_accepted(), 2u);
}

TEST_F(UnixSocketHandlerTest, StalledHostPastMaxBacklogIsDisconnectedOthersGetEverything) {
    captured_log log;
    unix_socket_options opts;
    opts.max_backlog = 256 * 1024;
    auto h = std::make_unique<unix_socket_handler>(path_, opts);

    line_reader stuck(connect_to(path_));  // id 1: reads nothing until it is disconnected
    ASSERT_TRUE(wait_until([&] { return h->clients_connected() == 1; }));
    line_reader good(connect_to(path_));  // id 2: reads all the time
    ASSERT_TRUE(wait_until([&] { return h->clients_connected() == 2; }));

    // ~2.5 MB of lines in bursts of ~30 KB: the stuck host's socket buffer and backlog
    // (~200 KB + 256 KB) overflow, the good one's never.
    constexpr int rounds = 80, per_round = 100;
    constexpr int n = rounds * per_round;
    std::vector<std::string> got_good;
    std::thread reader([&] { got_good = good.read_to_eof(60s); });

    for (int r = 0; r < rounds; ++r) {
        emit(*h, r * per_round, (r + 1) * per_round);
        // Pace the producer to the good host, never to the stuck one: handle() returns even
        // when the stuck host is past its budget.
        ASSERT_TRUE(wait_until([&] {
            for (const auto& c : h->clients())
                if (c.id == 2) return c.backlog == 0;
            return false;
        })) << "round "
            << r;
        for (const auto& c : h->clients()) EXPECT_LE(c.backlog, opts.max_backlog);
    }

    ASSERT_EQ(h->clients_dropped(unix_drop::backlog), 1u);
    EXPECT_EQ(h->clients_dropped(unix_drop::total_backlog), 0u);
    const auto info = h->clients();
    ASSERT_EQ(info.size(), 1u);
    EXPECT_EQ(info[0].id, 2u);
    EXPECT_EQ(info[0].sent, static_cast<std::uint64_t>(n));
    EXPECT_EQ(h->clients_connected(), 1u);
    const std::uint64_t missed = h->events_missed();
    EXPECT_GT(missed, 0u);

    // The stuck host reads now: what reached its socket before it was cut off, whole lines
    // from the first event on, then EOF (at most the last line cut).
    const auto got_stuck = stuck.read_to_eof(20s);
    EXPECT_TRUE(stuck.eof());
    ASSERT_FALSE(got_stuck.empty());
    expect_lines(got_stuck, 0, static_cast<int>(got_stuck.size()));
    EXPECT_EQ(h->events_sent(), static_cast<std::uint64_t>(n) + got_stuck.size());
    // It was cut off at an event it could not take: everything up to there was sent or missed.
    EXPECT_LE(got_stuck.size() + missed, static_cast<std::size_t>(n));
    EXPECT_TRUE(wait_until([&] {
        return log.text().find("host 1 disconnected") != std::string::npos;
    })) << log.text();
    EXPECT_NE(log.text().find("max_backlog (262144 bytes)"), std::string::npos) << log.text();
    // The output's error for ctl status and top, noted when it is said.
    EXPECT_EQ(h->errors(), 1u);
    EXPECT_EQ(h->last_error(),
              "host 1 disconnected: its backlog passed max_backlog (262144 bytes), " +
                  std::to_string(missed) + " events missed");

    h.reset();
    reader.join();
    expect_lines(got_good, 0, n);
    EXPECT_TRUE(good.eof());
    EXPECT_TRUE(good.partial().empty());
}

TEST_F(UnixSocketHandlerTest, PastMaxTotalBacklogTheSlowestGoesFirst) {
    captured_log log;
    unix_socket_options opts;
    opts.max_backlog = 16 << 20;       // never reached here
    opts.max_total_backlog = 3 << 20;  // 3 MiB for all hosts together
    unix_socket_handler h(path_, opts);

    // The first never reads and is ~2 MB behind the second from the start: far more than its
    // socket buffer can take (~200 KB), so it stays the slowest whatever the I/O thread sends.
    line_reader first(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    const int head = static_cast<int>((2 << 20) / line_of(0).size());
    emit(h, 0, head);
    line_reader second(connect_to(path_));  // never reads either
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 2; }));

    int next = head;
    while (h.clients_dropped(unix_drop::total_backlog) == 0 && next < head + 50000) {
        emit(h, next, next + 100);
        next += 100;
    }
    ASSERT_EQ(h.clients_dropped(unix_drop::total_backlog), 1u);
    EXPECT_EQ(h.clients_dropped(unix_drop::backlog), 0u);
    const auto info = h.clients();
    ASSERT_EQ(info.size(), 1u);
    EXPECT_EQ(info[0].id, 2u);  // the first, the slowest, went
    EXPECT_LE(info[0].backlog, opts.max_total_backlog);
    EXPECT_GT(h.events_missed(), 0u);
    first.read_to_eof(20s);
    EXPECT_TRUE(first.eof());
    EXPECT_TRUE(wait_until([&] {
        return log.text().find("host 1 disconnected") != std::string::npos;
    })) << log.text();
    EXPECT_NE(log.text().find("max_total_backlog (3145728 bytes)"), std::string::npos)
        << log.text();
}

TEST_F(UnixSocketHandlerTest, HostsPastMaxHostsAreRefusedAndCounted) {
    captured_log log;
    unix_socket_options opts;
    opts.max_hosts = 2;
    unix_socket_handler h(path_, opts);
    line_reader a(connect_to(path_));
    line_reader b(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 2; }));

    line_reader c(connect_to(path_));  // accepted and closed at once: EOF, nothing else
    EXPECT_TRUE(c.read_to_eof(10s).empty());
    EXPECT_TRUE(c.eof());
    line_reader d(connect_to(path_));
    EXPECT_TRUE(d.read_to_eof(10s).empty());
    EXPECT_EQ(h.clients_refused(unix_refusal::max_hosts), 2u);
    EXPECT_EQ(h.clients_refused(unix_refusal::fds), 0u);
    EXPECT_EQ(h.clients_accepted(), 2u);
    EXPECT_EQ(h.clients_connected(), 2u);

    // The hosts in are served as before; when one leaves there is room again.
    emit(h, 0, 5);
    expect_lines(a.read(5), 0, 5);
    expect_lines(b.read(5), 0, 5);
    a.close();
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    line_reader e(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 2; }));
    emit(h, 5, 10);
    expect_lines(e.read(5), 5, 10);
    EXPECT_EQ(h.clients_accepted(), 3u);
    EXPECT_TRUE(wait_until([&] {
        return log.text().find(" past max_hosts (2);") != std::string::npos;
    })) << log.text();
    EXPECT_NE(h.counters_json().find(R"("clients_refused":{"max_hosts":2,"fds":0})"),
              std::string::npos)
        << h.counters_json();
}

// Puts RLIMIT_NOFILE's soft limit back at the end of a test.
class nofile_limit {
public:
    nofile_limit() { ::getrlimit(RLIMIT_NOFILE, &saved_); }
    ~nofile_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
    bool set_soft(rlim_t v) {
        rlimit r = saved_;
        r.rlim_cur = v;
        return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
    }

private:
    rlimit saved_{};
};

TEST_F(UnixSocketHandlerTest, HostsAreRefusedWhenFewerThanFdReserveFdsWouldBeLeft) {
    captured_log log;
    unix_socket_options opts;
    opts.fd_reserve = 64;
    unix_socket_handler h(path_, opts);
    nofile_limit limit;
    // Room for the test's own client sockets, not for fd_reserve more.
    ASSERT_TRUE(limit.set_soft(open_fds() + 32));
    line_reader refused(connect_to(path_));
    EXPECT_TRUE(refused.read_to_eof(10s).empty());
    EXPECT_TRUE(refused.eof());
    EXPECT_EQ(h.clients_refused(unix_refusal::fds), 1u);
    EXPECT_EQ(h.clients_accepted(), 0u);

    ASSERT_TRUE(limit.set_soft(open_fds() + 200));
    line_reader in(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    emit(h, 0, 3);
    expect_lines(in.read(3), 0, 3);
    EXPECT_EQ(h.clients_refused(unix_refusal::fds), 1u);
    EXPECT_TRUE(wait_until([&] {
        return log.text().find("refused hosts: 1 short of fds (fd_reserve 64)") !=
               std::string::npos;
    })) << log.text();
}

TEST_F(UnixSocketHandlerTest, OutOfFdsTheSpareFdRefusesHostsAndAcceptGoesOn) {
    captured_log log;
    unix_socket_options opts;
    opts.fd_reserve = 1;
    unix_socket_handler h(path_, opts);
    // UBSan checks a polymorphic access (fmt's buffer, when the refusal is logged) by reading
    // the object through a pipe; with no fd left it cannot, and reports a bad vptr. One
    // message logged before the fds run out puts the checked type in its cache.
    telecap::logger()->warn("{}", "before the fds run out");
    nofile_limit limit;
    ASSERT_TRUE(limit.set_soft(open_fds() + 64));
    // Take every fd but one, which the host's socket takes: telecap's accept gets EMFILE.
    std::vector<unique_fd> fill;
    while (true) {
        unique_fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!fd) break;
        fill.push_back(std::move(fd));
    }
    ASSERT_EQ(errno, EMFILE);
    fill.pop_back();
    line_reader refused(connect_to(path_));
    // Closed at once through the spare fd: the connection does not stay queued (where poll
    // would report it again and again).
    EXPECT_TRUE(refused.read_to_eof(10s).empty());
    EXPECT_TRUE(refused.eof());
    EXPECT_TRUE(wait_until([&] { return h.clients_refused(unix_refusal::fds) == 1; }));
    EXPECT_EQ(h.clients_accepted(), 0u);

    // fds again: the spare is back and hosts are accepted as before.
    fill.clear();
    refused.close();
    line_reader in(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 1; }));
    emit(h, 0, 3);
    expect_lines(in.read(3), 0, 3);
    EXPECT_EQ(h.clients_refused(unix_refusal::fds), 1u);
}

TEST_F(UnixSocketHandlerTest, ZeroBudgetsAreInvalid) {
    for (auto field : {&unix_socket_options::max_hosts, &unix_socket_options::max_backlog,
                       &unix_socket_options::max_total_backlog, &unix_socket_options::fd_reserve}) {
        unix_socket_options opts;
        opts.*field = 0;
        EXPECT_THROW(unix_socket_handler h(path_, opts), std::invalid_argument);
    }
}

TEST_F(UnixSocketHandlerTest, HostsThatLeaveAreRemoved) {
    unix_socket_handler h(path_);
    line_reader leaves(connect_to(path_));
    line_reader full_then_leaves(connect_to(path_));
    line_reader half_closed(connect_to(path_));
    line_reader stays(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 4; }));

    ASSERT_EQ(::shutdown(half_closed.fd(), SHUT_WR), 0);  // done talking, still listening
    leaves.close();
    ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 3; }));

    // Fill one host's socket and queue a backlog for it, then it leaves with all of that
    // unread.
    std::vector<std::string> got_stays, got_half;
    std::thread r1([&] { got_stays = stays.read(3000, 30s); });
    std::thread r2([&] { got_half = half_closed.read(3000, 30s); });
    for (int r = 0; r < 30; ++r) {  // bursts of ~30 KB
        emit(h, r * 100, (r + 1) * 100);
        ASSERT_TRUE(wait_until([&] {
            for (const auto& c : h.clients())
                if (c.id != 2 && c.backlog != 0) return false;
            return true;
        }));
        if (r == 20) {  // ~600 KB: past its socket buffer
            const auto info = h.clients();
            ASSERT_EQ(info.size(), 3u);
            EXPECT_GT(info[0].backlog, 0u);
            full_then_leaves.close();
            ASSERT_TRUE(wait_until([&] { return h.clients_connected() == 2; }));
        }
    }
    r1.join();
    r2.join();
    expect_lines(got_stays, 0, 3000);
    expect_lines(got_half, 0, 3000);
    EXPECT_EQ(h.clients_accepted(), 4u);
    const auto info = h.clients();
    ASSERT_EQ(info.size(), 2u);
    EXPECT_EQ(info[0].id, 3u);
    EXPECT_EQ(info[1].id, 4u);
    // Leaving is not being disconnected: nothing counted as dropped or missed.
    EXPECT_EQ(h.clients_dropped(unix_drop::backlog), 0u);
    EXPECT_EQ(h.clients_dropped(unix_drop::total_backlog), 0u);
    EXPECT_EQ(h.events_missed(), 0u);
}

TEST_F(UnixSocketHandlerTest, DestructionUnlinksTheFileAndEndsTheStreams) {
    auto h = std::make_unique<unix_socket_handler>(path_);
    line_reader host(connect_to(path_));
    ASSERT_TRUE(wait_until([&] { return h->clients_connected() == 1; }));
    for (int i = 0; i < 100; ++i) h->handle(make_event(i));  // no flush: the destructor sends
    h.reset();
    struct stat st {};
    const int rc = ::lstat(path_.c_str(), &st);
    const int err = errno;
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(err, ENOENT);
    expect_lines(host.read_to_eof(), 0, 100);
    EXPECT_TRUE(host.eof());
    EXPECT_THROW(connect_to(path_), std::runtime_error);
}

TEST_F(UnixSocketHandlerTest, DestructionLeavesAFileThatIsNoLongerOurs) {
    auto h = std::make_unique<unix_socket_handler>(path_);
    ASSERT_EQ(::unlink(path_.c_str()), 0);
    { std::ofstream(path_) << "someone else's\n"; }
    h.reset();
    struct stat st {};
    EXPECT_EQ(::lstat(path_.c_str(), &st), 0);
}

}  // namespace
}  // namespace telecap
