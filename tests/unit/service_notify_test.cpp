// service_notifier: NOTIFY_SOCKET taken out of the environment, states sent as one datagram to
// a path or an abstract name, nothing done without it.
#include "core/service_notify.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

// A datagram socket bound at `address` ("/path" or "@abstract").
int bound(const std::string& address) {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, address.data(), address.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    if (address[0] == '@') a.sun_path[0] = '\0';
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0) << std::strerror(errno);
    return fd;
}

std::string receive(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return "(nothing)";
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n < 0 ? "(error)" : std::string(buf, static_cast<std::size_t>(n));
}

TEST(ServiceNotify, TakesTheSocketOutOfTheEnvironmentAndSendsToIt) {
    test::temp_dir dir;
    const std::string path = dir / "notify.sock";
    const int fd = bound(path);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    const auto n = service_notifier::from_environment();
    EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);  // workers do not inherit it
    EXPECT_TRUE(n.active());
    EXPECT_TRUE(n.send("READY=1"));
    EXPECT_EQ(receive(fd), "READY=1");
    EXPECT_TRUE(n.send("RELOADING=1\nMONOTONIC_USEC=5"));
    EXPECT_EQ(receive(fd), "RELOADING=1\nMONOTONIC_USEC=5");
    ::close(fd);
}

TEST(ServiceNotify, AbstractNamespace) {
    const std::string name = "@telecap-notify-test-" + std::to_string(::getpid());
    const int fd = bound(name);
    const service_notifier n(name);
    EXPECT_TRUE(n.send("STOPPING=1"));
    EXPECT_EQ(receive(fd), "STOPPING=1");
    ::close(fd);
}

TEST(ServiceNotify, WithoutASocketNothingIsSent) {
    ::unsetenv("NOTIFY_SOCKET");
    const auto n = service_notifier::from_environment();
    EXPECT_FALSE(n.active());
    EXPECT_FALSE(n.send("READY=1"));
    EXPECT_FALSE(service_notifier("vsock:2:1").send("READY=1"));          // not a Unix address
    EXPECT_FALSE(service_notifier("/nonexistent/sock").send("READY=1"));  // nobody there
}

}  // namespace
}  // namespace telecap
