#include "agent/validate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "agent/options.hpp"
#include "net/url.hpp"
#include "outputs/prometheus_handler.hpp"
#include "spawn/signals.hpp"
#ifdef TELECAP_HAVE_GRPC
#include "bridge/grpc_client.hpp"
#include "bridge/grpc_output.hpp"
#endif

namespace telecap::agent {

namespace {

// The same text for the same double whichever parser read it (CLI11 "nan", YAML ".nan").
std::string number(double d) {
    if (std::isnan(d)) return "nan";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
}

std::string seconds_of(std::chrono::milliseconds ms) {
    return number(static_cast<double>(ms.count()) / 1000.0);
}

problem in_range(long long v, long long lo, long long hi, const char* hi_note = "") {
    if (v >= lo && v <= hi) return std::nullopt;
    return "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + hi_note +
           ", not " + std::to_string(v);
}

// size_t settings go through long long so that a negative value reads as itself.
long long as_ll(std::size_t v) {
    return v > static_cast<std::size_t>(LLONG_MAX) ? LLONG_MAX : static_cast<long long>(v);
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

std::string setting_name(std::string_view yaml_key, spelling s) {
    std::string name(yaml_key);
    if (s == spelling::yaml) return name;
    for (auto& c : name)
        if (c == '_') c = '-';
    return "--" + name;
}

problem check_max_line(long long bytes) {
    return in_range(bytes, min_max_line, max_max_line, " (1 GiB)");
}

problem check_queue(long long events) { return in_range(events, 1, max_queue, " (2^24)"); }

problem check_queue_bytes(long long bytes) {
    if (bytes >= min_queue_bytes && bytes <= max_queue_bytes) return std::nullopt;
    return "must be between 65536 (64 KiB) and 17179869184 (16 GiB), not " + std::to_string(bytes);
}

problem check_line_budget(long long bytes) { return check_queue_bytes(bytes); }

problem check_prefix(std::string_view prefix) {
    if (prefix.empty()) return "must not be empty";
    if (prefix.find('\n') != std::string_view::npos) return "must not contain a newline";
    return std::nullopt;
}

problem check_seconds(double seconds) {
    // NaN fails both comparisons; an infinity or 1e300 would overflow the milliseconds.
    if (seconds >= 0 && seconds <= max_seconds) return std::nullopt;
    return "must be a number of seconds between 0 and 86400 (1 day), not " + number(seconds);
}

problem check_burst_hold(double seconds) {
    // Longer would keep every worker's pass-through waiting that long behind one slow output.
    if (seconds >= 0 && seconds <= 10) return std::nullopt;
    return "must be a number of seconds between 0 and 10, not " + number(seconds);
}

problem check_instances(long long n) { return in_range(n, 1, 10000); }

problem check_grpc_address(std::string_view address) {
#ifdef TELECAP_HAVE_GRPC
    return bridge::check_grpc_address(address, true);
#else
    // The bridge is in telecap-grpc: main_cli() runs the same command line there (as for
    // `-o grpc`), or says this when there is none.
    throw grpc_needed("grpc " + quoted(address) + ": " + grpc_not_built);
#endif
}

problem check_remote_worker(const pool_spec& p) {
    if (p.grpc.find("{port}") != std::string::npos)
        return "\"" + p.grpc +
               "\" has {port} but no command to give the port to: with no command, give the "
               "address the worker already listens on (HOST:PORT or unix:PATH)";
    if (p.instances != 1)
        return "with no command dials one worker that telecap does not start: instances must "
               "be 1, not " +
               std::to_string(p.instances) + " (a pool for each address)";
    if (p.telemetry_fd >= 0)
        return "with no command has no process to give a telemetry fd to: remove telemetry_fd";
    return std::nullopt;
}

problem check_telemetry_fd(long long fd) {
    // 0-2 are the worker's stdio; select() and many runtimes stop at 1024.
    return in_range(fd, 3, 1023);
}

problem check_max_restarts(long long n) { return in_range(n, 0, INT_MAX); }

problem check_cwd(const std::string& dir) {
    if (dir.empty()) return "must not be empty";
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        return "must be an existing directory, not " + quoted(dir) + " (" + std::strerror(errno) +
               ")";
    if (!S_ISDIR(st.st_mode))
        return "must be an existing directory, not " + quoted(dir) + " (not a directory)";
    return std::nullopt;
}

problem check_env_key(std::string_view key) {
    if (key.empty()) return "must not be empty";
    if (key.find('=') != std::string_view::npos) return "must not contain '=', not " + quoted(key);
    if (key.find('\0') != std::string_view::npos) return "must not contain a NUL byte";
    return std::nullopt;
}

problem check_env_value(std::string_view value) {
    // execve takes C strings: the value would be cut short silently.
    if (value.find('\0') != std::string_view::npos) return "must not contain a NUL byte";
    return std::nullopt;
}

problem check_restart_mode(std::string_view text) {
    if (spawn::parse_restart_mode(text)) return std::nullopt;
    return "must be never, on-failure or always, not " + quoted(text);
}

problem check_overflow(std::string_view text) {
    if (text == "drop-newest" || text == "block") return std::nullopt;
    return "must be drop-newest or block, not " + quoted(text);
}

problem check_stop_signal(std::string_view text) {
    if (spawn::parse_signal(text) > 0) return std::nullopt;
    return "must be a signal name or number (TERM, SIGTERM, 15), not " + quoted(text);
}

problem check_unknown_events(std::string_view text) {
    if (text == "reject" || text == "keep") return std::nullopt;
    return "must be reject or keep, not " + quoted(text);
}

std::chrono::milliseconds to_millis(double seconds) {
    assert(!check_seconds(seconds));
    return std::chrono::milliseconds(std::llround(seconds * 1000));
}

problem check_dispatch(std::string_view text) {
    if (text == "loop" || text == "thread") return std::nullopt;
    return "must be loop or thread, not " + quoted(text);
}

dispatch_mode parse_dispatch(std::string_view text) {
    return text == "thread" ? dispatch_mode::thread : dispatch_mode::caller;
}

overflow_policy parse_overflow(std::string_view text) {
    return text == "block" ? overflow_policy::block : overflow_policy::drop_newest;
}

problem parse_unix_output(std::string_view arg, unix_output_spec& out) {
    const auto q = arg.find('?');
    out = {};
    out.path = std::string(arg.substr(0, q));
    if (out.path.empty()) return "needs a socket path: unix:PATH";
    if (q == std::string_view::npos) return std::nullopt;
    struct budget {
        const char* name;
        std::size_t* value;
        long long lo, hi;
        const char* hi_note;
        bool seen;
    };
    auto& o = out.options;
    budget budgets[] = {
        {"max_hosts", &o.max_hosts, 1, 65536, "", false},
        {"max_backlog", &o.max_backlog, 4096, 1LL << 30, " (1 GiB)", false},
        {"max_total_backlog", &o.max_total_backlog, 4096, 1LL << 34, " (16 GiB)", false},
        {"fd_reserve", &o.fd_reserve, 1, 65536, "", false},
    };
    std::string_view rest = arg.substr(q + 1);
    while (true) {
        const auto amp = rest.find('&');
        const std::string_view item = rest.substr(0, amp);
        const auto eq = item.find('=');
        const std::string_view name = item.substr(0, eq);
        budget* b = nullptr;
        for (auto& x : budgets)
            if (name == x.name) b = &x;
        if (!b)
            return "unknown option " + quoted(name) +
                   ": use max_hosts, max_backlog, max_total_backlog or fd_reserve (NAME=N, "
                   "joined by &)";
        if (b->seen) return std::string(b->name) + " is given twice";
        b->seen = true;
        const std::string_view text =
            eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        long long v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || end != text.data() + text.size() ||
            (ec != std::errc{} && ec != std::errc::result_out_of_range))
            return std::string(b->name) + " must be a whole number, not " + quoted(text);
        if (ec == std::errc::result_out_of_range) v = LLONG_MAX;
        if (auto p = in_range(v, b->lo, b->hi, b->hi_note)) {
            if (ec == std::errc::result_out_of_range)  // say what was written, not LLONG_MAX
                p = p->substr(0, p->rfind(", not ")) + ", not " + std::string(text);
            return std::string(b->name) + " " + *p;
        }
        *b->value = static_cast<std::size_t>(v);
        if (amp == std::string_view::npos) break;
        rest = rest.substr(amp + 1);
    }
    if (o.max_total_backlog < o.max_backlog)
        return "max_total_backlog must not be less than max_backlog (" +
               std::to_string(o.max_total_backlog) + " < " + std::to_string(o.max_backlog) + ")";
    return std::nullopt;
}

problem check_output(std::string_view spec) {
    const auto colon = spec.find(':');
    if (spec.substr(0, colon) == "prometheus") {
        prometheus_address at;
        if (auto p = parse_prometheus_address(
                colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1), at))
            return "output " + quoted(spec) + ": " + *p;
        return std::nullopt;
    }
    const auto kind = spec.substr(0, colon);
    const auto arg = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
    if (kind == "http" || ((kind == "otlp" || kind == "otlp-logs") && !arg.empty())) {
        if (kind == "http" && arg.empty()) return "output \"http\" needs a URL: http:URL";
        std::string why;
        if (!net::parse_url(arg, &why))
            return "output " + quoted(net::redact_url(spec)) + ": " + why;
        return std::nullopt;
    }
    if (kind == "grpc" || spec.starts_with("grpc?")) {
#ifdef TELECAP_HAVE_GRPC
        bridge::grpc_output_options g;
        if (auto p = bridge::parse_grpc_output(kind == "grpc" ? arg : spec.substr(4), g))
            return "output " + quoted(spec) + ": " + *p;
        return std::nullopt;
#else
        throw grpc_needed("output " + quoted(spec) + ": " + grpc_not_built);
#endif
    }
    if (kind != "unix") return std::nullopt;
    unix_output_spec u;
    if (auto p = parse_unix_output(
            colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1), u))
        return "output " + quoted(spec) + ": " + *p;
    return std::nullopt;
}

