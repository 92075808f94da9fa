// A worker for the benchmarks: writes a file to stderr one line per write(2), as the emitters
// do (one write per event). Usage: bench_writer FILE [LINES]  (LINES: stop after that many).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "write_all.hpp"

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) return 2;
    const long limit = argc > 2 ? std::atol(argv[2]) : -1;
    char* line = nullptr;
    size_t cap = 0;
    long n = 0;
    ssize_t len;
    while ((limit < 0 || n < limit) && (len = ::getline(&line, &cap, in)) > 0) {
        if (!write_all(2, line, static_cast<size_t>(len))) return 1;
        ++n;
    }
    std::free(line);
    return 0;
}
