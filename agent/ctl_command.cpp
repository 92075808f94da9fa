// telecap ctl: the control socket's client (docs/control.md). Builds one request from the
// arguments, sends it (control/client.hpp) and prints the reply, readable or as JSON.

#include <rapidjson/document.h>

#include <charconv>
#include <cstdio>
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
                          "stop, restart, reload, reopen");
    }
    if (!o.pool.empty()) {
        r += ",\"pool\":";
        append_json_string(r, o.pool);
    }
    if (!o.worker.empty()) {
        r += ",\"worker\":";
        append_json_string(r, o.worker);
    }
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

}  // namespace

int run_ctl(const ctl_options& o) {
    if (!o.pool.empty() && !o.worker.empty())
        throw usage_error("give --pool or --worker, not both");
    const std::string request = build_request(o);
    std::string reply;
    if (auto e = control::exchange(o.socket, request, o.timeout, reply)) {
        std::fprintf(stderr, "telecap: ctl: %s\n", e->c_str());
        return 1;
    }
    rapidjson::Document d;
    d.Parse(reply.data(), reply.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("ok") || !d["ok"].IsBool()) {
        std::fprintf(stderr, "telecap: ctl: the server's reply is not a reply: %s\n",
                     reply.c_str());
        return 1;
    }
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