problem check_backoff_min(const spawn::restart_options& r, spelling s) {
    if (r.mode == spawn::restart_mode::never || r.backoff_min >= min_backoff) return std::nullopt;
    return setting_name("backoff_min", s) +
           " must be at least 0.01 (10 ms) when workers restart, not " + seconds_of(r.backoff_min);
}

problem check_backoff_order(const spawn::restart_options& r, spelling s) {
    if (r.backoff_max >= r.backoff_min) return std::nullopt;
    return setting_name("backoff_max", s) + " must not be less than " +
           setting_name("backoff_min", s) + " (" + seconds_of(r.backoff_max) + " < " +
           seconds_of(r.backoff_min) + ")";
}

problem validate(const capture_options& o, spelling s) {
    const auto named = [&](const char* key, problem p) -> problem {
        if (p) return setting_name(key, s) + " " + *p;
        return std::nullopt;
    };
    if (auto p = named("max_line", check_max_line(as_ll(o.max_line)))) return p;
    if (auto p = named("prefix", check_prefix(o.prefix))) return p;
    if (!o.unknown_events.empty())
        if (auto p = named("unknown_events", check_unknown_events(o.unknown_events))) return p;
    for (const auto& spec : o.outputs)
        if (auto p = check_output(spec)) return p;
    return std::nullopt;
}

