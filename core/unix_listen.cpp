#include "core/unix_listen.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace telecap {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

std::optional<std::string> listen_unix(const std::string& path, int backlog, unix_listening& out) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return "the path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) + " bytes long";
    std::memcpy(addr.sun_path, path.data(), path.size());
    const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
    const socklen_t len = sizeof addr;

    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return "the file exists and is not a socket; remove it or choose another path";
        unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!probe) return "socket: " + errno_text(errno);
        if (::connect(probe.get(), sa, len) == 0 || errno == EAGAIN || errno == EINPROGRESS)
            return "another process is listening there (another telecap?); stop it or "
                   "choose another path";
        if (errno != ECONNREFUSED)
            return "cannot check the socket that is there: " + errno_text(errno);
        // Stale: left by a process that is gone.
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return "cannot remove the stale socket: " + errno_text(errno);
    } else if (errno != ENOENT) {
        return errno_text(errno);
    }

    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return "socket: " + errno_text(errno);
    // 0600 from the start, without touching the process-wide umask (other threads may create
    // files meanwhile): Linux gives the file of an AF_UNIX bind the mode of the socket's own
    // inode less the umask, so nobody else may connect, not even between bind and chmod. The
    // chmod after bind is for a default ACL that would override it.
    if (::fchmod(fd.get(), 0600) != 0) return "fchmod: " + errno_text(errno);
    if (::bind(fd.get(), sa, len) != 0)
        return errno == EADDRINUSE ? "another process created it meanwhile" : errno_text(errno);
    const auto undo = [&](const char* what) -> std::optional<std::string> {
        std::string msg = std::string(what) + ": " + errno_text(errno);
        ::unlink(path.c_str());
        return msg;
    };
    if (::chmod(path.c_str(), 0600) != 0) return undo("chmod");
    if (::lstat(path.c_str(), &st) != 0) return undo("stat");
    if (::listen(fd.get(), backlog) != 0) return undo("listen");
    out.fd = std::move(fd);
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    return std::nullopt;
}

void unlink_if_ours(const std::string& path, const unix_listening& l) noexcept {
    // Only our own socket: not a file someone put there since.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_dev == l.dev && st.st_ino == l.ino)
        ::unlink(path.c_str());
}

}  // namespace telecap
