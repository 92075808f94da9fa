#pragma once
// Buffered, all-or-error writes to a file descriptor. After the first write error (EPIPE from
// a closed reader, ENOSPC, ...) the writer is failed: it drops further bytes and counts them,
// so a dead output never stops the capture path.

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace telecap {

class fd_writer {
public:
    static constexpr std::size_t default_buffer = 64 * 1024;

    // Writes to `fd` without owning it (stdout, stderr).
    explicit fd_writer(int fd, std::size_t buffer = default_buffer) noexcept;
    // Creates or truncates (or appends to) the file at `path`, mode 0644.
    static Result<fd_writer> open_file(const std::string& path, bool append = false) noexcept;

    fd_writer(fd_writer&&) noexcept = default;
    fd_writer& operator=(fd_writer&&) noexcept = default;
    ~fd_writer() { flush(); }

    std::error_code write(std::string_view bytes) noexcept;
    std::error_code flush() noexcept;

    // The buffer itself, for callers that format in place; call commit() after appending.
    std::string& buffer() noexcept { return buf_; }
    std::error_code commit() noexcept;

    bool failed() const noexcept { return static_cast<bool>(error_); }
    std::error_code error() const noexcept { return error_; }
    std::uint64_t dropped_bytes() const noexcept { return dropped_; }
    int fd() const noexcept { return fd_; }

private:
    std::error_code write_all(std::string_view bytes) noexcept;

    unique_fd owned_;
    int fd_ = -1;
    std::size_t limit_ = default_buffer;
    std::string buf_;
    std::error_code error_;
    std::uint64_t dropped_ = 0;
};

}  // namespace telecap
