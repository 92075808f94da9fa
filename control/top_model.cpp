#include "control/top_model.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <map>

namespace telecap::control::top {

namespace {

using json = rapidjson::Value;

double num(const json& v, const char* key, double fallback = 0) {
    const auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : fallback;
}

std::uint64_t count(const json& v, const char* key) {
    const auto it = v.FindMember(key);
    if (it == v.MemberEnd() || !it->value.IsNumber()) return 0;
    if (it->value.IsUint64()) return it->value.GetUint64();
    const double d = it->value.GetDouble();
    return d > 0 ? static_cast<std::uint64_t>(d) : 0;
}

std::string str(const json& v, const char* key) {
    const auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : std::string();
}

std::size_t list_size(const json& v, const char* key) {
    const auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsArray() ? it->value.Size() : 0;
}

gate_settings gates_of(const json& w) {
    gate_settings g;
    const auto c = w.FindMember("controls");
    if (c == w.MemberEnd() || !c->value.IsObject()) return g;
    const auto& v = c->value;
    if (const auto e = v.FindMember("enabled"); e != v.MemberEnd() && e->value.IsBool())
        g.enabled = e->value.GetBool();
    g.sampling_rate = num(v, "sampling_rate", 1);
    g.sampling_patterns = list_size(v, "sampling_patterns");
    g.allow = list_size(v, "allow");
    g.deny = list_size(v, "deny");
    if (const auto l = v.FindMember("rate_limit"); l != v.MemberEnd() && l->value.IsObject())
        g.events_per_second = num(l->value, "events_per_second");
    return g;
}

// after - before, or after when the counter started again from 0 (it went down).
std::uint64_t delta(std::uint64_t before, std::uint64_t after) {
    return after >= before ? after - before : after;
}

double rate(std::uint64_t before, std::uint64_t after, double dt) {
    return dt > 0 ? static_cast<double>(delta(before, after)) / dt : -1;
}

// "p-2" before "p-10": runs of digits compare as numbers.
bool natural_less(std::string_view a, std::string_view b) {
    std::size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const bool da = a[i] >= '0' && a[i] <= '9', db = b[j] >= '0' && b[j] <= '9';
        if (da && db) {
            std::size_t ie = i, je = j;
            while (ie < a.size() && a[ie] >= '0' && a[ie] <= '9') ++ie;
            while (je < b.size() && b[je] >= '0' && b[je] <= '9') ++je;
            // Without leading zeros, a longer run is a bigger number.
            std::size_t is = i, js = j;
            while (is + 1 < ie && a[is] == '0') ++is;
            while (js + 1 < je && b[js] == '0') ++js;
            if (ie - is != je - js) return ie - is < je - js;
            if (const int c = a.substr(is, ie - is).compare(b.substr(js, je - js)); c != 0)
                return c < 0;
            i = ie;
            j = je;
        } else {
            if (a[i] != b[j]) return a[i] < b[j];
            ++i;
            ++j;
        }
    }
    return a.size() - i < b.size() - j;
}

}  // namespace

