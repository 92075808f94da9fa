/* telecap_emit.h: write telemetry lines that telecap (and Snakepit's stderr design) accept.
 *
 * Single header, C99 (POSIX) and C++11 or later; no library to link. Copy it into your tree.
 *
 *     #include "telecap_emit.h"
 *
 *     telecap_kv m[] = { telecap_i64("rss_bytes", rss), telecap_i64("vms_bytes", vms) };
 *     telecap_kv md[] = { telecap_str("tool", "search"), telecap_bool("cached", 1) };
 *     telecap_emit("python.memory.sampled", m, TELECAP_COUNT(m), md, TELECAP_COUNT(md), NULL);
 *
 *     // C spans
 *     telecap_span s = telecap_span_start("tool.execution", md, TELECAP_COUNT(md), "req-1");
 *     ...
 *     telecap_span_stop(&s);           // or telecap_span_exception(&s, "IOError", "disk full")
 *
 *     // C++ spans: start now, stop at scope exit, "exception" if left by an exception
 *     telecap::span s("tool.execution", {{"tool", "search"}});
 *
 * The line is the one Python's json.dumps(payload, ensure_ascii=False) would give, byte for
 * byte, after "TELEMETRY:":
 *
 *     TELEMETRY:{"event": "E", "measurements": {...}, "metadata": {...},
 *                "timestamp_ns": N, "correlation_id": ""}\n
 *
 * - Values: int64 as an integer; double as Python's repr() would print it (shortest
 *   round-trip: 0.1, 2.0, 1e+16, 1.5e-05), NaN/Infinity/-Infinity as the bare tokens
 *   json.dumps writes; bool as true/false; strings JSON-escaped: '"', '\\', \b \f \n \r \t,
 *   other control bytes as \u00XX, valid UTF-8 passed through, invalid UTF-8 (overlong,
 *   surrogate, truncated, > U+10FFFF) replaced with U+FFFD as Python's
 *   bytes.decode("utf-8", "replace") does (one per maximal ill-formed subpart). A NULL
 *   string is "".
 * - A NULL correlation_id is "" (telecap then reports none); a NULL metadata array is {}.
 * - The line is formatted into a stack buffer of TELECAP_EMIT_BUFSIZE bytes (default 8192;
 *   #define it before the #include to change it). A longer line is not written: a
 *   "TELEMETRY_ERROR: ..." line is written instead and telecap_emit returns -1.
 * - Exactly one write(2) per line, retried on EINTR and continued after a partial write (only
 *   possible past PIPE_BUF). Lines never interleave, whatever their size: each is written
 *   under a lock, a spin lock among this process's threads, plus, when the fd is a pipe or a
 *   socket, a POSIX record lock on it (fcntl F_SETLKW) that other processes' emitters take
 *   in turn (fork children, the Python emitter): the pipe itself keeps only writes of up to
 *   PIPE_BUF (4 KiB) whole, and a short one can land inside a long one that waited for room.
 *   Two fcntl(2) calls per line (and an fstat(2) when the fd changes). TELECAP_EMIT_LOCK=off
 *   (read at each call), or #define TELECAP_EMIT_NO_LOCK, skips it all. Writers that do not
 *   take the lock (plain fprintf to stderr, the shell emitter) are not held back.
 * - Destination: the fd in TELECAP_TELEMETRY_FD when it is a valid integer (telecap run
 *   --telemetry-fd N sets it), else stderr (fd 2). TELECAP_TELEMETRY=off makes every call a
 *   no-op. Both are read at each call (getenv), so do not setenv() them from another thread
 *   while emitting.
 * - Never aborts, never raises, never kills: a failed write of the line gives a
 *   TELEMETRY_ERROR line on stderr when stderr is a different fd; a closed pipe (EPIPE) is
 *   dropped quietly, and the SIGPIPE it raises is blocked and consumed for the duration of
 *   the write (define TELECAP_EMIT_NO_SIGPIPE_GUARD to skip that, e.g. when SIGPIPE is
 *   ignored anyway). errno is preserved.
 * - Return value: 0 written, 1 not written on purpose (TELECAP_TELEMETRY=off, or telecap's
 *   controls removed it), -1 dropped.
 *
 * Controls from telecap (telecap run --telemetry-fd N gives the worker a control pipe at the fd
 * in TELECAP_CONTROL_FD; docs/control.md, "The control pipe"). No thread: telecap_emit itself
 * looks at the pipe, at its first call and then at most every TELECAP_CONTROL_POLL_NS (default
 * 100 ms; #define it before the #include), deciding with CLOCK_MONOTONIC_COARSE (the vDSO: no
 * system call). So a call makes no system call for the controls unless a look is due; then one
 * read(2) per 4 KiB waiting, plus a getpid(2). The latest state applies before anything is
 * formatted: the toggle, then sampling (an independent draw per event, a per-thread
 * xorshift64* seeded from the clocks, the pid and an address, never rand(); only names
 * matching sampling_patterns when there are any), then the filter (Python's
 * fnmatch.fnmatchcase on the wire name, "<op>.start" and so on for spans: '*' crosses dots,
 * '?', "[seq]", "[!seq]", on code points, case-sensitive; deny wins; an empty allow list
 * allows all). An event they remove costs about 10 ns (telemetry off) to 30 ns (a pattern
 * matched), and returns 1; spans (C and C++) are gated event by event, as in Python. Each line
 * written under a state carries "control_seq": N (the state it was decided under), so telecap
 * does not sample it again. telecap_enabled() also says 0 while the toggle is off;
 * telecap_controls() tells the state in force and how many events it removed here.
 * - The fd is taken only when it is above 2 and a pipe or a socket (else one TELEMETRY_ERROR
 *   line says why, and there are no controls here: telecap applies them all).
 * - The pipe is made non-blocking and close-on-exec at the first look. Only complete lines
 *   count, and of those read at one look only the last; a partial line waits for its end.
 *   A line that is not a state this emitter understands changes nothing (the previous state
 *   stays). A state it cannot hold (a line over 8 KiB, or over 64 patterns in a list) means no
 *   controls here and no tag: telecap applies it all. At EOF (telecap went away) or EBADF (the
 *   worker closed the fd) the last state stays and the pipe is not read again.
 *   TELECAP_TELEMETRY=off: the pipe is not read at all.
 * - Threads: one thread looks at a time (a try-lock; the others go on with the state in force,
 *   except before the first look is over, which they wait for). States live in two slots
 *   swapped by one atomic word; a thread matching names holds a count on its slot, and a new
 *   state goes into the other slot only when no thread holds it (else at the next call). The
 *   state is one per program even when several translation units include this header (a weak
 *   symbol; GCC and Clang builtins for the atomics).
 * - fork() without exec: the child keeps the last state and stops reading at its next look
 *   (the parent reads the pipe: two readers would each miss what the other read); it draws
 *   its own random numbers from then on.
 *
 * Build: with -std=c99 (strict ISO mode) define _POSIX_C_SOURCE 200809L before any #include;
 * the default gnu modes need nothing. C++: any C++11 compiler. No -lm needed.
 */
#ifndef TELECAP_EMIT_H
#define TELECAP_EMIT_H

#if defined(__STRICT_ANSI__) && !defined(__cplusplus) && !defined(_POSIX_C_SOURCE) && \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#error "telecap_emit.h needs POSIX: #define _POSIX_C_SOURCE 200809L before any #include"
#endif

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef TELECAP_EMIT_BUFSIZE
#define TELECAP_EMIT_BUFSIZE 8192
#endif

#define TELECAP_COUNT(array) (sizeof(array) / sizeof((array)[0]))

typedef enum telecap_type {
    TELECAP_TYPE_INT = 0, /* int64_t */
    TELECAP_TYPE_DOUBLE,  /* double */
    TELECAP_TYPE_STRING,  /* const char*, UTF-8, NUL-terminated */
    TELECAP_TYPE_BOOL     /* int: 0 false, anything else true */
} telecap_type;

