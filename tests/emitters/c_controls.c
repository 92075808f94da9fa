/* A worker driven by commands on stdin, for tests/emitters/test_control_emitters.py: the C/C++
 * emitter's control pipe (TELECAP_CONTROL_FD). Built as C, and as C++ (-x c++) for
 * telecap::span; the tests also build it with -DTELECAP_CONTROL_POLL_NS=0 (a look at the pipe
 * at every call, so a test knows the emitter has read what it wrote before its command).
 *
 * Commands (one per line, words split on blanks), each answered by one JSON line on stdout:
 *   emit N NAME        telecap_emit() N events named NAME
 *   try NAME...        one telecap_emit() each: "kept" lists 1 (written) or 0 (removed)
 *   span OP            a C span (telecap_span_start + _stop); in C++ a telecap::span
 *   wait SEQ           telecap_controls() until it applied state SEQ (10 s deadline)
 *   status             just the status
 *   threads T N NAME   T threads emit N events each (while the test changes the state)
 *   fork               a child (fork, no exec) looks at the controls, answers, exits; then
 *                      the parent answers
 * The status: the controls (telecap_controls()), telecap_enabled(), how many telecap_emit
 * calls wrote a line ("written"), and the control fd's flags.
 * With arguments "loop N NAME": emit N events and exit (for strace and the bench), after
 * waiting for a disabled state when the first argument is "loop-off".
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "telecap_emit.h"

static long written = 0;

static void status(const char* extra) {
    const telecap_control_info c = telecap_controls();
    const char* fd = getenv("TELECAP_CONTROL_FD");
    int fl = -1, fdfl = -1;
    if (fd) {
        fl = fcntl(atoi(fd), F_GETFL);
        fdfl = fcntl(atoi(fd), F_GETFD);
    }
    printf(
        "{\"seq\": %llu, \"enabled\": %s, \"telecap_enabled\": %s, \"reading\": %s, "
        "\"sampling_rate\": %.17g, \"n_sampling_patterns\": %u, \"n_allow\": %u, "
        "\"n_deny\": %u, \"sampled\": %llu, \"filtered\": %llu, \"written\": %ld, "
        "\"nonblock\": %s, \"cloexec\": %s, \"pid\": %d%s}\n",
        (unsigned long long)c.seq, c.enabled ? "true" : "false",
        telecap_enabled() ? "true" : "false", c.reading ? "true" : "false", c.sampling_rate,
        c.n_sampling_patterns, c.n_allow, c.n_deny, (unsigned long long)c.sampled,
        (unsigned long long)c.filtered, written, fl >= 0 && (fl & O_NONBLOCK) ? "true" : "false",
        fdfl >= 0 && (fdfl & FD_CLOEXEC) ? "true" : "false", (int)getpid(), extra);
    fflush(stdout);
}

static int emit1(const char* name, long i) {
    telecap_kv m[1];
    m[0] = telecap_i64("duration", (int64_t)i);
    if (telecap_emit(name, m, 1, NULL, 0, NULL) == 0) {
        __atomic_add_fetch(&written, 1, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int wait_seq(unsigned long long seq) {
    int i;
    for (i = 0; i < 10000; ++i) {
        if (telecap_controls().seq >= seq) return 1;
        sleep_ms(1);
    }
    return 0;
}

typedef struct job {
    long n;
    const char* name;
} job;

static void* run_job(void* arg) {
    const job* j = (const job*)arg;
    long i;
    for (i = 0; i < j->n; ++i) emit1(j->name, i);
    return NULL;
}

int main(int argc, char** argv) {
    static char line[65536];
    if (argc == 4 && (strcmp(argv[1], "loop") == 0 || strcmp(argv[1], "loop-off") == 0)) {
        long i, n = atol(argv[2]);
        struct timespec a, b;
        if (strcmp(argv[1], "loop-off") == 0)
            while (telecap_enabled()) sleep_ms(1);
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (i = 0; i < n; ++i) emit1(argv[3], i);
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%ld %.3f\n", written,
               ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n);
        return 0;
    }
    while (fgets(line, sizeof line, stdin)) {
        char* words[64];
        int n = 0;
        char* save = NULL;
        char* w = strtok_r(line, " \t\n", &save);
        for (; w && n < 64; w = strtok_r(NULL, " \t\n", &save)) words[n++] = w;
        if (n == 0) continue;
        if (strcmp(words[0], "emit") == 0 && n == 3) {
            long i, count = atol(words[1]);
            for (i = 0; i < count; ++i) emit1(words[2], i);
            status("");
        } else if (strcmp(words[0], "try") == 0) {
            static char kept[4096];
            size_t k = 0;
            int i;
            kept[0] = '\0';
            for (i = 1; i < n; ++i)
                k += (size_t)snprintf(kept + k, sizeof kept - k, "%s%d", i > 1 ? ", " : "",
                                      emit1(words[i], i));
            {
                char extra[4200];
                snprintf(extra, sizeof extra, ", \"kept\": [%s]", kept);
                status(extra);
            }
        } else if (strcmp(words[0], "span") == 0 && n == 2) {
#ifdef __cplusplus
            { telecap::span s(words[1], {{"tool", "cpp"}}); }
#else
            telecap_span s = telecap_span_start(words[1], NULL, 0, NULL);
            telecap_span_stop(&s);
#endif
            status("");
        } else if (strcmp(words[0], "wait") == 0 && n == 2) {
            wait_seq(strtoull(words[1], NULL, 10));
            status("");
        } else if (strcmp(words[0], "threads") == 0 && n == 4) {
            pthread_t t[16];
            job j;
            int i, nt = atoi(words[1]);
            if (nt > 16) nt = 16;
            j.n = atol(words[2]);
            j.name = words[3];
            for (i = 0; i < nt; ++i) pthread_create(&t[i], NULL, run_job, &j);
            for (i = 0; i < nt; ++i) pthread_join(t[i], NULL);
            status("");
        } else if (strcmp(words[0], "status") == 0) {
            status("");
        } else if (strcmp(words[0], "fork") == 0) {
            const pid_t pid = fork();
            if (pid == 0) {
                status(", \"child\": true");
                _exit(0);
            }
            waitpid(pid, NULL, 0);
            status("");
        } else {
            status(", \"error\": \"unknown command\"");
        }
    }
    return 0;
}
