#include "core/service_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "core/unique_fd.hpp"

namespace telecap {

service_notifier service_notifier::from_environment() {
    const char* v = std::getenv("NOTIFY_SOCKET");
    service_notifier n(v ? std::string(v) : std::string());
    ::unsetenv("NOTIFY_SOCKET");
    return n;
}

bool service_notifier::send(std::string_view state) const noexcept {
    sockaddr_un addr{};
    // A path (absolute) or an abstract name ("@name"); anything else (vsock:...) is not ours.
    if (address_.empty() || address_.size() >= sizeof addr.sun_path ||
        (address_[0] != '/' && address_[0] != '@'))
        return false;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    if (address_[0] == '@')
        addr.sun_path[0] = '\0';  // the abstract namespace: no terminating NUL counted
    else
        ++len;
    const unique_fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    const ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&addr), len);
    return n == static_cast<ssize_t>(state.size());
}

}  // namespace telecap