/* One measurement or metadata entry. Build it with telecap_i64/_f64/_str/_bool. */
typedef struct telecap_kv {
    const char* key;
    telecap_type type;
    union {
        int64_t i;
        double d;
        const char* s;
        int b;
    } v;
} telecap_kv;

static inline telecap_kv telecap_i64(const char* key, int64_t value) {
    telecap_kv kv;
    kv.key = key;
    kv.type = TELECAP_TYPE_INT;
    kv.v.i = value;
    return kv;
}
static inline telecap_kv telecap_f64(const char* key, double value) {
    telecap_kv kv;
    kv.key = key;
    kv.type = TELECAP_TYPE_DOUBLE;
    kv.v.d = value;
    return kv;
}
static inline telecap_kv telecap_str(const char* key, const char* value) {
    telecap_kv kv;
    kv.key = key;
    kv.type = TELECAP_TYPE_STRING;
    kv.v.s = value;
    return kv;
}
static inline telecap_kv telecap_bool(const char* key, int value) {
    telecap_kv kv;
    kv.key = key;
    kv.type = TELECAP_TYPE_BOOL;
    kv.v.b = value != 0;
    return kv;
}

/* ---- clocks ---------------------------------------------------------------------------- */

/* Wall clock, ns since the epoch (Python's time.time_ns()). */
static inline int64_t telecap_now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* Monotonic clock, ns (for durations). */
static inline int64_t telecap_monotonic_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* ---- configuration ------------------------------------------------------------------------ */

/* TELECAP_TELEMETRY_FD when it is a valid integer (surrounding blanks allowed), else 2. */
static inline int telecap_telemetry_fd(void) {
    const char* v = getenv("TELECAP_TELEMETRY_FD");
    long fd = 0;
    int digits = 0;
    if (!v) return 2;
    while (*v == ' ' || *v == '\t') ++v;
    for (; *v >= '0' && *v <= '9'; ++v, ++digits) {
        if (digits >= 9) return 2;
        fd = fd * 10 + (*v - '0');
    }
    while (*v == ' ' || *v == '\t') ++v;
    if (digits == 0 || *v != '\0') return 2;
    return (int)fd;
}

/* ---- internals: a bounded buffer and the JSON formatting --------------------------------- */

typedef struct telecap__buf {
    char* p;
    size_t n, cap;
    int overflow;
} telecap__buf;

static inline void telecap__put(telecap__buf* b, const char* s, size_t n) {
    if (b->overflow) return;
    if (n > b->cap - b->n) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static inline void telecap__puts(telecap__buf* b, const char* s) { telecap__put(b, s, strlen(s)); }

static inline void telecap__putc(telecap__buf* b, char c) { telecap__put(b, &c, 1); }

/* The UTF-8 sequence at p (lead byte >= 0x80): returns its length when it is valid, else 0
 * with *skip set to the length of its maximal ill-formed subpart (the bytes one U+FFFD
 * replaces, as Python's decode("utf-8", "replace") does). The string is NUL-terminated, so
 * a truncated sequence stops at the NUL. */
static inline size_t telecap__utf8_len(const unsigned char* p, size_t* skip) {
    const unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;
    *skip = 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlongs */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else
        return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (i = 2; i < n; ++i)
        if (p[i] < 0x80 || p[i] > 0xBF) {
            *skip = i;
            return 0;
        }
    return n;
}

/* A JSON string: the escapes of Python's json.dumps(ensure_ascii=False). */
static inline void telecap__json_str(telecap__buf* b, const char* s) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char* p = (const unsigned char*)(s ? s : "");
    telecap__putc(b, '"');
    while (*p) {
        const unsigned char* run = p;
        size_t len;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
        if (p != run) telecap__put(b, (const char*)run, (size_t)(p - run));
        if (!*p) break;
        if (*p >= 0x80) {
            size_t skip;
            len = telecap__utf8_len(p, &skip);
            if (len) {
                telecap__put(b, (const char*)p, len);
                p += len;
            } else {
                telecap__put(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
                p += skip;
            }
            continue;
        }
        switch (*p) {
            case '"':
                telecap__puts(b, "\\\"");
                break;
            case '\\':
                telecap__puts(b, "\\\\");
                break;
            case '\b':
                telecap__puts(b, "\\b");
                break;
            case '\f':
                telecap__puts(b, "\\f");
                break;
            case '\n':
                telecap__puts(b, "\\n");
                break;
            case '\r':
                telecap__puts(b, "\\r");
                break;
            case '\t':
                telecap__puts(b, "\\t");
                break;
            default: {
                char u[6];
                u[0] = '\\';
                u[1] = 'u';
                u[2] = '0';
                u[3] = '0';
                u[4] = hex[*p >> 4];
                u[5] = hex[*p & 0xF];
                telecap__put(b, u, 6);
            }
        }
        ++p;
    }
    telecap__putc(b, '"');
}

static inline void telecap__json_int(telecap__buf* b, int64_t v) {
    char tmp[24];
    const int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    if (n > 0) telecap__put(b, tmp, (size_t)n);
}

/* A double as Python's repr() (and so json.dumps) prints it. */
static inline void telecap__json_double(telecap__buf* b, double d) {
    char tmp[40], digits[24], out[48];
    const char* q;
    int prec, nd = 0, exp10, i, o = 0;
    if (d != d) {
        telecap__puts(b, "NaN");
        return;
    }
    if (d > DBL_MAX) {
        telecap__puts(b, "Infinity");
        return;
    }
    if (d < -DBL_MAX) {
        telecap__puts(b, "-Infinity");
        return;
    }
    /* The fewest significant digits that read back as d (the locale's own decimal point is
     * used both ways, so this holds under any LC_NUMERIC). */
    for (prec = 1; prec < 17; ++prec) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    if (prec == 17) snprintf(tmp, sizeof tmp, "%.16e", d);
    q = tmp;
    if (*q == '-') out[o++] = *q++;
    for (; *q && *q != 'e' && *q != 'E'; ++q)
        if (*q >= '0' && *q <= '9' && nd < 20) digits[nd++] = *q;
    exp10 = (*q) ? (int)strtol(q + 1, NULL, 10) : 0;
    while (nd > 1 && digits[nd - 1] == '0') --nd;
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (i = 0; i <= exp10; ++i) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp10 + 1)
                for (i = exp10 + 1; i < nd; ++i) out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (i = 0; i < -exp10 - 1; ++i) out[o++] = '0';
            for (i = 0; i < nd; ++i) out[o++] = digits[i];
        }
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (i = 1; i < nd; ++i) out[o++] = digits[i];
        }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp10 < 0 ? '-' : '+',
                      exp10 < 0 ? -exp10 : exp10);
    }
    telecap__put(b, out, (size_t)o);
}

static inline void telecap__json_value(telecap__buf* b, const telecap_kv* kv) {
    switch (kv->type) {
        case TELECAP_TYPE_INT:
            telecap__json_int(b, kv->v.i);
            break;
        case TELECAP_TYPE_DOUBLE:
            telecap__json_double(b, kv->v.d);
            break;
        case TELECAP_TYPE_STRING:
            telecap__json_str(b, kv->v.s);
            break;
        case TELECAP_TYPE_BOOL:
            telecap__puts(b, kv->v.b ? "true" : "false");
            break;
        default:
            b->overflow = 2; /* not a value: the event is dropped */
    }
}

/* Appends the members of kv (n of them) to an open object; *first tracks the separator. */
static inline void telecap__json_members(telecap__buf* b, const telecap_kv* kv, size_t n,
                                         int* first) {
    size_t i;
    if (!kv) return;
    for (i = 0; i < n; ++i) {
        if (!kv[i].key) {
            b->overflow = 2;
            return;
        }
        if (!*first) telecap__put(b, ", ", 2);
        *first = 0;
        telecap__json_str(b, kv[i].key);
        telecap__put(b, ": ", 2);
        telecap__json_value(b, &kv[i]);
    }
}

