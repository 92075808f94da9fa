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
 *   possible past PIPE_BUF). Lines of up to PIPE_BUF (4096 bytes on Linux) are atomic on a
 *   pipe, so threads and processes sharing the fd never interleave them; a line longer than
 *   that may interleave with another thread's long line. Define TELECAP_EMIT_BUFSIZE 4096 to
 *   make every line atomic.
 * - Destination: the fd in TELECAP_TELEMETRY_FD when it is a valid integer (telecap run
 *   --telemetry-fd N sets it), else stderr (fd 2). TELECAP_TELEMETRY=off makes every call a
 *   no-op. Both are read at each call (getenv), so do not setenv() them from another thread
 *   while emitting.
 * - Never aborts, never raises, never kills: a failed write of the line gives a
 *   TELEMETRY_ERROR line on stderr when stderr is a different fd; a closed pipe (EPIPE) is
 *   dropped quietly, and the SIGPIPE it raises is blocked and consumed for the duration of
 *   the write (define TELECAP_EMIT_NO_SIGPIPE_GUARD to skip that, e.g. when SIGPIPE is
 *   ignored anyway). errno is preserved.
 * - Return value: 0 written, 1 disabled (TELECAP_TELEMETRY=off), -1 dropped.
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
#include <float.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* 0 when TELECAP_TELEMETRY=off. */
static inline int telecap_enabled(void) {
    const char* v = getenv("TELECAP_TELEMETRY");
    return !(v && strcmp(v, "off") == 0);
}

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
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        else if (c == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
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
            case '"': telecap__puts(b, "\\\""); break;
            case '\\': telecap__puts(b, "\\\\"); break;
            case '\b': telecap__puts(b, "\\b"); break;
            case '\f': telecap__puts(b, "\\f"); break;
            case '\n': telecap__puts(b, "\\n"); break;
            case '\r': telecap__puts(b, "\\r"); break;
            case '\t': telecap__puts(b, "\\t"); break;
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
        case TELECAP_TYPE_INT: telecap__json_int(b, kv->v.i); break;
        case TELECAP_TYPE_DOUBLE: telecap__json_double(b, kv->v.d); break;
        case TELECAP_TYPE_STRING: telecap__json_str(b, kv->v.s); break;
        case TELECAP_TYPE_BOOL: telecap__puts(b, kv->v.b ? "true" : "false"); break;
        default: b->overflow = 2; /* not a value: the event is dropped */
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
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask) != 0)
        return telecap__write_all(fd, p, n);
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

/* The one emitter behind every public call: event name + suffix, measurements, two metadata
 * arrays (the second appended: a span's error_type, error_message), correlation id. */
static inline int telecap__emit(const char* event, const char* suffix, const telecap_kv* m,
                                size_t nm, const telecap_kv* md, size_t nmd,
                                const telecap_kv* md2, size_t nmd2, const char* correlation_id) {
    char mem[TELECAP_EMIT_BUFSIZE];
    telecap__buf b;
    int first, fd, err, rc = 0;
    const int saved_errno = errno;
    if (!telecap_enabled()) return 1;
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
        err = telecap__write_guarded(fd, mem, b.n);
        if (err != 0) {
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
                               size_t n_measurements, const telecap_kv* metadata,
                               size_t n_metadata, const char* correlation_id) {
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
