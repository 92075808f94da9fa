// A worker for the benchmarks that formats each line itself (snprintf, as an emitter would)
// and writes it with one write(2) to stderr: 4 telemetry lines of 5, the rest log lines.
// Usage: bench_format_writer LINES
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "write_all.hpp"

int main(int argc, char** argv) {
    const long lines = argc > 1 ? std::atol(argv[1]) : 100000;
    static const char* const tools[] = {"search", "rank", "embed", "parse"};
    char buf[512];
    for (long i = 0; i < lines; ++i) {
        int n;
        if (i % 5 == 4)
            n = std::snprintf(buf, sizeof buf, "INFO worker processed request %08lx in %ld ms\n",
                              static_cast<unsigned long>(i * 2654435761u), i % 997);
        else
            n = std::snprintf(buf, sizeof buf,
                              "TELEMETRY:{\"event\": \"python.call.stop\", \"measurements\": "
                              "{\"duration\": %ld, \"count\": 1}, \"metadata\": {\"tool\": \"%s\", "
                              "\"session_id\": \"s%04lx\"}, \"timestamp_ns\": %ld, "
                              "\"correlation_id\": \"%08lx\"}\n",
                              (i * 7919) % 1000000007, tools[i % 4], i % 65536,
                              1700000000000000000L + i * 1000, static_cast<unsigned long>(i));
        if (!write_all(2, buf, static_cast<size_t>(n))) return 1;
    }
    return 0;
}