std::optional<std::string> parse_status(std::string_view reply, snapshot& out) {
    rapidjson::Document d;
    d.Parse(reply.data(), reply.size());
    if (d.HasParseError() || !d.IsObject()) return "the reply is not JSON";
    const auto ok = d.FindMember("ok");
    if (ok == d.MemberEnd() || !ok->value.IsBool()) return "the reply is not a status reply";
    if (!ok->value.GetBool()) {
        const std::string e = str(d, "error");
        return e.empty() ? "refused" : e;
    }
    out = snapshot{};
    out.uptime_seconds = num(d, "uptime_seconds");
    if (const auto s = d.FindMember("stopping"); s != d.MemberEnd() && s->value.IsBool())
        out.stopping = s->value.GetBool();
    out.queue_depth = count(d, "queue_depth");
    if (const auto p = d.FindMember("process"); p != d.MemberEnd() && p->value.IsObject()) {
        out.cpu_seconds = num(p->value, "cpu_seconds", -1);
        out.rss_bytes = num(p->value, "rss_bytes", -1);
    }
    if (const auto p = d.FindMember("pools"); p != d.MemberEnd() && p->value.IsArray())
        for (const auto& pool : p->value.GetArray())
            if (pool.IsObject()) out.pools.push_back(str(pool, "name"));
    if (const auto ws = d.FindMember("workers"); ws != d.MemberEnd() && ws->value.IsObject()) {
        out.workers.reserve(ws->value.MemberCount());
        for (const auto& m : ws->value.GetObject()) {
            if (!m.value.IsObject()) continue;
            const auto& v = m.value;
            worker_sample w;
            w.id.assign(m.name.GetString(), m.name.GetStringLength());
            w.pool = str(v, "pool");
            w.state = str(v, "state");
            w.pid = static_cast<long>(num(v, "pid"));
            if (const auto s = v.FindMember("stopped_on_request");
                s != v.MemberEnd() && s->value.IsBool())
                w.stopped_on_request = s->value.GetBool();
            w.uptime_seconds = num(v, "uptime_seconds");
            w.restarts = count(v, "restarts");
            w.lines = count(v, "lines");
            w.events = count(v, "events");
            if (const auto r = v.FindMember("rejected"); r != v.MemberEnd() && r->value.IsObject())
                for (const auto& reason : r->value.GetObject())
                    if (reason.value.IsUint64())
                        w.rejected.emplace_back(reason.name.GetString(), reason.value.GetUint64());
            if (const auto r = v.FindMember("dropped"); r != v.MemberEnd() && r->value.IsObject())
                for (const auto& reason : r->value.GetObject())
                    if (reason.value.IsUint64()) w.removed += reason.value.GetUint64();
            w.gates = gates_summary(gates_of(v));
            out.workers.push_back(std::move(w));
        }
    }
    // "dropped" counts events, "dropped_lines" lines: the latter's reasons say so.
    for (const auto& [key, suffix] : {std::pair{"dropped", ""}, {"dropped_lines", " lines"}})
        if (const auto l = d.FindMember(key); l != d.MemberEnd() && l->value.IsObject())
            for (const auto& reason : l->value.GetObject())
                if (reason.value.IsUint64())
                    out.losses.push_back(
                        {std::string(reason.name.GetString(), reason.name.GetStringLength()) +
                             suffix,
                         reason.value.GetUint64()});
    if (const auto os = d.FindMember("outputs"); os != d.MemberEnd() && os->value.IsArray())
        for (const auto& v : os->value.GetArray()) {
            if (!v.IsObject()) continue;
            out.outputs.push_back({str(v, "output"), count(v, "events"), count(v, "dropped"),
                                   count(v, "errors"), str(v, "last_error")});
        }
    return std::nullopt;
}

std::string gates_summary(const gate_settings& g) {
    if (!g.enabled) return "off";
    std::string out;
    const auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ",") + part; };
    char text[64];
    if (g.sampling_rate < 1) {
        std::snprintf(text, sizeof text, "sample %g", g.sampling_rate);
        add(text + (g.sampling_patterns ? "(" + std::to_string(g.sampling_patterns) + " patterns)"
                                        : std::string()));
    }
    if (g.allow) add("allow " + std::to_string(g.allow));
    if (g.deny) add("deny " + std::to_string(g.deny));
    if (g.events_per_second > 0) {
        std::snprintf(text, sizeof text, "limit %g/s", g.events_per_second);
        add(text);
    }
    return out.empty() ? "on" : out;
}

std::string_view to_string(sort_key k) noexcept {
    switch (k) {
        case sort_key::activity:
            return "activity";
        case sort_key::events:
            return "events";
        case sort_key::rejects:
            return "rejects";
        case sort_key::drops:
            return "drops";
        case sort_key::restarts:
            return "restarts";
        case sort_key::uptime:
            return "uptime";
        case sort_key::name:
            return "name";
    }
    return "?";
}

sort_key next(sort_key k) noexcept {
    return static_cast<sort_key>((static_cast<std::size_t>(k) + 1) % sort_key_count);
}

