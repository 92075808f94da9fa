#pragma once
// The benchmark workers' one write(2) per line: the whole line, or false on an error.
#include <unistd.h>

#include <cerrno>
#include <cstddef>

inline bool write_all(int fd, const char* p, std::size_t left) {
    while (left > 0) {
        const ssize_t w = ::write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return false;
        p += w;
        left -= static_cast<std::size_t>(w);
    }
    return true;
}
