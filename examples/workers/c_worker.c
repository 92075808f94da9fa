/* A C worker that emits telemetry with the single-header C emitter.
 *
 *   cc -std=c99 -Wall -I adapters/emitters/c examples/workers/c_worker.c -o /tmp/c_worker
 *   telecap run -- /tmp/c_worker [ITERATIONS]
 *
 * Each iteration times a "tool" in a span (tool.execution.start, then .stop, or .exception
 * every third iteration), reports the result size (tool.result_size) and samples its memory
 * (python.memory.sampled: the catalog's name for a worker's memory sample). It exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "telecap_emit.h"

/* (rss, vms) in bytes from /proc/self/statm; 0 where there is none. */
static void memory_bytes(int64_t* rss, int64_t* vms) {
    long long v = 0, r = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    *rss = *vms = 0;
    if (!f) return;
    if (fscanf(f, "%lld %lld", &v, &r) == 2) {
        const long page = sysconf(_SC_PAGESIZE);
        *vms = (int64_t)v * page;
        *rss = (int64_t)r * page;
    }
    fclose(f);
}

int main(int argc, char** argv) {
    const int iterations = argc > 1 ? atoi(argv[1]) : 3;
    const char* worker = getenv("TELECAP_WORKER_ID");
    char pid[24], request[96];
    int i;
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    fprintf(stderr, "c worker %s (pid %s) starting\n", worker ? worker : "standalone", pid);
    for (i = 0; i < iterations; ++i) {
        telecap_kv md[2];
        telecap_kv size[1];
        telecap_kv mem[2];
        telecap_span s;
        int64_t rss, vms;
        volatile double acc = 0;
        int k;
        md[0] = telecap_str("tool", "checksum");
        md[1] = telecap_str("worker_pid", pid);
        snprintf(request, sizeof request, "req-%s-%d", worker ? worker : "standalone", i);

        s = telecap_span_start("tool.execution", md, TELECAP_COUNT(md), request);
        for (k = 1; k < 100000; ++k) acc += 1.0 / k; /* the "work" */
        fprintf(stderr, "iteration %d: checksum %.6f\n", i, acc);
        if (i % 3 == 2) {
            telecap_span_exception(&s, "ChecksumError", "checksum mismatch in \"block 7\"");
            fprintf(stderr, "iteration %d failed\n", i);
        } else {
            telecap_span_stop(&s);
            size[0] = telecap_i64("message_size", 1000 + i);
            telecap_emit("tool.result_size", size, 1, md, 1, request);
        }
        memory_bytes(&rss, &vms);
        mem[0] = telecap_i64("rss_bytes", rss);
        mem[1] = telecap_i64("vms_bytes", vms);
        telecap_emit("python.memory.sampled", mem, TELECAP_COUNT(mem), NULL, 0, NULL);
    }
    fprintf(stderr, "c worker done\n");
    return 0;
}
