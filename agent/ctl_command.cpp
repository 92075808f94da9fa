// telecap ctl: the control socket's client (docs/control.md). Builds one request from the
// arguments, sends it (control/client.hpp) and prints the reply, readable or as JSON.

#include <fcntl.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "agent/commands.hpp"
#include "capture/event_json.hpp"
#include "control/client.hpp"
#include "control/top_model.hpp"

namespace telecap::agent {

namespace {

std::string number_token(std::string_view text, const char* what) {
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
        throw usage_error(std::string(what) + " must be a number, not \"" + std::string(text) +
                          "\"");
    // The server checks the value (a NaN rate is refused there, with its reason).
    if (v != v) return "NaN";
    std::string out;
    append_json_double(out, v);
    return out;
}

void append_list(std::string& out, const char* key, const std::vector<std::string>& list) {
    out += ",\"";
    out += key;
    out += "\":";
    append_json_string_array(out, list);
}

// ,"pool":...,"worker":... as given (the server checks them).
void append_scope(std::string& r, const ctl_options& o) {
    if (!o.pool.empty()) {
        r += ",\"pool\":";
        append_json_string(r, o.pool);
    }
    if (!o.worker.empty()) {
        r += ",\"worker\":";
        append_json_string(r, o.worker);
    }
}

std::string build_request(const ctl_options& o) {
    const auto& a = o.args;
    const auto need_args = [&](std::size_t lo, std::size_t hi, const char* usage) {
        if (a.size() < lo || a.size() > hi)
            throw usage_error("usage: telecap ctl " + std::string(usage));
    };
    std::string r = "{\"cmd\":";
    append_json_string(r, o.command);
    const std::string& c = o.command;
    if (c == "status" || c == "stats" || c == "reload" || c == "reopen") {
        need_args(0, 0, c.c_str());
        if (!o.pool.empty() || !o.worker.empty())
            throw usage_error(c + " takes no --pool or --worker");
    } else if (c == "toggle") {
        need_args(1, 1, "toggle on|off");
        if (a[0] != "on" && a[0] != "off")
            throw usage_error("toggle takes on or off, not \"" + a[0] + "\"");
        r += ",\"enabled\":";
        r += a[0] == "on" ? "true" : "false";
    } else if (c == "sample") {
        need_args(1, 1000, "sample RATE [PATTERN...]");
        r += ",\"rate\":" + number_token(a[0], "the rate");
        append_list(r, "patterns", {a.begin() + 1, a.end()});
    } else if (c == "filter") {
        need_args(0, 0, "filter [--allow GLOB]... [--deny GLOB]...");
        append_list(r, "allow", o.allow);
        append_list(r, "deny", o.deny);
    } else if (c == "rate-limit") {
        need_args(1, 1, "rate-limit N[/BURST] (0: no limit)");
        const auto slash = a[0].find('/');
        r += ",\"events_per_second\":" +
             number_token(std::string_view(a[0]).substr(0, slash), "the rate limit");
        if (slash != std::string::npos)
            r +=
                ",\"burst\":" + number_token(std::string_view(a[0]).substr(slash + 1), "the burst");
    } else if (c == "start" || c == "stop" || c == "restart" || c == "reset") {
        need_args(0, 0, (c + " [--pool NAME|--worker ID]").c_str());
    } else {
        throw usage_error("unknown control command \"" + c +
                          "\": status, stats, toggle, sample, filter, rate-limit, reset, start, "
                          "stop, restart, reload, reopen, tap");
    }
    append_scope(r, o);
    return r + "}";
}

double num(const rapidjson::Value& v, const char* key) {
    const auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0;
}

std::string str(const rapidjson::Value& v, const char* key) {
    const auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

void print_status(const rapidjson::Document& d, const control::top::snapshot& s) {
    std::printf("uptime %.1f s%s\n", s.uptime_seconds, s.stopping ? " (stopping)" : "");
    std::printf("%-20s %-12s %8s %-9s %8s %10s %10s %10s  %s\n", "WORKER", "POOL", "PID", "STATE",
                "RESTARTS", "UPTIME_S", "EVENTS", "REMOVED", "TELEMETRY");
    bool on_request = false;
    for (const auto& w : s.workers) {
        std::string state = w.state;
        if (w.stopped_on_request) {
            state += "*";  // stopped on request
            on_request = true;
        }
        std::printf("%-20s %-12s %8ld %-9s %8llu %10.1f %10llu %10llu  %s\n", w.id.c_str(),
                    w.pool.c_str(), w.pid, state.c_str(),
                    static_cast<unsigned long long>(w.restarts), w.uptime_seconds,
                    static_cast<unsigned long long>(w.events),
                    static_cast<unsigned long long>(w.removed), w.gates.c_str());
    }
    // What the columns' words mean, once, under the table.
    std::printf(
        "STATE: running; stopping (stop signal sent); backoff (exited, restarts after a "
        "delay); done (exited, not restarted)\n");
    if (on_request) std::printf("*: stopped on request (ctl stop); `ctl start` starts it again\n");
    std::printf(
        "REMOVED: events the gates removed (toggle, sampling, filters, rate limit); TELEMETRY: "
        "on, or the gates that remove events\n");
    if (d.HasMember("listeners") && d["listeners"].IsArray())
        for (const auto& l : d["listeners"].GetArray())
            if (l.IsObject())
                std::printf("%s serves %s\n", str(l, "output").c_str(), str(l, "url").c_str());
}

// "reload: pools added a, b; removed c; ..." from the reply's lists (docs/control.md).
void print_reload(const rapidjson::Document& d) {
    std::printf("ok: reloaded\n");
    const auto lists = [&](const char* group, std::initializer_list<const char*> keys) {
        const auto g = d.FindMember(group);
        if (g == d.MemberEnd() || !g->value.IsObject()) return;
        for (const char* key : keys) {
            const auto it = g->value.FindMember(key);
            if (it == g->value.MemberEnd() || !it->value.IsArray() || it->value.Empty()) continue;
            std::string line;
            for (const auto& n : it->value.GetArray())
                if (n.IsString()) line += (line.empty() ? "" : ", ") + std::string(n.GetString());
            std::printf("  %s %s: %s\n", group, key, line.c_str());
        }
    };
    lists("pools", {"added", "removed", "changed", "resized", "unchanged"});
    lists("outputs", {"added", "removed"});
    const auto m = d.FindMember("metrics");
    if (m != d.MemberEnd() && m->value.IsString() &&
        std::string(m->value.GetString()) == "reloaded")
        std::printf("  metrics: the file was read again (derived series start over)\n");
    const auto na = d.FindMember("not_applied");
    if (na != d.MemberEnd() && na->value.IsArray())
        for (const auto& n : na->value.GetArray())
            if (n.IsString())
                std::printf("  not applied until telecap restarts: %s\n", n.GetString());
}

volatile std::sig_atomic_t tap_stopped = 0;
// The write end of a pipe the wait below also polls: a signal that lands between the check of
// tap_stopped and the poll still wakes it (a self-pipe).
int tap_wake_fd = -1;
extern "C" void on_tap_signal(int) {
    tap_stopped = 1;
    if (tap_wake_fd >= 0) {
        const int saved = errno;
        const char c = 1;
        (void)!::write(tap_wake_fd, &c, 1);
        errno = saved;
    }
}

std::string tap_request(const ctl_options& o) {
    if (!o.format.empty() && o.format != "jsonl" && o.format != "log")
        throw usage_error("tap --format takes jsonl or log, not \"" + o.format + "\"");
    std::string r = "{\"cmd\":\"tap\",\"format\":";
    append_json_string(r, o.format.empty() ? "jsonl" : o.format);
    if (o.limit) r += ",\"limit\":" + std::to_string(o.limit);
    if (o.passthrough) r += ",\"passthrough\":true";
    append_list(r, "patterns", o.args);
    append_scope(r, o);
    return r + "}";
}

// `reply` parsed into `d`: false (said on stderr) when it is not {"ok":BOOL,...}.
bool parse_reply(const std::string& reply, rapidjson::Document& d) {
    d.Parse(reply.data(), reply.size());
    if (!d.HasParseError() && d.IsObject() && d.HasMember("ok") && d["ok"].IsBool()) return true;
    std::fprintf(stderr, "telecap: ctl: the server's reply is not a reply: %s\n", reply.c_str());
    return false;
}

// All of [p, p + n) to stdout; false when stdout is gone (a closed pipe) or on Ctrl-C.
bool write_out(const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(1, p, n);
        if (w > 0) {
            p += w;
            n -= static_cast<std::size_t>(w);
        } else if (w < 0 && errno == EINTR) {
            if (tap_stopped) return false;
        } else {
            return false;
        }
    }
    return true;
}

// telecap ctl tap: the stream to stdout until the server ends it, --limit, Ctrl-C (SIGINT,
// SIGTERM) or a closed stdout; each of those ends it with status 0 and without a message.
int run_tap(const ctl_options& o) {
    const std::string request = tap_request(o);
    const bool log = o.format == "log";
    // Signals end the stream: no SA_RESTART, so a poll or a write blocked on stdout returns.
    int wake[2] = {-1, -1};
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        std::fprintf(stderr, "telecap: ctl: pipe: %s\n", std::strerror(errno));
        return 1;
    }
    const unique_fd wake_read(wake[0]), wake_write(wake[1]);
    tap_wake_fd = wake[1];
    struct forget_wake {  // before the pipe closes: a late signal writes nowhere
        ~forget_wake() { tap_wake_fd = -1; }
    } forget;
    struct sigaction sa {};
    sa.sa_handler = on_tap_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    unique_fd fd;
    std::string reply, buf;
    if (auto e = control::open_stream(o.socket, request, o.timeout, reply, fd, buf)) {
        if (tap_stopped) return 0;
        std::fprintf(stderr, "telecap: ctl: %s\n", e->c_str());
        return 1;
    }
    rapidjson::Document d;
    if (!parse_reply(reply, d)) return 1;
    if (!d["ok"].GetBool()) {
        std::fprintf(stderr, "telecap: ctl: %s\n", str(d, "error").c_str());
        return 1;
    }
    std::uint64_t events = 0;
    char chunk[64 * 1024];
    while (!tap_stopped) {
        // Whole lines only; with a limit, up to the line that reaches it (markers and
        // pass-through lines not counted: the limit is of events).
        std::size_t end = buf.rfind('\n');
        end = end == std::string::npos ? 0 : end + 1;
        bool last = false;
        if (o.limit) {
            for (std::size_t at = 0; at < end;) {
                const std::size_t nl = buf.find('\n', at);
                const std::string_view line(buf.data() + at, nl - at);
                // A log line's pass-through head follows the time ("YYYY-MM-DDTHH:MM:SS.mmm ").
                const bool marker =
                    log ? line.starts_with("# ") || (line.size() > 24 && line[24] == '[')
                        : line.starts_with("{\"telecap_tap\"") ||
                              line.starts_with("{\"passthrough\"");
                at = nl + 1;
                if (!marker && ++events == o.limit) {
                    end = at;
                    last = true;
                    break;
                }
            }
        }
        if (end > 0 && !write_out(buf.data(), end)) return 0;
        if (last) return 0;
        buf.erase(0, end);
        pollfd p[2] = {{fd.get(), POLLIN, 0}, {wake_read.get(), POLLIN, 0}};
        const int r = ::poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) continue;  // a signal: tap_stopped is set
        const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n > 0) {
            buf.append(chunk, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            break;  // the server ended the stream (its limit, or telecap stopped)
        }
    }
    return 0;
}

}  // namespace

