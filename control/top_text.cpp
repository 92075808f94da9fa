#include "control/top_text.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>

namespace telecap::control::top {

namespace {

// One UTF-8 sequence at s[i]: its code point and length; length 0 when it is not a valid,
// shortest-form sequence (a stray byte, a cut one, a surrogate, beyond U+10FFFF).
std::pair<char32_t, std::size_t> decode(std::string_view s, std::size_t i) {
    const auto b = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return {c, 1};
    std::size_t n = 0;
    char32_t cp = 0, least = 0;
    if ((c & 0xe0) == 0xc0) {
        n = 2, cp = c & 0x1fu, least = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, cp = c & 0x0fu, least = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, cp = c & 0x07u, least = 0x10000;
    } else {
        return {0, 0};
    }
    if (i + n > s.size()) return {0, 0};
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) return {0, 0};
        cp = (cp << 6) | (b(i + k) & 0x3fu);
    }
    if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {0, 0};
    return {cp, n};
}

// The columns a terminal gives a code point: 2 for East Asian wide and fullwidth ones (Markus
// Kuhn's wcwidth ranges, with the emoji blocks), 0 for combining marks, zero-width characters
// and variation selectors, 1 for the rest.
std::size_t columns_of(char32_t c) {
    if ((c >= 0x300 && c <= 0x36f) || (c >= 0x1ab0 && c <= 0x1aff) ||
        (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x200b && c <= 0x200f) ||
        (c >= 0x20d0 && c <= 0x20ff) || (c >= 0xfe00 && c <= 0xfe0f) ||
        (c >= 0xfe20 && c <= 0xfe2f))
        return 0;
    if (c < 0x1100) return 1;
    if (c <= 0x115f || c == 0x2329 || c == 0x232a || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe10 && c <= 0xfe19) || (c >= 0xfe30 && c <= 0xfe6f) ||
        (c >= 0xff00 && c <= 0xff60) || (c >= 0xffe0 && c <= 0xffe6) ||
        (c >= 0x1f300 && c <= 0x1f64f) || (c >= 0x1f900 && c <= 0x1f9ff) ||
        (c >= 0x20000 && c <= 0x2fffd) || (c >= 0x30000 && c <= 0x3fffd))
        return 2;
    return 1;
}

// What a worker's or an output's text may hold: control characters (C0, DEL, C1) become
// spaces, so a row stays one line whatever a last error says, and bytes that are not UTF-8
// become '?', so every cell's width is known.
std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto [cp, n] = decode(s, i);
        if (n == 0) {
            out += '?';
            ++i;
            continue;
        }
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            out += ' ';
        else
            out.append(s, i, n);
        i += n;
    }
    return out;
}

// At most `width` columns, cut between two characters (a combining mark stays with its
// base); a cut one ends with '~'.
std::string cut(const std::string& s, std::size_t width) {
    if (display_width(s) <= width) return s;
    if (width == 0) return {};
    std::size_t used = 0, i = 0;
    while (i < s.size()) {
        const auto [cp, n] = decode(s, i);
        const std::size_t w = n ? columns_of(cp) : 1;
        if (used + w > width - 1) break;
        used += w;
        i += n ? n : 1;
    }
    return s.substr(0, i) + "~";
}

struct column {
    std::string header;
    bool right = false;   // numbers: right-aligned
    int keep = 0;         // when too wide, the lowest is left out first
    bool flex = false;    // may be narrowed (and its cells cut) before columns are dropped
    std::size_t min = 0;  // a flexible column's narrowest
    std::size_t cap = 0;  // widest; 0: as wide as its cells
    std::vector<std::string> cells;
    std::size_t width = 0;
    bool shown = true;
};

// Widths and columns shown, for a table at most `width` wide (0: no limit). Columns are one
// space apart.
void fit(std::vector<column>& cols, std::size_t width) {
    for (auto& c : cols) {
        c.width = display_width(c.header);
        for (const auto& cell : c.cells) c.width = std::max(c.width, display_width(cell));
    }
    if (width == 0) return;  // no limit: whole cells, for scripts
    for (auto& c : cols)
        if (c.cap) c.width = std::min(c.width, std::max(c.cap, c.header.size()));
    const auto ideal = [&cols] {
        std::vector<std::size_t> w;
        for (const auto& c : cols) w.push_back(c.width);
        return w;
    }();
    while (true) {
        std::size_t total = 0, shown = 0;
        for (std::size_t i = 0; i < cols.size(); ++i) {
            if (!cols[i].shown) continue;
            cols[i].width = ideal[i];
            total += cols[i].width;
            ++shown;
        }
        total += shown ? shown - 1 : 0;
        // Narrow the flexible columns, the least useful first.
        std::vector<std::size_t> order;
        for (std::size_t i = 0; i < cols.size(); ++i)
            if (cols[i].shown && cols[i].flex) order.push_back(i);
        std::sort(order.begin(), order.end(),
                  [&cols](std::size_t a, std::size_t b) { return cols[a].keep < cols[b].keep; });
        for (const std::size_t i : order) {
            if (total <= width) break;
            const std::size_t floor = std::max(cols[i].min, std::size_t{1});
            const std::size_t give =
                std::min(total - width, cols[i].width - std::min(floor, cols[i].width));
            cols[i].width -= give;
            total -= give;
        }
        if (total <= width || shown <= 1) {
            // A lone column wider than the screen is cut to it.
            for (auto& c : cols)
                if (c.shown) c.width = std::min(c.width, width);
            return;
        }
        // Leave out the least useful column still shown.
        column* least = nullptr;
        for (auto& c : cols)
            if (c.shown && (!least || c.keep < least->keep)) least = &c;
        least->shown = false;
    }
}

