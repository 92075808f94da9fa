#include "metrics/collectors.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "capture/event_json.hpp"

namespace telecap::metrics {

registry::collector_id add_stream_collector(registry& r, const stream_set& streams) {
    return r.add_collector([&streams](std::vector<sample>& out) {
        for (const auto& w : streams.all()) {
            const label_set l{{"stream", w->name()}};
            const auto& c = w->counters();
            const auto add = [&](const char* name, std::uint64_t v) {
                out.push_back({name, l, kind::counter, static_cast<double>(v)});
            };
            add("telecap_stream_written_lines_total", c.written_lines.load());
            add("telecap_stream_written_bytes_total", c.written_bytes.load());
            add("telecap_stream_dropped_lines_total", c.dropped_lines.load());
            add("telecap_stream_dropped_bytes_total", c.dropped_bytes.load());
            add("telecap_stream_write_errors_total", c.write_errors.load());
            add("telecap_stream_reopens_total", c.reopens.load());
            out.push_back({"telecap_stream_buffered_bytes", l, kind::gauge,
                           static_cast<double>(w->buffered())});
        }
    });
}

registry::collector_id add_passthrough_collector(registry& r,
                                                 std::vector<const passthrough_mux*> muxes) {
    return r.add_collector([muxes = std::move(muxes)](std::vector<sample>& out) {
        std::uint64_t split = 0, partial = 0;
        for (const auto* m : muxes) {
            split += m->long_lines_split();
            partial += m->partial_lines();
        }
        constexpr auto& split_counter = capture_counter_named("long_lines_split");
        constexpr auto& partial_counter = capture_counter_named("partial_lines");
        out.push_back(
            {std::string(split_counter.series), {}, kind::counter, static_cast<double>(split)});
        out.push_back(
            {std::string(partial_counter.series), {}, kind::counter, static_cast<double>(partial)});
    });
}

void append_capture_series(std::vector<sample>& out, const capture_stats& stats,
                           const label_set& labels, counter_scope scope) {
    for (const auto& c : capture_counters) {
        if (c.scope != scope) continue;
        for (std::size_t i = 0; i < c.size(); ++i) {
            label_set l = labels;
            if (!c.reasons.empty()) l.emplace_back("reason", std::string(c.reasons[i]));
            out.push_back({std::string(c.series), std::move(l), kind::counter,
                           static_cast<double>(c.get(stats, i))});
        }
    }
}

registry::collector_id add_capture_collector(registry& r, const capture_stats& stats) {
    return r.add_collector([&stats](std::vector<sample>& out) {
        append_capture_series(out, stats, {}, counter_scope::pipeline);
        append_capture_series(out, stats, {}, counter_scope::queue);
    });
}

namespace {

double open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    double n = 0;
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n - 1;  // the directory's own fd
}

}  // namespace

process_usage read_process_usage() {
    process_usage u;
    rusage ru{};
    if (::getrusage(RUSAGE_SELF, &ru) == 0) {
        const auto secs = [](const timeval& t) {
            return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
        };
        u.cpu_seconds = secs(ru.ru_utime) + secs(ru.ru_stime);
    }
    // statm: size resident shared ... in pages. One read of a short file, no allocation.
    const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[128];
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n > 0) {
            buf[n] = '\0';
            unsigned long size = 0, resident = 0;
            if (std::sscanf(buf, "%lu %lu", &size, &resident) == 2)
                u.rss_bytes =
                    static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
        }
    }
    return u;
}

registry::collector_id add_process_collector(registry& r) {
    return r.add_collector([](std::vector<sample>& out) {
        rusage ru{};
        if (::getrusage(RUSAGE_SELF, &ru) == 0) {
            const auto secs = [](const timeval& t) {
                return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
            };
            out.push_back({"process_cpu_seconds_total",
                           {},
                           kind::counter,
                           secs(ru.ru_utime) + secs(ru.ru_stime)});
            out.push_back({"process_max_resident_memory_bytes",
                           {},
                           kind::gauge,
                           static_cast<double>(ru.ru_maxrss) * 1024.0});
        }
        out.push_back({"process_open_fds", {}, kind::gauge, open_fds()});
    });
}

namespace {

// A label value as Prometheus' text format writes it.
std::string prometheus_escaped(const std::string& v) {
    std::string out;
    for (const char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string to_json(const std::vector<sample>& samples) {
    std::string out = "{";
    for (const auto& s : samples) {
        if (out.size() > 1) out += ',';
        std::string key = s.name;
        if (!s.labels.empty()) {
            key += '{';
            for (std::size_t i = 0; i < s.labels.size(); ++i) {
                if (i) key += ',';
                key += s.labels[i].first + "=\"" + prometheus_escaped(s.labels[i].second) + '"';
            }
            key += '}';
        }
        telecap::append_json_string(out, key);
        out += ':';
        char buf[32];
        if (!std::isfinite(s.value))
            std::snprintf(buf, sizeof buf, "null");
        else if (s.value == std::floor(s.value) && std::fabs(s.value) < 1e15)
            std::snprintf(buf, sizeof buf, "%.0f", s.value);
        else
            std::snprintf(buf, sizeof buf, "%.17g", s.value);
        out += buf;
    }
    out += '}';
    return out;
}

}  // namespace telecap::metrics
