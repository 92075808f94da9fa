#include "control/status.hpp"

#include "capture/event_json.hpp"
#include "control/request.hpp"

namespace telecap::control {

namespace {

// ,"dropped":{"disabled":N,"sampled":N,...}: what the worker's gates removed, by verdict.
void append_gated(std::string& out, const worker_status& w) {
    out += ",\"dropped\":{";
    for (std::size_t v = 1; v < w.gated.size(); ++v) {
        if (v > 1) out += ',';
        out += '"';
        out += to_string(static_cast<verdict>(v));
        out += "\":" + std::to_string(w.gated[v]);
    }
    out += '}';
}

// ,"rejected":{"bad_json":N,...}: the worker's rejected telemetry lines, the reasons counted
// so far only (most are 0).
void append_rejected(std::string& out, const capture_stats& st) {
    out += ",\"rejected\":{";
    bool first = true;
    for (std::size_t r = 0; r < st.rejected.size(); ++r) {
        const std::uint64_t n = st.rejected[r];
        if (n == 0) continue;
        if (!first) out += ',';
        first = false;
        out += '"';
        out += to_string(static_cast<reject_reason>(r));
        out += "\":" + std::to_string(n);
    }
    out += '}';
}

void append_head(std::string& out, const worker_status& w, long pid) {
    append_json_string(out, w.id);
    out += ":{\"pool\":";
    append_json_string(out, w.pool);
    out += ",\"pid\":" + std::to_string(pid);
    out += ",\"state\":\"";
    out += w.state;
    out += '"';
}

}  // namespace

std::string status_json(const status_snapshot& s) {
    std::string out = "{\"uptime_seconds\":";
    append_json_double(out, s.uptime_seconds);
    out += ",\"stopping\":";
    out += s.stopping ? "true" : "false";
    out += ",\"pools\":[";
    for (std::size_t p = 0; p < s.pools.size(); ++p) {
        if (p) out += ',';
        out += "{\"name\":";
        append_json_string(out, s.pools[p].name);
        out += ",\"instances\":" + std::to_string(s.pools[p].instances) + "}";
    }
    out += "],\"workers\":{";
    for (std::size_t i = 0; i < s.workers.size(); ++i) {
        const auto& w = s.workers[i];
        if (i) out += ',';
        append_head(out, w, w.worker_pid);
        out += ",\"stopped_on_request\":";
        out += w.stopped_on_request ? "true" : "false";
        out += ",\"restarts\":" + std::to_string(w.restarts);
        out += ",\"uptime_seconds\":";
        append_json_double(out, w.uptime_seconds);
        if (w.exit_code) out += ",\"exit_code\":" + std::to_string(*w.exit_code);
        out += ",\"events\":" + std::to_string(w.stats->events);
        append_gated(out, w);
        out += ",\"controls\":";
        append_controls_json(out, *w.controls);
        // Added for top, after the members that were there before it.
        out += ",\"lines\":" + std::to_string(w.stats->lines);
        out += ",\"passthrough_lines\":" + std::to_string(w.stats->passthrough_lines);
        append_rejected(out, *w.stats);
        out += '}';
    }
    out += "},\"listeners\":[";
    for (std::size_t i = 0; i < s.listeners.size(); ++i) {
        if (i) out += ',';
        out += "{\"output\":";
        append_json_string(out, s.listeners[i].output);
        out += ",\"url\":";
        append_json_string(out, s.listeners[i].url);
        out += '}';
    }
    out += "],\"outputs\":[";
    for (std::size_t i = 0; i < s.outputs.size(); ++i) {
        const auto& o = s.outputs[i];
        if (i) out += ',';
        out += "{\"output\":";
        append_json_string(out, o.output);
        out += ",\"events\":" + std::to_string(o.events);
        out += ",\"dropped\":" + std::to_string(o.dropped);
        out += ",\"errors\":" + std::to_string(o.errors);
        out += ",\"last_error\":";
        append_json_string(out, o.last_error);
        out += '}';
    }
    out += "],\"queue_depth\":" + std::to_string(s.queue_depth);
    out += ",\"process\":{\"cpu_seconds\":";
    append_json_double(out, s.cpu_seconds);
    out += ",\"rss_bytes\":";
    append_json_double(out, s.rss_bytes);
    // Added after the members above, so a reader that knows only those is not affected.
    const auto& d = s.dropped;
    out += "},\"dropped\":{\"queue_full\":" + std::to_string(d.queue_full);
    out += ",\"shutdown\":" + std::to_string(d.shutdown);
    out += ",\"output\":" + std::to_string(d.output);
    out += ",\"tap\":" + std::to_string(d.tap);
    out += "},\"dropped_lines\":{\"passthrough\":" + std::to_string(d.passthrough_lines);
    out += ",\"rejects\":" + std::to_string(d.rejects_lines);
    out += "}}";
    return out;
}

std::string workers_json(const std::vector<worker_status>& workers) {
    std::string out = "{";
    for (std::size_t i = 0; i < workers.size(); ++i) {
        const auto& w = workers[i];
        if (i) out += ',';
        append_head(out, w, w.pid);
        out += ",\"restarts\":" + std::to_string(w.restarts);
        if (w.exit_code) out += ",\"exit_code\":" + std::to_string(*w.exit_code);
        out += ",\"lines\":" + std::to_string(w.stats->lines);
        out += ",\"events\":" + std::to_string(w.stats->events);
        out += ",\"passthrough_lines\":" + std::to_string(w.stats->passthrough_lines);
        out += ",\"rejected\":" + std::to_string(w.stats->rejected_total());
        append_gated(out, w);
        out += '}';
    }
    out += '}';
    return out;
}

}  // namespace telecap::control