std::string pad(const std::string& s, std::size_t width, bool right) {
    std::string t = cut(s, width);
    const std::string fill(width - std::min(width, display_width(t)), ' ');
    return right ? fill + t : t + fill;
}

void table(std::vector<std::string>& out, std::vector<column>& cols, std::size_t width,
           std::size_t rows) {
    fit(cols, width);
    const auto line = [&](const auto& text_of) {
        std::string l;
        bool first = true;
        for (const auto& c : cols) {
            if (!c.shown) continue;
            if (!first) l += ' ';
            first = false;
            l += pad(text_of(c), c.width, c.right);
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        out.push_back(std::move(l));
    };
    line([](const column& c) { return c.header; });
    for (std::size_t r = 0; r < rows; ++r) line([r](const column& c) { return c.cells[r]; });
}

std::string bytes(double b) {
    char text[32];
    if (b < 0) return "-";
    if (b < 1024 * 1024)
        std::snprintf(text, sizeof text, "%.0f KiB", b / 1024);
    else if (b < 1024.0 * 1024 * 1024)
        std::snprintf(text, sizeof text, "%.1f MiB", b / (1024 * 1024));
    else
        std::snprintf(text, sizeof text, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    return text;
}

}  // namespace

std::size_t display_width(std::string_view s) {
    std::size_t w = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto [cp, n] = decode(s, i);
        w += n ? columns_of(cp) : 1;
        i += n ? n : 1;
    }
    return w;
}

std::string format_rate(double r) {
    if (r < 0) return "-";
    char text[32];
    if (r == 0)
        return "0";
    else if (r < 9.95)
        std::snprintf(text, sizeof text, "%.1f", r);
    else if (r < 99999.5)
        std::snprintf(text, sizeof text, "%.0f", r);
    else if (r < 9.95e6)
        std::snprintf(text, sizeof text, "%.1fk", r / 1e3);
    else
        std::snprintf(text, sizeof text, "%.1fM", r / 1e6);
    return text;
}

std::string format_count(std::uint64_t n) {
    if (n < 100000) return std::to_string(n);
    char text[32];
    if (n < 10000000)
        std::snprintf(text, sizeof text, "%.0fk", static_cast<double>(n) / 1e3);
    else
        std::snprintf(text, sizeof text, "%.1fM", static_cast<double>(n) / 1e6);
    return text;
}

std::string format_duration(double seconds) {
    if (seconds < 0) seconds = 0;
    const auto s = static_cast<std::uint64_t>(seconds);
    char text[32];
    if (s < 60)
        std::snprintf(text, sizeof text, "%llus", static_cast<unsigned long long>(s));
    else if (s < 3600)
        std::snprintf(text, sizeof text, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                      static_cast<unsigned long long>(s % 60));
    else if (s < 86400)
        std::snprintf(text, sizeof text, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                      static_cast<unsigned long long>(s % 3600 / 60));
    else
        std::snprintf(text, sizeof text, "%llud%02lluh", static_cast<unsigned long long>(s / 86400),
                      static_cast<unsigned long long>(s % 86400 / 3600));
    return text;
}