/* ---- internals: the write -------------------------------------------------------------- */

/* Writes all n bytes with one write(2) (more only after a partial write). 0, or an errno. */
static inline int telecap__write_all(int fd, const char* p, size_t n) {
    int waits = 0;
    while (n > 0) {
        const ssize_t w = write(fd, p, n);
        if (w >= 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (errno == EINTR) continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && waits < 50) {
            /* A non-blocking fd that is full: wait for room, but not forever. */
            struct pollfd pfd;
            pfd.fd = fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            ++waits;
            (void)poll(&pfd, 1, 100);
            continue;
        }
        return errno;
    }
    return 0;
}

/* The write with SIGPIPE held off: a reader that went away gives EPIPE, not a dead worker. */
static inline int telecap__write_guarded(int fd, const char* p, size_t n) {
#if defined(TELECAP_EMIT_NO_SIGPIPE_GUARD)
    return telecap__write_all(fd, p, n);
#else
    sigset_t pipe_set, old_mask, pending;
    int was_pending, err;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask) != 0) return telecap__write_all(fd, p, n);
    err = telecap__write_all(fd, p, n);
    if (err == EPIPE && !was_pending) {
        /* Consume the SIGPIPE this write raised, so unblocking does not deliver it. */
        struct timespec zero;
        zero.tv_sec = 0;
        zero.tv_nsec = 0;
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return err;
#endif
}

/* ---- internals: the lock that keeps lines whole across threads and processes ----------- */

/* A pipe keeps only writes of up to PIPE_BUF whole, and a short write can land inside a long
 * one that waited for room. So each line goes out under a lock: a spin lock among this
 * process's threads (a POSIX record lock is per process), then a POSIX record lock on the fd
 * when it is a pipe or a socket, which other processes' emitters (fork children, the Python
 * emitter) take in turn. One per program (weak symbols), like the controls' state. */
__attribute__((weak)) uintptr_t telecap__wlock_owner_v1; /* the holding thread, 0: free */
__attribute__((weak)) int telecap__wlock_pid_v1;         /* the holder's pid */
__attribute__((weak)) int telecap__wlock_fd_v1; /* 0 unknown, else (fd << 1 | lockable) + 1 */