int run_ctl(const ctl_options& o) {
    if (!o.pool.empty() && !o.worker.empty())
        throw usage_error("give --pool or --worker, not both");
    if (o.command == "tap") return run_tap(o);
    if (!o.format.empty() || o.limit || o.passthrough)
        throw usage_error("--format, --limit and --passthrough are options of tap");
    const std::string request = build_request(o);
    std::string reply;
    if (auto e = control::exchange(o.socket, request, o.timeout, reply)) {
        std::fprintf(stderr, "telecap: ctl: %s\n", e->c_str());
        return 1;
    }
    rapidjson::Document d;
    if (!parse_reply(reply, d)) return 1;
    const bool ok = d["ok"].GetBool();
    if (o.json) {
        std::printf("%s\n", reply.c_str());
        if (!ok) std::fprintf(stderr, "telecap: ctl: %s\n", str(d, "error").c_str());
        return ok ? 0 : 1;
    }
    if (!ok) {
        std::fprintf(stderr, "telecap: ctl: %s\n", str(d, "error").c_str());
        return 1;
    }
    if (o.command == "status") {
        // The same reading of the reply as telecap top's (control/top_model.hpp).
        control::top::snapshot snap;
        if (auto e = control::top::parse_status(reply, snap)) {
            std::fprintf(stderr, "telecap: ctl: %s\n", e->c_str());
            return 1;
        }
        print_status(d, snap);
    } else if (o.command == "stats") {
        if (d.HasMember("metrics") && d["metrics"].IsObject())
            for (const auto& m : d["metrics"].GetObject())
                std::printf("%s %.17g\n", m.name.GetString(),
                            m.value.IsNumber() ? m.value.GetDouble() : 0.0);
    } else if (o.command == "reload") {
        print_reload(d);
    } else if (o.command == "reopen") {
        const double n = num(d, "files");
        std::printf("ok: reopening %.0f file%s\n", n, n == 1 ? "" : "s");
    } else {
        const double n = num(d, "workers");
        std::printf("ok: %s applied to %.0f worker%s\n", o.command.c_str(), n, n == 1 ? "" : "s");
    }
    return 0;
}

}  // namespace telecap::agent