std::vector<std::string> render(const view& v, const view_options& vo, const text_options& t) {
    std::vector<std::string> out;
    const snapshot& now = *v.now;
    const auto add = [&](std::string l) { out.push_back(t.width ? cut(l, t.width) : l); };

    // The summary.
    std::string head = "telecap top  up " + format_duration(now.uptime_seconds);
    head += "  workers " + std::to_string(v.workers_running) + "/" +
            std::to_string(v.workers_total) + " running";
    if (now.stopping) head += "  STOPPING";
    if (!t.title.empty()) head += "  " + printable(t.title);
    add(head);
    char cpu[32] = "-";
    if (v.cpu_percent >= 0) std::snprintf(cpu, sizeof cpu, "%.1f%%", v.cpu_percent);
    add("lines/s " + format_rate(v.lines_per_s) + "  events/s " + format_rate(v.events_per_s) +
        "  rejects/s " + format_rate(v.rejects_per_s) + "  queue " + format_count(now.queue_depth) +
        "  cpu " + cpu + "  rss " + bytes(now.rss_bytes));
    add("gates: " + (v.gates.empty() ? std::string("-") : v.gates));
    // The run's losses, the reasons with any only: a total, and its rate when it grew.
    std::string lost;
    for (const auto& r : v.losses) {
        if (r.l->count == 0) continue;
        lost += (lost.empty() ? "" : ", ") + r.l->reason + " " + format_count(r.l->count);
        if (r.per_s > 0) lost += " (" + format_rate(r.per_s) + "/s)";
    }
    if (!v.losses.empty()) add("lost: " + (lost.empty() ? std::string("none") : lost));
    char interval[48] = "first snapshot";
    if (v.interval_seconds > 0)
        std::snprintf(interval, sizeof interval, "over %.1fs", v.interval_seconds);
    std::string how =
        "sort: " + std::string(to_string(vo.sort)) + (vo.reverse ? " (reversed)" : "") +
        "  pool: " + (vo.pool.empty() ? std::string("all") : vo.pool) + "  rates " + interval;
    if (t.keys) how += "  keys: q quit, s sort, r reverse, p pool";
    add(how);
    add("");

    // How many worker rows fit: what the height leaves after everything else.
    std::size_t rows = v.workers.size();
    bool more = false;
    if (t.height) {
        const std::size_t fixed = out.size() + 1 + (v.outputs.empty() ? 0 : 2 + v.outputs.size());
        const std::size_t room = t.height > fixed ? t.height - fixed : 1;
        if (rows > room) {
            rows = room > 1 ? room - 1 : 0;
            more = true;
        }
    }

    std::vector<column> w = {
        {"WORKER", false, 100, true, 12, 40, {}}, {"POOL", false, 3, true, 6, 20, {}},
        {"STATE", false, 9, false, 0, 0, {}},     {"PID", true, 6, false, 0, 0, {}},
        {"UPTIME", true, 5, false, 0, 0, {}},     {"RESTARTS", true, 7, false, 0, 0, {}},
        {"LINES/S", true, 11, false, 0, 0, {}},   {"EVENTS/S", true, 10, false, 0, 0, {}},
        {"REJECTS/S", true, 8, false, 0, 0, {}},  {"TOP_REJECT", false, 2, true, 6, 24, {}},
        {"DROPS", true, 4, false, 0, 0, {}},      {"GATES", false, 1, true, 4, 30, {}},
    };
    for (std::size_t r = 0; r < rows; ++r) {
        const auto& row = v.workers[r];
        const auto& s = *row.w;
        const std::string cells[] = {
            printable(s.id),
            printable(s.pool),
            s.state + (s.stopped_on_request ? "*" : ""),
            s.pid ? std::to_string(s.pid) : "-",
            s.pid ? format_duration(s.uptime_seconds) : "-",
            std::to_string(s.restarts),
            format_rate(row.lines_per_s),
            format_rate(row.events_per_s),
            format_rate(row.rejects_per_s),
            row.top_reject.empty() ? "-" : row.top_reject,
            format_count(s.removed),
            s.gates,
        };
        for (std::size_t c = 0; c < w.size(); ++c) w[c].cells.push_back(cells[c]);
    }
    if (v.workers.empty())
        add(vo.pool.empty() ? "(no workers)" : "(no workers in pool " + printable(vo.pool) + ")");
    else
        table(out, w, t.width, rows);
    if (more)
        add("... " + std::to_string(v.workers.size() - rows) + " more worker" +
            (v.workers.size() - rows == 1 ? "" : "s"));

    if (!v.outputs.empty()) {
        add("");
        std::vector<column> o = {
            {"OUTPUT", false, 5, true, 8, 48, {}},     {"SENT/S", true, 4, false, 0, 0, {}},
            {"DROPPED", true, 3, false, 0, 0, {}},     {"ERRORS", true, 2, false, 0, 0, {}},
            {"LAST_ERROR", false, 1, true, 10, 0, {}},
        };
        for (const auto& row : v.outputs) {
            const std::string cells[] = {
                printable(row.o->id),
                format_rate(row.sent_per_s),
                format_count(row.o->dropped),
                format_count(row.o->errors),
                row.o->last_error.empty() ? "-" : printable(row.o->last_error),
            };
            for (std::size_t c = 0; c < o.size(); ++c) o[c].cells.push_back(cells[c]);
        }
        table(out, o, t.width, v.outputs.size());
    }
    if (t.height && out.size() > t.height) out.resize(t.height);
    return out;
}

}  // namespace telecap::control::top