/* Returns what it took: 1 the threads' lock, 2 the fd's record lock. */
static inline int telecap__line_lock(int fd) {
#if defined(TELECAP_EMIT_NO_LOCK)
    (void)fd;
    return 0;
#else
#ifdef __cplusplus
    static thread_local char me;
#else
    static __thread char me;
#endif
    const uintptr_t self = (uintptr_t)&me;
    const char* off = getenv("TELECAP_EMIT_LOCK");
    int taken = 0, spins, cached;
    struct flock fl;
    if (off && strcmp(off, "off") == 0) return 0;
    if (__atomic_load_n(&telecap__wlock_owner_v1, __ATOMIC_RELAXED) != self) {
        /* (Held by this very thread: a signal handler emitting inside a write; go on.) */
        for (spins = 0;; ++spins) {
            uintptr_t expected = 0;
            if (__atomic_compare_exchange_n(&telecap__wlock_owner_v1, &expected, self, 0,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                __atomic_store_n(&telecap__wlock_pid_v1, (int)getpid(), __ATOMIC_RELAXED);
                taken = 1;
                break;
            }
            /* A holder of another pid is a thread that fork() left behind: take it over. */
            if (spins % 1024 == 1023 &&
                __atomic_load_n(&telecap__wlock_pid_v1, __ATOMIC_RELAXED) != (int)getpid() &&
                __atomic_compare_exchange_n(&telecap__wlock_owner_v1, &expected, self, 0,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                __atomic_store_n(&telecap__wlock_pid_v1, (int)getpid(), __ATOMIC_RELAXED);
                taken = 1;
                break;
            }
            (void)sched_yield();
        }
    } else {
        return 0;
    }
    cached = __atomic_load_n(&telecap__wlock_fd_v1, __ATOMIC_RELAXED);
    if (cached == 0 || ((cached - 1) >> 1) != fd) {
        struct stat st;
        int lockable = 0;
        if (fstat(fd, &st) == 0) lockable = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
        cached = ((fd << 1) | lockable) + 1;
        __atomic_store_n(&telecap__wlock_fd_v1, cached, __ATOMIC_RELAXED);
    }
    if ((cached - 1) & 1) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        while (fcntl(fd, F_SETLKW, &fl) < 0) {
            if (errno != EINTR) return taken; /* the line goes out anyway */
        }
        taken |= 2;
    }
    return taken;
#endif
}

static inline void telecap__line_unlock(int fd, int taken) {
    if (taken & 2) {
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_UNLCK;
        fl.l_whence = SEEK_SET;
        (void)fcntl(fd, F_SETLK, &fl);
    }
    if (taken & 1) __atomic_store_n(&telecap__wlock_owner_v1, (uintptr_t)0, __ATOMIC_RELEASE);
}

/* Writes "TELEMETRY_ERROR: <what>[: <event>]\n" to fd (falling back to stderr). */
static inline void telecap__report(int fd, const char* what, const char* event,
                                   const char* suffix) {
    char mem[512];
    telecap__buf b;
    b.p = mem;
    b.n = 0;
    b.cap = sizeof mem - 1; /* room for the newline, always */
    b.overflow = 0;
    telecap__puts(&b, "TELEMETRY_ERROR: telecap_emit: ");
    telecap__puts(&b, what);
    if (event) {
        telecap__puts(&b, ": event ");
        /* The name goes last: if it is too long it is cut, the line still ends. */
        {
            char name[200];
            telecap__buf nb;
            nb.p = name;
            nb.n = 0;
            nb.cap = sizeof name;
            nb.overflow = 0;
            telecap__json_str(&nb, event);
            if (suffix && !nb.overflow) {
                nb.n--; /* reopen the closing quote */
                telecap__puts(&nb, suffix);
                telecap__putc(&nb, '"');
            }
            if (nb.overflow && nb.n + 3 <= nb.cap) telecap__put(&nb, "...", 3);
            if (nb.n > b.cap - b.n) nb.n = b.cap - b.n;
            memcpy(b.p + b.n, name, nb.n);
            b.n += nb.n;
        }
    }
    mem[b.n++] = '\n';
    if (telecap__write_guarded(fd, mem, b.n) != 0 && fd != 2)
        (void)telecap__write_guarded(2, mem, b.n);
}

/* ---- controls from telecap (the control pipe) --------------------------------------------- */

/* How often telecap_emit looks at the control pipe, at most (ns). A test may define it as 0:
 * then every call looks. */
#ifndef TELECAP_CONTROL_POLL_NS
#define TELECAP_CONTROL_POLL_NS 100000000
#endif

#define TELECAP__CTL_LINE 8192   /* the longest state line held (the patterns' text) */
#define TELECAP__CTL_PATTERNS 64 /* patterns per list held */
#define TELECAP__CTL_NAME 1024   /* a span's "<op>.<suffix>" longer than this is not gated */

/* The state in force, one word: seq << 3 | SLOT | GATED | OFF. 0: no state (no pipe, none read
 * yet, or one this emitter cannot hold): nothing applied here, nothing tagged. */
#define TELECAP__CTL_OFF 1u
#define TELECAP__CTL_GATED 2u /* sampling or a filter: the patterns of slot[SLOT] apply */
#define TELECAP__CTL_SLOT 4u

#if defined(CLOCK_MONOTONIC_COARSE)
#define TELECAP__CTL_CLOCK CLOCK_MONOTONIC_COARSE /* vDSO, a few ns; 1-4 ms resolution */
#else
#define TELECAP__CTL_CLOCK CLOCK_MONOTONIC
#endif

typedef struct telecap__ctl_state {
    double rate;
    uint32_t n[3];                         /* sampling_patterns, allow, deny */
    uint32_t at[3][TELECAP__CTL_PATTERNS]; /* offsets of NUL-terminated patterns in text */
    char text[TELECAP__CTL_LINE + 8];
} telecap__ctl_state;

typedef struct telecap__ctl {
    uint64_t word;        /* see TELECAP__CTL_OFF */
    int64_t next_poll_ns; /* TELECAP__CTL_CLOCK */
    int reading;          /* 0: not opened yet, 1: reading, 2: not (no pipe, EOF, fork child) */
    int lock;             /* 1 while a thread reads the pipe (the others do not wait) */
    int looked;           /* 1 once the first look is over */
    int fd;
    int pid;         /* the process that reads the pipe */
    int readers[2];  /* threads matching against slot[i] now */
    int pending;     /* last holds a line not applied yet */
    int discarding;  /* inside a line longer than TELECAP__CTL_LINE */
    size_t len;      /* of the partial line in line */
    size_t last_len; /* of the last complete line; (size_t)-1: it was too long */
    uint64_t sampled, filtered;
    char line[TELECAP__CTL_LINE];
    char last[TELECAP__CTL_LINE];
    telecap__ctl_state slot[2];
} telecap__ctl;

/* One instance per program, however many translation units include this header: the
 * definitions are weak and the linker keeps one (two readers of one pipe would each miss the
 * states the other read). The name carries the layout's version. */
__attribute__((weak)) telecap__ctl telecap__ctl_v1;

/* The code point at *p, which it advances; an invalid UTF-8 byte is a unit of its own. */
static inline uint32_t telecap__ctl_cp(const unsigned char** p) {
    const unsigned char* s = *p;
    size_t skip, n;
    uint32_t c = s[0];
    if (c < 0x80) {
        *p = s + 1;
        return c;
    }
    n = telecap__utf8_len(s, &skip);
    if (!n) {
        *p = s + 1;
        return 0xDC00u | c; /* as Python's surrogateescape */
    }
    *p = s + n;
    if (n == 2) return (c & 0x1Fu) << 6 | (s[1] & 0x3Fu);
    if (n == 3) return (c & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
    return (c & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
}

/* fnmatch's "[...]" at p (just past the '['), for the code point c. 0 when there is no closing
 * ']' (then the '[' is a literal); else 1, *end past the ']' and *hit whether c is in the set.
 * As Python's fnmatch.translate: "!" negates, a ']' first is a member, "a-z" is a range (an
 * empty one, "z-a", matches nothing), a '-' first or last is a member, '\' is a literal. */
static inline int telecap__ctl_class(const unsigned char* p, uint32_t c, const unsigned char** end,
                                     int* hit) {
    const int neg = *p == '!';
    const unsigned char* m = p + neg;
    const unsigned char* q = m;
    int in = 0;
    if (*q == ']') ++q;
    while (*q && *q != ']') ++q;
    if (!*q) return 0;
    while (m < q) {
        uint32_t lo = telecap__ctl_cp(&m), hi = lo;
        if (m + 1 < q && *m == '-') {
            ++m;
            hi = telecap__ctl_cp(&m);
        }
        if (lo <= c && c <= hi) in = 1;
    }
    *end = q + 1;
    *hit = in != neg;
    return 1;
}

/* Python's fnmatch.fnmatchcase(s, pat) on code points: '*' any run (dots and all), '?' one,
 * "[...]" a set, anything else itself. Linear backtracking on the last '*': O(len * len). */
static inline int telecap__ctl_match(const unsigned char* pat, const unsigned char* s) {
    const unsigned char* star_p = NULL;
    const unsigned char* star_s = NULL;
    while (*s) {
        const unsigned char* s2 = s;
        const unsigned char* p2 = pat;
        uint32_t c;
        int ok = 0;
        if (*pat == '*') {
            while (*pat == '*') ++pat;
            star_p = pat;
            star_s = s;
            continue;
        }
        c = telecap__ctl_cp(&s2);
        if (*pat == '?') {
            ok = 1;
            p2 = pat + 1;
        } else if (*pat == '[' && telecap__ctl_class(pat + 1, c, &p2, &ok)) {
        } else if (*pat) {
            ok = telecap__ctl_cp(&p2) == c;
        }
        if (ok) {
            pat = p2;
            s = s2;
            continue;
        }
        if (!star_p) return 0;
        pat = star_p;
        (void)telecap__ctl_cp(&star_s);
        s = star_s;
    }
    while (*pat == '*') ++pat;
    return !*pat;
}

/* ---- the state line: a small JSON parser (telecap writes it with RapidJSON) ---- */

static inline void telecap__ctl_ws(const char** p, const char* e) {
    while (*p < e && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')) ++*p;
}

static inline int telecap__ctl_hex4(const char* p, const char* e, uint32_t* v) {
    int i;
    *v = 0;
    if (e - p < 4) return 0;
    for (i = 0; i < 4; ++i) {
        const char h = p[i];
        *v <<= 4;
        if (h >= '0' && h <= '9')
            *v |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            *v |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            *v |= (uint32_t)(h - 'A' + 10);
        else
            return 0;
    }
    return 1;
}

/* A JSON string at *p (at its '"'), decoded into out (NUL-terminated, at most cap - 1 bytes;
 * out may be NULL to skip it). 0 when malformed, too long, or holding a NUL. */
static inline int telecap__ctl_string(const char** p, const char* e, char* out, size_t cap,
                                      size_t* len) {
    const char* s = *p;
    size_t n = 0;
    if (s >= e || *s != '"') return 0;
    ++s;
    for (;;) {
        char u8[4];
        size_t k = 1;
        uint32_t c;
        if (s >= e || (unsigned char)*s < 0x20) return 0;
        if (*s == '"') break;
        if (*s != '\\') {
            u8[0] = *s++;
        } else {
            if (++s >= e) return 0;
            switch (*s++) {
                case '"':
                    u8[0] = '"';
                    break;
                case '\\':
                    u8[0] = '\\';
                    break;
                case '/':
                    u8[0] = '/';
                    break;
                case 'b':
                    u8[0] = '\b';
                    break;
                case 'f':
                    u8[0] = '\f';
                    break;
                case 'n':
                    u8[0] = '\n';
                    break;
                case 'r':
                    u8[0] = '\r';
                    break;
                case 't':
                    u8[0] = '\t';
                    break;
                case 'u':
                    if (!telecap__ctl_hex4(s, e, &c) || c == 0) return 0;
                    s += 4;
                    if (c >= 0xD800 && c <= 0xDBFF && e - s >= 6 && s[0] == '\\' && s[1] == 'u') {
                        uint32_t lo;
                        if (telecap__ctl_hex4(s + 2, e, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                            c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                            s += 6;
                        }
                    }
                    if (c < 0x80) {
                        u8[0] = (char)c;
                    } else if (c < 0x800) {
                        u8[0] = (char)(0xC0 | (c >> 6));
                        u8[1] = (char)(0x80 | (c & 0x3F));
                        k = 2;
                    } else if (c < 0x10000) {
                        u8[0] = (char)(0xE0 | (c >> 12));
                        u8[1] = (char)(0x80 | ((c >> 6) & 0x3F));
                        u8[2] = (char)(0x80 | (c & 0x3F));
                        k = 3;
                    } else {
                        u8[0] = (char)(0xF0 | (c >> 18));
                        u8[1] = (char)(0x80 | ((c >> 12) & 0x3F));
                        u8[2] = (char)(0x80 | ((c >> 6) & 0x3F));
                        u8[3] = (char)(0x80 | (c & 0x3F));
                        k = 4;
                    }
                    break;
                default:
                    return 0;
            }
        }
        if (out) {
            if (n + k >= cap) return 0;
            memcpy(out + n, u8, k);
        }
        n += k;
    }
    if (out) out[n] = '\0';
    if (len) *len = n;
    *p = s + 1;
    return 1;
}

/* A JSON number at *p, as a double (without strtod: the locale's decimal point does not
 * matter). *integer says whether it was a plain non-negative integer, then *u holds it. */
static inline int telecap__ctl_number(const char** p, const char* e, double* d, int* integer,
                                      uint64_t* u) {
    const char* s = *p;
    uint64_t m = 0;
    int neg = 0, digits = 0, exp10 = 0, frac = 0, eneg = 0, ev = 0, big = 0;
    if (s < e && *s == '-') {
        neg = 1;
        ++s;
    }
    for (; s < e && *s >= '0' && *s <= '9'; ++s, ++digits) {
        if (m < 100000000000000000u)
            m = m * 10 + (uint64_t)(*s - '0');
        else
            ++exp10, big = 1;
    }
    if (!digits) return 0;
    if (s < e && *s == '.') {
        ++s;
        for (; s < e && *s >= '0' && *s <= '9'; ++s, ++frac)
            if (m < 100000000000000000u) m = m * 10 + (uint64_t)(*s - '0'), --exp10;
        if (!frac) return 0;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        int ed = 0;
        ++s;
        if (s < e && (*s == '+' || *s == '-')) eneg = *s++ == '-';
        for (; s < e && *s >= '0' && *s <= '9'; ++s, ++ed)
            if (ev < 10000) ev = ev * 10 + (*s - '0');
        if (!ed) return 0;
        frac = 1;
    }
    exp10 += eneg ? -ev : ev;
    *d = (double)m;
    for (; exp10 > 0 && *d < 1e300; --exp10) *d *= 10;
    for (; exp10 < 0 && *d > 0; ++exp10) *d /= 10;
    if (neg) *d = -*d;
    *integer = !neg && !frac && !big && m < ((uint64_t)1 << 53);
    *u = m;
    *p = s;
    return 1;
}

/* Skips any JSON value (for keys this emitter does not know). */
static inline int telecap__ctl_skip(const char** p, const char* e, int depth) {
    double d;
    int integer;
    uint64_t u;
    telecap__ctl_ws(p, e);
    if (*p >= e || depth > 32) return 0;
    if (**p == '"') return telecap__ctl_string(p, e, NULL, 0, NULL);
    if (**p == '{' || **p == '[') {
        const char close = **p == '{' ? '}' : ']';
        ++*p;
        telecap__ctl_ws(p, e);
        if (*p < e && **p == close) {
            ++*p;
            return 1;
        }
        for (;;) {
            if (close == '}') {
                telecap__ctl_ws(p, e);
                if (!telecap__ctl_string(p, e, NULL, 0, NULL)) return 0;
                telecap__ctl_ws(p, e);
                if (*p >= e || **p != ':') return 0;
                ++*p;
            }
            if (!telecap__ctl_skip(p, e, depth + 1)) return 0;
            telecap__ctl_ws(p, e);
            if (*p < e && **p == ',') {
                ++*p;
                continue;
            }
            if (*p < e && **p == close) {
                ++*p;
                return 1;
            }
            return 0;
        }
    }
    if (e - *p >= 4 && (memcmp(*p, "true", 4) == 0 || memcmp(*p, "null", 4) == 0)) {
        *p += 4;
        return 1;
    }
    if (e - *p >= 5 && memcmp(*p, "false", 5) == 0) {
        *p += 5;
        return 1;
    }
    return telecap__ctl_number(p, e, &d, &integer, &u);
}

/* A list of patterns (an array of strings, or null) into st's list l; *used is the text used.
 * 0: malformed; -1: more than the emitter holds. */
static inline int telecap__ctl_patterns(const char** p, const char* e, telecap__ctl_state* st,
                                        int l, size_t* used) {
    int too_many = 0;
    st->n[l] = 0;
    telecap__ctl_ws(p, e);
    if (e - *p >= 4 && memcmp(*p, "null", 4) == 0) {
        *p += 4;
        return 1;
    }
    if (*p >= e || **p != '[') return 0;
    ++*p;
    telecap__ctl_ws(p, e);
    if (*p < e && **p == ']') {
        ++*p;
        return 1;
    }
    for (;;) {
        size_t n;
        telecap__ctl_ws(p, e);
        if (!telecap__ctl_string(p, e, st->text + *used, sizeof st->text - *used, &n)) return 0;
        if (st->n[l] < TELECAP__CTL_PATTERNS) {
            st->at[l][st->n[l]++] = (uint32_t)*used;
            *used += n + 1;
        } else {
            too_many = 1;
        }
        telecap__ctl_ws(p, e);
        if (*p < e && **p == ',') {
            ++*p;
            continue;
        }
        if (*p < e && **p == ']') {
            ++*p;
            return too_many ? -1 : 1;
        }
        return 0;
    }
}

/* Parses a state line into st. Returns the word to publish (without SLOT), or 0 when the line
 * is not a state (keep the previous one, as the Python emitter does), or 1 when it is one
 * this emitter cannot hold (too many patterns): then nothing is applied here. */
static inline uint64_t telecap__ctl_parse(const char* p, const char* e, telecap__ctl_state* st) {
    uint64_t seq = 0, u;
    int have_seq = 0, on = 1, too_big = 0, integer, r;
    size_t used = 0;
    double rate = 1.0;
    st->n[0] = st->n[1] = st->n[2] = 0;
    telecap__ctl_ws(&p, e);
    if (p >= e || *p != '{') return 0;
    ++p;
    telecap__ctl_ws(&p, e);
    if (p < e && *p == '}') {
        ++p;
    } else {
        for (;;) {
            char key[24];
            telecap__ctl_ws(&p, e);
            if (!telecap__ctl_string(&p, e, key, sizeof key, NULL)) {
                /* a key longer than ours: not one we know */
                if (!telecap__ctl_string(&p, e, NULL, 0, NULL)) return 0;
                key[0] = '\0';
            }
            telecap__ctl_ws(&p, e);
            if (p >= e || *p != ':') return 0;
            ++p;
            telecap__ctl_ws(&p, e);
            if (strcmp(key, "seq") == 0) {
                double d;
                if (!telecap__ctl_number(&p, e, &d, &integer, &u) || !integer) return 0;
                seq = u;
                have_seq = 1;
            } else if (strcmp(key, "enabled") == 0) {
                if (e - p >= 4 && memcmp(p, "true", 4) == 0)
                    on = 1, p += 4;
                else if (e - p >= 5 && memcmp(p, "false", 5) == 0)
                    on = 0, p += 5;
                else
                    return 0;
            } else if (strcmp(key, "sampling_rate") == 0) {
                if (!telecap__ctl_number(&p, e, &rate, &integer, &u)) return 0;
            } else if (strcmp(key, "sampling_patterns") == 0 || strcmp(key, "allow") == 0 ||
                       strcmp(key, "deny") == 0) {
                const int l = key[0] == 's' ? 0 : key[0] == 'a' ? 1 : 2;
                r = telecap__ctl_patterns(&p, e, st, l, &used);
                if (r == 0) return 0;
                if (r < 0) too_big = 1;
            } else if (!telecap__ctl_skip(&p, e, 0)) {
                return 0;
            }
            telecap__ctl_ws(&p, e);
            if (p < e && *p == ',') {
                ++p;
                continue;
            }
            if (p < e && *p == '}') {
                ++p;
                break;
            }
            return 0;
        }
    }
    telecap__ctl_ws(&p, e);
    if (p != e || !have_seq) return 0;
    if (too_big) return 1;
    st->rate = rate < 0.0 ? 0.0 : rate > 1.0 ? 1.0 : rate;
    return seq << 3 | (on ? 0u : TELECAP__CTL_OFF) |
           (st->rate < 1.0 || st->n[1] || st->n[2] ? TELECAP__CTL_GATED : 0u);
}

/* ---- reading the pipe ---- */

/* Takes the bytes read: complete lines go to last (only the last one read counts). */
static inline void telecap__ctl_feed(telecap__ctl* c, const char* p, size_t n) {
    while (n > 0) {
        const char* nl = (const char*)memchr(p, '\n', n);
        const size_t k = nl ? (size_t)(nl - p) : n;
        if (!c->discarding) {
            if (k <= sizeof c->line - c->len) {
                memcpy(c->line + c->len, p, k);
                c->len += k;
            } else {
                c->discarding = 1; /* dropped up to its newline */
            }
        }
        if (!nl) return;
        if (c->discarding) {
            c->last_len = (size_t)-1;
        } else {
            memcpy(c->last, c->line, c->len);
            c->last_len = c->len;
        }
        c->pending = 1;
        c->discarding = 0;
        c->len = 0;
        p = nl + 1;
        n -= k + 1;
    }
}

/* Parses the last line into the slot not in use and publishes it. */
static inline void telecap__ctl_apply(telecap__ctl* c) {
    const uint64_t w = __atomic_load_n(&c->word, __ATOMIC_SEQ_CST);
    const int j = (w & TELECAP__CTL_SLOT) ? 0 : 1;
    uint64_t nw = 0;
    if (c->last_len != (size_t)-1) {
        /* A thread still matching against the other slot (it read the word before the last
         * change): try again at the next call rather than wait for it. */
        if (__atomic_load_n(&c->readers[j], __ATOMIC_SEQ_CST) != 0) {
            __atomic_store_n(&c->next_poll_ns, 0, __ATOMIC_RELAXED);
            return;
        }
        nw = telecap__ctl_parse(c->last, c->last + c->last_len, &c->slot[j]);
        if (nw == 0) { /* not a state: the previous one stays */
            c->pending = 0;
            return;
        }
        nw = nw == 1 ? 0 : nw | (j ? TELECAP__CTL_SLOT : 0u);
    }
    /* (A state too long or too big to hold: nothing is applied here, telecap does it all.) */
    c->pending = 0;
    __atomic_store_n(&c->word, nw, __ATOMIC_SEQ_CST);
}

/* Opens the pipe at the first look: TELECAP_CONTROL_FD, made non-blocking and close-on-exec. */
static inline int telecap__ctl_open(telecap__ctl* c) {
    const char* v = getenv("TELECAP_CONTROL_FD");
    long fd = 0;
    int digits = 0, fl;
    __atomic_store_n(&c->reading, 2, __ATOMIC_RELAXED);
    if (!v) return 0;
    for (; *v >= '0' && *v <= '9'; ++v, ++digits) {
        if (digits >= 9) return 0;
        fd = fd * 10 + (*v - '0');
    }
    if (digits == 0 || *v != '\0') {
        telecap__report(telecap_telemetry_fd(), "TELECAP_CONTROL_FD ignored: not an fd number",
                        NULL, NULL);
        return 0;
    }
    {
        /* Only a pipe or socket above 2 (what telecap gives): never the worker's stdin, nor a
         * file it opened. */
        struct stat st;
        const char* problem = NULL;
        if (fd <= 2)
            problem = "TELECAP_CONTROL_FD ignored: fds 0-2 are the worker's own";
        else if (fstat((int)fd, &st) != 0)
            problem = "TELECAP_CONTROL_FD ignored: not open";
        else if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
            problem = "TELECAP_CONTROL_FD ignored: not a pipe or a socket";
        if (problem) {
            telecap__report(telecap_telemetry_fd(), problem, NULL, NULL);
            return 0;
        }
    }
    fl = fcntl((int)fd, F_GETFL);
    if (fl < 0 || fcntl((int)fd, F_SETFL, fl | O_NONBLOCK) < 0) return 0;
    fl = fcntl((int)fd, F_GETFD);
    if (fl >= 0) (void)fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
    c->fd = (int)fd;
    c->pid = (int)getpid();
    __atomic_store_n(&c->reading, 1, __ATOMIC_RELAXED);
    return 1;
}

static inline int telecap__telemetry_on(void) {
    const char* v = getenv("TELECAP_TELEMETRY");
    return !(v && strcmp(v, "off") == 0);
}

/* One look at the pipe, by one thread at a time (the others go on with the state in force). */
static inline void telecap__ctl_poll(int64_t now) {
    telecap__ctl* c = &telecap__ctl_v1;
    char chunk[4096];
    if (__atomic_exchange_n(&c->lock, 1, __ATOMIC_ACQUIRE)) {
        /* Another thread looks. Only before the first look is over does this one wait for it
         * (bounded: the looker may be this very thread, interrupted by a signal handler), so
         * that no thread emits before the first state applies. */
        int spins;
        for (spins = 0; spins < 100000 && !__atomic_load_n(&c->looked, __ATOMIC_ACQUIRE); ++spins)
            (void)sched_yield();
        return;
    }
    __atomic_store_n(&c->next_poll_ns, now + TELECAP_CONTROL_POLL_NS, __ATOMIC_RELAXED);
    if (!telecap__telemetry_on()) {
        /* TELECAP_TELEMETRY=off: nothing is read (nor opened) */
    } else if (__atomic_load_n(&c->reading, __ATOMIC_RELAXED) == 0
                   ? telecap__ctl_open(c)
                   : __atomic_load_n(&c->reading, __ATOMIC_RELAXED) == 1) {
        if ((int)getpid() != c->pid) {
            /* A child made by fork(): the parent reads the pipe; the child keeps the last
             * state (two readers would each miss the states the other read). */
            c->pid = (int)getpid();
            __atomic_store_n(&c->reading, 2, __ATOMIC_RELAXED);
        } else {
            for (;;) {
                const ssize_t n = read(c->fd, chunk, sizeof chunk);
                if (n > 0) {
                    telecap__ctl_feed(c, chunk, (size_t)n);
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                /* EOF (telecap closed it) or an error (EBADF: the worker closed it): the last
                 * state stays, the pipe is not read again. */
                __atomic_store_n(&c->reading, 2, __ATOMIC_RELAXED);
                break;
            }
            if (c->pending) telecap__ctl_apply(c);
        }
    }
    __atomic_store_n(&c->looked, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&c->lock, 0, __ATOMIC_RELEASE);
}

/* The state in force, after a look at the pipe when one is due. No system call unless one is:
 * the clock is the vDSO's. */
static inline uint64_t telecap__ctl_word(void) {
    telecap__ctl* c = &telecap__ctl_v1;
    if (__atomic_load_n(&c->reading, __ATOMIC_RELAXED) != 2) {
        struct timespec ts;
        int64_t now = 0;
        if (clock_gettime(TELECAP__CTL_CLOCK, &ts) == 0)
            now = (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
        if (now >= __atomic_load_n(&c->next_poll_ns, __ATOMIC_RELAXED)) telecap__ctl_poll(now);
    }
    return __atomic_load_n(&c->word, __ATOMIC_ACQUIRE);
}

/* Takes the slot of a GATED word for reading; returns the word it holds (which may have
 * changed: then it may not be GATED any more, and no slot is held). */
static inline uint64_t telecap__ctl_hold(uint64_t w) {
    telecap__ctl* c = &telecap__ctl_v1;
    for (;;) {
        uint64_t now;
        int i;
        if (!(w & TELECAP__CTL_GATED)) return w;
        i = (w & TELECAP__CTL_SLOT) ? 1 : 0;
        __atomic_add_fetch(&c->readers[i], 1, __ATOMIC_SEQ_CST);
        now = __atomic_load_n(&c->word, __ATOMIC_SEQ_CST);
        if (now == w) return w;
        __atomic_sub_fetch(&c->readers[i], 1, __ATOMIC_SEQ_CST);
        w = now;
    }
}

static inline void telecap__ctl_release(uint64_t w) {
    if (w & TELECAP__CTL_GATED)
        __atomic_sub_fetch(&telecap__ctl_v1.readers[(w & TELECAP__CTL_SLOT) ? 1 : 0], 1,
                           __ATOMIC_RELEASE);
}

/* A uniform draw in [0, 1): xorshift64* per thread, seeded from the clocks, the pid and an
 * address (never rand(): that is the program's). A fork child reseeds at its first look. */
static inline double telecap__ctl_random(void) {
#ifdef __cplusplus
    static thread_local uint64_t x = 0;
    static thread_local int seeded_pid = 0;
#else
    static __thread uint64_t x = 0;
    static __thread int seeded_pid = 0;
#endif
    const int pid = __atomic_load_n(&telecap__ctl_v1.pid, __ATOMIC_RELAXED);
    if (x == 0 || seeded_pid != pid) {
        uint64_t z = (uint64_t)telecap_now_ns() ^ ((uint64_t)telecap_monotonic_ns() << 17) ^
                     ((uint64_t)(unsigned)pid << 32) ^ (uint64_t)(uintptr_t)&x;
        z += 0x9E3779B97F4A7C15u; /* splitmix64 */
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        x = (z ^ (z >> 31)) | 1;
        seeded_pid = pid;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (double)((x * 0x2545F4914F6CDD1Du) >> 11) * (1.0 / 9007199254740992.0);
}

static inline int telecap__ctl_any(const telecap__ctl_state* st, int l, const char* name) {
    uint32_t k;
    for (k = 0; k < st->n[l]; ++k)
        if (telecap__ctl_match((const unsigned char*)st->text + st->at[l][k],
                               (const unsigned char*)name))
            return 1;
    return 0;
}

/* Sampling, then the filter, for the wire name event + suffix under the GATED word *w (the
 * toggle was checked before). 1: keep it; 0: removed; 2: keep it but untagged (a name too
 * long to gate here: telecap decides). *w becomes the word it was decided under. */
static inline int telecap__ctl_gate(const char* event, const char* suffix, uint64_t* w) {
    char name[TELECAP__CTL_NAME];
    const telecap__ctl_state* st;
    int r = 1;
    if (suffix) {
        const size_t a = strlen(event), b = strlen(suffix);
        if (a + b >= sizeof name) return 2;
        memcpy(name, event, a);
        memcpy(name + a, suffix, b + 1);
        event = name;
    }
    *w = telecap__ctl_hold(*w);
    if (*w & TELECAP__CTL_OFF) r = 0;
    if (r == 0 || !(*w & TELECAP__CTL_GATED)) {
        telecap__ctl_release(*w);
        return r;
    }
    st = &telecap__ctl_v1.slot[(*w & TELECAP__CTL_SLOT) ? 1 : 0];
    if (st->rate < 1.0 && (st->n[0] == 0 || telecap__ctl_any(st, 0, event)) &&
        (st->rate <= 0.0 || telecap__ctl_random() >= st->rate)) {
        __atomic_add_fetch(&telecap__ctl_v1.sampled, 1, __ATOMIC_RELAXED);
        r = 0;
    } else if (telecap__ctl_any(st, 2, event) || (st->n[1] && !telecap__ctl_any(st, 1, event))) {
        __atomic_add_fetch(&telecap__ctl_v1.filtered, 1, __ATOMIC_RELAXED);
        r = 0;
    }
    telecap__ctl_release(*w);
    return r;
}

/* The controls in force here (a look at the pipe first when one is due). */
typedef struct telecap_control_info {
    uint64_t seq; /* the state applied; 0: none (no pipe, or not held: see above) */
    int enabled;  /* telecap's toggle */
    int reading;  /* 1 while the pipe is read (0 before the first look) */
    double sampling_rate;
    unsigned n_sampling_patterns, n_allow, n_deny;
    uint64_t sampled, filtered; /* events they removed in this process, before formatting */
} telecap_control_info;

static inline telecap_control_info telecap_controls(void) {
    telecap_control_info info;
    const int saved_errno = errno;
    uint64_t w = telecap__ctl_hold(telecap__ctl_word());
    memset(&info, 0, sizeof info);
    info.seq = w >> 3;
    info.enabled = !(w & TELECAP__CTL_OFF);
    info.reading = __atomic_load_n(&telecap__ctl_v1.reading, __ATOMIC_RELAXED) == 1;
    info.sampling_rate = 1.0;
    if (w & TELECAP__CTL_GATED) {
        const telecap__ctl_state* st = &telecap__ctl_v1.slot[(w & TELECAP__CTL_SLOT) ? 1 : 0];
        info.sampling_rate = st->rate;
        info.n_sampling_patterns = st->n[0];
        info.n_allow = st->n[1];
        info.n_deny = st->n[2];
    }
    telecap__ctl_release(w);
    info.sampled = __atomic_load_n(&telecap__ctl_v1.sampled, __ATOMIC_RELAXED);
    info.filtered = __atomic_load_n(&telecap__ctl_v1.filtered, __ATOMIC_RELAXED);
    errno = saved_errno;
    return info;
}

/* 0 when TELECAP_TELEMETRY=off or telecap's toggle is off (after a look at the control pipe when
 * one is due): a worker may skip collecting what it would emit. errno is preserved. */
static inline int telecap_enabled(void) {
    const int saved_errno = errno;
    const int on = !(telecap__ctl_word() & TELECAP__CTL_OFF) && telecap__telemetry_on();
    errno = saved_errno;
    return on;
}

/* The one emitter behind every public call: event name + suffix, measurements, two metadata
 * arrays (the second appended: a span's error_type, error_message), correlation id. */
static inline int telecap__emit(const char* event, const char* suffix, const telecap_kv* m,
                                size_t nm, const telecap_kv* md, size_t nmd, const telecap_kv* md2,
                                size_t nmd2, const char* correlation_id) {
    char mem[TELECAP_EMIT_BUFSIZE];
    telecap__buf b;
    int first, fd, err, rc = 0;
    const int saved_errno = errno;
    /* telecap's controls first: an event they remove is not even formatted. */
    uint64_t w = telecap__ctl_word();
    int kept = (w & TELECAP__CTL_OFF) ? 0 : 1;
    if (kept && event && (w & TELECAP__CTL_GATED)) {
        kept = telecap__ctl_gate(event, suffix, &w);
        if (kept == 2) w = 0; /* not decided here: no tag */
    }
    if (!kept || !telecap__telemetry_on()) {
        errno = saved_errno;
        return 1;
    }
    fd = telecap_telemetry_fd();
    if (!event) {
        telecap__report(fd, "NULL event name", NULL, NULL);
        errno = saved_errno;
        return -1;
    }
    b.p = mem;
    b.n = 0;
    b.cap = sizeof mem;
    b.overflow = 0;
    telecap__puts(&b, "TELEMETRY:{\"event\": ");
    telecap__json_str(&b, event);
    if (suffix && !b.overflow) {
        b.n--; /* the closing quote: the suffix goes inside */
        telecap__puts(&b, suffix);
        telecap__putc(&b, '"');
    }
    telecap__puts(&b, ", \"measurements\": {");
    first = 1;
    telecap__json_members(&b, m, nm, &first);
    telecap__puts(&b, "}, \"metadata\": {");
    first = 1;
    telecap__json_members(&b, md, nmd, &first);
    telecap__json_members(&b, md2, nmd2, &first);
    telecap__puts(&b, "}, \"timestamp_ns\": ");
    telecap__json_int(&b, telecap_now_ns());
    telecap__puts(&b, ", \"correlation_id\": ");
    telecap__json_str(&b, correlation_id);
    if (w >> 3) { /* the state it was decided under: telecap does not sample it again */
        telecap__puts(&b, ", \"control_seq\": ");
        telecap__json_int(&b, (int64_t)(w >> 3));
    }
    telecap__puts(&b, "}\n");
    if (b.overflow == 1) {
        char what[96];
        snprintf(what, sizeof what, "line longer than %lu bytes, dropped",
                 (unsigned long)TELECAP_EMIT_BUFSIZE);
        telecap__report(fd, what, event, suffix);
        rc = -1;
    } else if (b.overflow) {
        telecap__report(fd, "a NULL key or a bad value type, dropped", event, suffix);
        rc = -1;
    } else {
        const int taken = telecap__line_lock(fd);
        err = telecap__write_guarded(fd, mem, b.n);
        telecap__line_unlock(fd, taken);
        if (err != 0) {
            if (err == EBADF) __atomic_store_n(&telecap__wlock_fd_v1, 0, __ATOMIC_RELAXED);
            rc = -1;
            if (err != EPIPE && fd != 2) {
                char what[128];
                snprintf(what, sizeof what, "cannot write to fd %d: %s", fd, strerror(err));
                telecap__report(2, what, event, suffix);
            }
        }
    }
    errno = saved_errno;
    return rc;
}

/* ---- the API --------------------------------------------------------------------------- */

/* Emits one event. measurements/metadata may be NULL with a count of 0; correlation_id may be
 * NULL. Returns 0 (written), 1 (TELECAP_TELEMETRY=off) or -1 (dropped; see above). */
static inline int telecap_emit(const char* event, const telecap_kv* measurements,
                               size_t n_measurements, const telecap_kv* metadata, size_t n_metadata,
                               const char* correlation_id) {
    return telecap__emit(event, NULL, measurements, n_measurements, metadata, n_metadata, NULL, 0,
                         correlation_id);
}

/* A span in C. The operation, metadata and correlation id are borrowed: they must live until
 * the span ends. */
typedef struct telecap_span {
    const char* operation;
    const telecap_kv* metadata;
    size_t n_metadata;
    const char* correlation_id;
    int64_t start_ns; /* monotonic */
    int ended;
} telecap_span;

/* Emits "<operation>.start" with system_time (wall clock, ns). */
static inline telecap_span telecap_span_start(const char* operation, const telecap_kv* metadata,
                                              size_t n_metadata, const char* correlation_id) {
    telecap_span s;
    telecap_kv m[1];
    s.operation = operation;
    s.metadata = metadata;
    s.n_metadata = n_metadata;
    s.correlation_id = correlation_id;
    s.ended = 0;
    m[0] = telecap_i64("system_time", telecap_now_ns());
    s.start_ns = telecap_monotonic_ns();
    (void)telecap__emit(operation, ".start", m, 1, metadata, n_metadata, NULL, 0, correlation_id);
    return s;
}

/* Emits "<operation>.stop" with duration (ns). A span ends once; later calls return -1. */
static inline int telecap_span_stop(telecap_span* s) {
    telecap_kv m[1];
    if (!s || s->ended) return -1;
    s->ended = 1;
    m[0] = telecap_i64("duration", telecap_monotonic_ns() - s->start_ns);
    return telecap__emit(s->operation, ".stop", m, 1, s->metadata, s->n_metadata, NULL, 0,
                         s->correlation_id);
}

/* Emits "<operation>.exception" with duration and metadata error_type, error_message. */
static inline int telecap_span_exception(telecap_span* s, const char* error_type,
                                         const char* error_message) {
    telecap_kv m[1], err[2];
    if (!s || s->ended) return -1;
    s->ended = 1;
    m[0] = telecap_i64("duration", telecap_monotonic_ns() - s->start_ns);
    err[0] = telecap_str("error_type", error_type);
    err[1] = telecap_str("error_message", error_message);
    return telecap__emit(s->operation, ".exception", m, 1, s->metadata, s->n_metadata, err, 2,
                         s->correlation_id);
}

#ifdef __cplusplus
#include <exception>
#include <initializer_list>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>
#if defined(__GNUG__) || defined(__clang__)
#include <cxxabi.h>
#endif

namespace telecap {

// The readable name of an exception's dynamic type (demangled where the ABI allows).
inline std::string type_name(const std::type_info& t) {
#if defined(__GNUG__) || defined(__clang__)
    int status = 0;
    char* s = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
    if (s && status == 0) {
        std::string out(s);
        std::free(s);
        return out;
    }
    std::free(s);
#endif
    return t.name();
}

// RAII span: "<op>.start" now, then "<op>.stop" at scope exit, or "<op>.exception" when the
// scope is left by an exception (std::uncaught_exceptions() grew since construction). A
// destructor cannot see the exception in flight, so that event says error_type "unknown" and
// error_message "": call fail(e) in a catch block to end the span with the real type and
// what(), or use telecap::traced(op, metadata, fn), which does it for you. Nothing here
// throws (a failure to allocate drops the event).
class span {
public:
    using metadata_list = std::vector<std::pair<std::string, std::string>>;

    explicit span(std::string operation,
                  std::initializer_list<std::pair<std::string, std::string>> metadata = {},
                  std::string correlation_id = std::string())
        : span(std::move(operation), metadata_list(metadata), std::move(correlation_id)) {}

    span(std::string operation, metadata_list metadata, std::string correlation_id)
        : operation_(std::move(operation)),
          metadata_(std::move(metadata)),
          correlation_id_(std::move(correlation_id)),
          uncaught_(uncaught()) {
        try {
            kv_.reserve(metadata_.size() + 2);
            for (const auto& p : metadata_)
                kv_.push_back(telecap_str(p.first.c_str(), p.second.c_str()));
            c_ = telecap_span_start(operation_.c_str(), kv_.data(), kv_.size(),
                                    correlation_id_.c_str());
        } catch (...) {
            c_.ended = 1;  // could not even start: stay silent
        }
    }

    span(const span&) = delete;
    span& operator=(const span&) = delete;

    ~span() {
        if (c_.ended) return;
        if (uncaught() > uncaught_)
            (void)telecap_span_exception(&c_, "unknown", "");
        else
            (void)telecap_span_stop(&c_);
    }

    // Ends the span as an exception with this type and message (at once).
    void fail(const std::string& error_type, const std::string& error_message) noexcept {
        if (c_.ended) return;
        (void)telecap_span_exception(&c_, error_type.c_str(), error_message.c_str());
    }
    void fail(const std::exception& e) noexcept {
        if (c_.ended) return;
        try {
            const std::string t = type_name(typeid(e));
            (void)telecap_span_exception(&c_, t.c_str(), e.what());
        } catch (...) {
            (void)telecap_span_exception(&c_, "std::exception", e.what());
        }
    }
    // Ends the span normally now (the destructor then does nothing).
    void stop() noexcept { (void)telecap_span_stop(&c_); }

private:
    static int uncaught() noexcept {
#if defined(__cpp_lib_uncaught_exceptions)
        return std::uncaught_exceptions();
#else
        return std::uncaught_exception() ? 1 : 0;
#endif
    }

    std::string operation_;
    metadata_list metadata_;
    std::string correlation_id_;
    std::vector<telecap_kv> kv_;
    int uncaught_;
    telecap_span c_{};
};

// Runs fn() inside a span; an exception ends it with its type and what() (or "unknown" for
// a non-std exception), and is rethrown. Returns what fn returns.
template <typename F>
auto traced(const std::string& operation,
            std::initializer_list<std::pair<std::string, std::string>> metadata, F&& fn,
            const std::string& correlation_id = std::string()) -> decltype(fn()) {
    span s(operation, span::metadata_list(metadata), correlation_id);
    try {
        return fn();
    } catch (const std::exception& e) {
        s.fail(e);
        throw;
    } catch (...) {
        s.fail("unknown", "");
        throw;
    }
}

}  // namespace telecap
#endif /* __cplusplus */

#endif /* TELECAP_EMIT_H */
