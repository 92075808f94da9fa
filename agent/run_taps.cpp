#include "agent/run_taps.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "outputs/log_handler.hpp"

namespace telecap::agent {

namespace {

// The local time with milliseconds and a space ("%Y-%m-%dT%H:%M:%S.%e ", -o log's pattern),
// the head of each log-format line, event or pass-through.
void append_log_time(std::string& out) {
    // The second's text is kept: one localtime_r per second, not per line (this thread's).
    thread_local std::int64_t cached_second = -1;
    thread_local char head[32];
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
    const std::int64_t second = ms / 1000;
    if (second != cached_second) {
        const time_t t = static_cast<time_t>(second);
        tm local{};
        ::localtime_r(&t, &local);
        std::strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &local);
        cached_second = second;
    }
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03d ", static_cast<int>(ms % 1000));
    out += head;
    out += millis;
}

}  // namespace

void append_log_line(std::string& out, const event& ev) {
    append_log_time(out);
    out += log_handler::format(ev);
    out += '\n';
}

void append_log_passthrough(std::string& out, const passthrough_line& line) {
    append_log_time(out);
    out += '[';
    out += line.worker;
    out += ' ';
    out += line.stream;
    out += "] ";
    for (const char c : line.text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\\') {
            out += "\\\\";
        } else if (u < 0x20 || u == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", u);
            out += esc;
        } else {
            out += c;
        }
    }
    if (line.truncated) out += "[...]";
    out += '\n';
}

run_taps::run_taps(handler_bus& bus, dispatcher& events, metrics::registry& registry,
                   std::shared_ptr<wire_names> names, std::function<void(bool)> passthrough)
    : registry_(registry) {
    control::tap_hooks h;
    // Attached and detached between two batches, like a reload's outputs: on the dispatch
    // thread, or at once on the loop thread with --dispatch loop.
    h.attach = [&bus, &events](const std::string& id, std::shared_ptr<handler> tap) {
        events.post([&bus, id, tap] { (void)bus.attach(id, {}, tap); });
    };
    h.detach = [&bus, &events](const std::string& id) {
        events.post([&bus, id] { bus.detach(id); });
    };
    h.wire_name = [names](const event& ev) { return names->of(ev); };
    h.render_log = append_log_line;
    h.name_ids_unique = true;  // catalogs live until exit (agent/reload.cpp keeps a reload's)
    h.render_log_line = append_log_passthrough;
    h.want_passthrough = std::move(passthrough);
    hub_ = std::make_unique<control::tap_hub>(std::move(h));
    series_ = registry_.add_collector([hub = hub_.get()](std::vector<metrics::sample>& out) {
        const auto counter = [&out](const char* name, double v, metrics::label_set labels = {}) {
            out.push_back({name, std::move(labels), metrics::kind::counter, v});
        };
        const auto taps = hub->open_taps();
        out.push_back(
            {"telecap_tap_open", {}, metrics::kind::gauge, static_cast<double>(taps.size())});
        counter("telecap_tap_opened_total", static_cast<double>(hub->opened()));
        counter("telecap_tap_events_total", static_cast<double>(hub->sent_total()));
        counter("telecap_tap_dropped_total", static_cast<double>(hub->dropped_total()));
        for (const auto& t : taps) {
            metrics::label_set l{{"tap", std::to_string(t.id)}};
            counter("telecap_tap_client_events_total", static_cast<double>(t.sent), l);
            counter("telecap_tap_client_dropped_total", static_cast<double>(t.dropped), l);
        }
    });
}

run_taps::~run_taps() {
    registry_.remove_collector(series_);
    hub_.reset();
}

}  // namespace telecap::agent