view make_view(const snapshot* before, const snapshot& now, const view_options& o) {
    view v;
    v.now = &now;
    const double dt = before && now.uptime_seconds > before->uptime_seconds
                          ? now.uptime_seconds - before->uptime_seconds
                          : 0;
    if (dt <= 0) before = nullptr;  // telecap restarted, or no second snapshot: no rates
    v.interval_seconds = dt;

    std::map<std::string_view, const worker_sample*> old;
    if (before)
        for (const auto& w : before->workers) old.emplace(w.id, &w);
    static const worker_sample fresh;  // a worker new since `before`: counts from 0
    std::map<std::string, std::size_t> gate_kinds;
    double lines = 0, events = 0, rejects = 0;
    for (const auto& w : now.workers) {
        ++v.workers_total;
        // A remote gRPC worker (no process, dialled) counts as up too.
        if (w.state == "running" || w.state == "remote") ++v.workers_running;
        ++gate_kinds[w.gates];
        if (!o.pool.empty() && w.pool != o.pool) continue;
        worker_row r;
        r.w = &w;
        if (before) {
            const auto it = old.find(w.id);
            const worker_sample& b = it == old.end() ? fresh : *it->second;
            r.lines_per_s = rate(b.lines, w.lines, dt);
            r.events_per_s = rate(b.events, w.events, dt);
            std::uint64_t rejected = 0, most = 0;
            for (const auto& [reason, n] : w.rejected) {
                std::uint64_t was = 0;
                for (const auto& [br, bn] : b.rejected)
                    if (br == reason) was = bn;
                const std::uint64_t d = delta(was, n);
                rejected += d;
                if (d > most) {
                    most = d;
                    r.top_reject = reason;
                }
            }
            r.rejects_per_s = static_cast<double>(rejected) / dt;
            lines += r.lines_per_s;
            events += r.events_per_s;
            rejects += r.rejects_per_s;
        }
        v.workers.push_back(std::move(r));
    }
    if (before) {
        v.lines_per_s = lines;
        v.events_per_s = events;
        v.rejects_per_s = rejects;
        if (now.cpu_seconds >= 0 && before->cpu_seconds >= 0)
            v.cpu_percent = std::max(0.0, (now.cpu_seconds - before->cpu_seconds) / dt * 100);
    }
    // "198 on, 2 off": the most common first.
    std::vector<std::pair<std::size_t, std::string>> kinds;
    for (const auto& [kind, n] : gate_kinds) kinds.emplace_back(n, kind);
    std::stable_sort(kinds.begin(), kinds.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [n, kind] : kinds)
        v.gates += (v.gates.empty() ? "" : ", ") + std::to_string(n) + " " + kind;

    // Bigger first for every key but the name; ties by name, so rows do not jump around.
    const auto key = [&o](const worker_row& r) -> double {
        switch (o.sort) {
            case sort_key::activity:
                return r.lines_per_s;
            case sort_key::events:
                return r.events_per_s;
            case sort_key::rejects:
                return r.rejects_per_s;
            case sort_key::drops:
                return static_cast<double>(r.w->removed);
            case sort_key::restarts:
                return static_cast<double>(r.w->restarts);
            case sort_key::uptime:
                return r.w->uptime_seconds;
            case sort_key::name:
                return 0;
        }
        return 0;
    };
    std::sort(v.workers.begin(), v.workers.end(), [&](const worker_row& a, const worker_row& b) {
        const double ka = key(a), kb = key(b);
        if (ka != kb) return o.reverse ? ka < kb : ka > kb;
        if (o.sort == sort_key::name && o.reverse) return natural_less(b.w->id, a.w->id);
        return natural_less(a.w->id, b.w->id);
    });

    std::map<std::string_view, const output_sample*> old_outputs;
    if (before)
        for (const auto& out : before->outputs) old_outputs.emplace(out.id, &out);
    for (const auto& out : now.outputs) {
        output_row r;
        r.o = &out;
        if (before) {
            const auto it = old_outputs.find(out.id);
            r.sent_per_s = rate(it == old_outputs.end() ? 0 : it->second->events, out.events, dt);
        }
        v.outputs.push_back(r);
    }
    for (const auto& l : now.losses) {
        loss_row r;
        r.l = &l;
        if (before) {
            std::uint64_t was = 0;
            for (const auto& b : before->losses)
                if (b.reason == l.reason) was = b.count;
            r.per_s = rate(was, l.count, dt);
        }
        v.losses.push_back(r);
    }
    return v;
}

std::string next_pool(const snapshot& s, const std::string& current) {
    if (s.pools.empty()) return {};
    if (current.empty()) return s.pools.front();
    const auto it = std::find(s.pools.begin(), s.pools.end(), current);
    if (it == s.pools.end() || it + 1 == s.pools.end()) return {};
    return *(it + 1);
}

}  // namespace telecap::control::top