problem check_controls(const control::controls& c) {
    control::controls copy = c;  // check() normalizes; the options keep what was written
    return control::check(copy);
}

problem validate(const run_options& o, spelling s) {
    const auto named = [&](const char* key, problem p) -> problem {
        if (p) return setting_name(key, s) + " " + *p;
        return std::nullopt;
    };
    const auto secs = [](std::chrono::milliseconds ms) {
        return check_seconds(static_cast<double>(ms.count()) / 1000.0);
    };
    if (auto p = validate(o.capture, s)) return p;
    if (auto p = named("queue", check_queue(as_ll(o.queue)))) return p;
    if (auto p = named("queue_bytes", check_queue_bytes(as_ll(o.queue_bytes)))) return p;
    if (auto p = named("line_budget", check_line_budget(as_ll(o.line_budget)))) return p;
    if (auto p = named("grace", secs(o.grace))) return p;
    if (auto p = named("burst_hold",
                       check_burst_hold(static_cast<double>(o.burst_hold.count()) / 1000.0)))
        return p;
    if (auto p = check_controls(o.controls.global)) return "control: " + *p;
    for (const auto& [name, c] : o.controls.pools)
        if (auto p = check_controls(c)) return "pool " + quoted(name) + " control: " + *p;
    for (const auto& pool : o.pools) {
        const auto& r = pool.restart;
        if (auto p = named("instances", check_instances(pool.instances))) return p;
        for (const auto& spec : pool.outputs) {
            if (auto p = check_output(spec)) return p;
            const auto kind = spec.substr(0, spec.find(':'));
            if (kind == "prometheus" || kind == "otlp")
                return "output " + quoted(spec) + " of pool " + quoted(pool.name) +
                       ": a metrics exporter serves every pool (its series have a pool_name "
                       "label); list it in the top-level outputs";
        }
        if (pool.telemetry_fd != -1)
            if (auto p = named("telemetry_fd", check_telemetry_fd(pool.telemetry_fd))) return p;
        if (!pool.grpc.empty())
            if (auto p = named("grpc", check_grpc_address(pool.grpc))) return p;
        if (auto p = named("max_restarts", check_max_restarts(r.max_restarts))) return p;
        if (auto p = named("backoff_min", secs(r.backoff_min))) return p;
        if (auto p = named("backoff_max", secs(r.backoff_max))) return p;
        if (auto p = named("healthy_after", secs(r.healthy_after))) return p;
        if (auto p = named("restart_window", secs(r.restart_window))) return p;
        if (auto p = check_backoff_min(r, s)) return p;
        if (auto p = check_backoff_order(r, s)) return p;
        if (!pool.cwd.empty())
            if (auto p = named("cwd", check_cwd(pool.cwd))) return p;
        for (const auto& [k, v] : pool.env) {
            if (auto p = check_env_key(k)) return "env key " + *p;
            if (auto p = check_env_value(v)) return "env value of " + quoted(k) + " " + *p;
        }
    }
    return std::nullopt;
}

problem check_writable(const std::string& path) {
    // Not O_TRUNC: the old content stays until the real write at exit.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::close(fd);
            ::unlink(path.c_str());  // a run that fails before the end leaves nothing behind
            return std::nullopt;
        }
        if (errno == EEXIST) return std::nullopt;  // someone else made it meanwhile
    }
    if (fd < 0) return std::string(std::strerror(errno));
    ::close(fd);
    return std::nullopt;
}

}  // namespace telecap::agent
