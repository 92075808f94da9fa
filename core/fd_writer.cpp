#include "core/fd_writer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace telecap {

fd_writer::fd_writer(int fd, std::size_t buffer) noexcept : fd_(fd), limit_(buffer) {}

Result<fd_writer> fd_writer::open_file(const std::string& path, bool append) noexcept {
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno_code(errno);
    fd_writer w(fd);
    w.owned_.reset(fd);
    return w;
}

std::error_code fd_writer::write_all(std::string_view bytes) noexcept {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
        if (n >= 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {  // a non-blocking fd we were handed: wait until it drains
            pollfd p{fd_, POLLOUT, 0};
            ::poll(&p, 1, -1);
            continue;
        }
        error_ = errno_code(errno);
        dropped_ += bytes.size();
        return error_;
    }
    return {};
}

std::error_code fd_writer::write(std::string_view bytes) noexcept {
    if (error_) {
        dropped_ += bytes.size();
        return error_;
    }
    if (buf_.size() + bytes.size() > limit_) {
        if (auto ec = flush()) return ec;
        if (bytes.size() >= limit_) return write_all(bytes);
    }
    buf_.append(bytes);
    return {};
}

std::error_code fd_writer::commit() noexcept {
    if (error_) {
        dropped_ += buf_.size();
        buf_.clear();
        return error_;
    }
    return buf_.size() >= limit_ ? flush() : std::error_code{};
}

std::error_code fd_writer::flush() noexcept {
    if (buf_.empty() || fd_ < 0) return error_;
    if (error_) {
        dropped_ += buf_.size();
        buf_.clear();
        return error_;
    }
    const auto ec = write_all(buf_);
    buf_.clear();
    return ec;
}

}  // namespace telecap
