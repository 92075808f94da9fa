#include "capture/event_json.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include "capture/utf8.hpp"

namespace telecap {

namespace {

constexpr char hex[] = "0123456789abcdef";

// Bytes that leave the fast path: control characters, '"', '\\', and anything non-ASCII
// (checked as UTF-8).
constexpr auto special = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = true;
    t['"'] = t['\\'] = true;
    for (int c = 0x80; c < 0x100; ++c) t[static_cast<std::size_t>(c)] = true;
    return t;
}();

// Writes into space reserved up front: the per-event path does no capacity checks.
class raw_writer {
public:
    explicit raw_writer(char* p) : p_(p) {}
    char* end() const noexcept { return p_; }

    void lit(std::string_view s) noexcept {
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
    }
    void ch(char c) noexcept { *p_++ = c; }
    void i64(std::int64_t v) noexcept { p_ = std::to_chars(p_, p_ + 24, v).ptr; }
    void dbl(double d) noexcept {
        if (std::isnan(d)) return lit("\"NaN\"");
        if (std::isinf(d)) return lit(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        char* const start = p_;
        p_ = std::to_chars(p_, p_ + 32, d).ptr;  // shortest round-trip form
        // Keep a "." or an exponent so that the value reads back as a double.
        if (std::string_view(start, static_cast<std::size_t>(p_ - start)).find_first_of(".e") ==
            std::string_view::npos)
            lit(".0");
    }
    void str(std::string_view s) noexcept {
        *p_++ = '"';
        const auto* q = reinterpret_cast<const unsigned char*>(s.data());
        const auto* end = q + s.size();
        while (q < end) {
            const auto* run = q;
            while (q < end && !special[*q]) ++q;
            lit({reinterpret_cast<const char*>(run), static_cast<std::size_t>(q - run)});
            if (q == end) break;
            if (*q >= 0x80) {
                if (const std::size_t n = utf8_sequence_length(q, end)) {
                    lit({reinterpret_cast<const char*>(q), n});
                    q += n;
                } else {
                    lit("\xEF\xBF\xBD");  // U+FFFD for a byte that is not UTF-8
                    ++q;
                }
                continue;
            }
            escape(*q++);
        }
        *p_++ = '"';
    }

private:
    void escape(unsigned char c) noexcept {
        switch (c) {
            case '"': lit("\\\""); break;
            case '\\': lit("\\\\"); break;
            case '\n': lit("\\n"); break;
            case '\r': lit("\\r"); break;
            case '\t': lit("\\t"); break;
            case '\b': lit("\\b"); break;
            case '\f': lit("\\f"); break;
            default:
                lit("\\u00");
                ch(hex[c >> 4]);
                ch(hex[c & 0xF]);
        }
    }

    char* p_;
};

// Room for a string in the worst case (every byte escaped as \u00XX) plus quotes and a comma.
constexpr std::size_t room(std::string_view s) noexcept { return 6 * s.size() + 3; }
constexpr std::size_t number_room = 40;

std::size_t bound(const event& ev) noexcept {
    std::size_t n = 128;  // the fixed keys and punctuation
    for (const auto& p : ev.name) n += room(p);
    for (const auto& [k, v] : ev.measurements) {
        n += room(k) + 1;
        const auto* s = std::get_if<std::string>(&v);
        n += s ? room(*s) : number_room;
    }
    for (const auto& [k, v] : ev.metadata) {
        n += room(k) + 1;
        const auto* s = std::get_if<std::string>(&v);
        n += s ? room(*s) : number_room;
    }
    if (ev.correlation_id) n += room(*ev.correlation_id);
    return n + number_room;
}

void write_event(raw_writer& w, const event& ev) {
    w.lit("{\"event\":[");
    for (std::size_t i = 0; i < ev.name.size(); ++i) {
        if (i) w.ch(',');
        w.str(ev.name[i]);
    }
    w.lit("],\"measurements\":{");
    bool first = true;
    for (const auto& [k, v] : ev.measurements) {
        if (!first) w.ch(',');
        first = false;
        w.str(k);
        w.ch(':');
        if (const auto* i = std::get_if<std::int64_t>(&v))
            w.i64(*i);
        else if (const auto* d = std::get_if<double>(&v))
            w.dbl(*d);
        else
            w.str(std::get<std::string>(v));
    }
    w.lit("},\"metadata\":{");
    first = true;
    for (const auto& [k, v] : ev.metadata) {
        if (!first) w.ch(',');
        first = false;
        w.str(k);
        w.ch(':');
        if (const auto* s = std::get_if<std::string>(&v))
            w.str(*s);
        else if (const auto* i = std::get_if<std::int64_t>(&v))
            w.i64(*i);
        else
            w.lit("null");
    }
    w.lit("},\"timestamp_ns\":");
    w.i64(ev.timestamp_ns);
    w.lit(",\"correlation_id\":");
    if (ev.correlation_id)
        w.str(*ev.correlation_id);
    else
        w.lit("null");
    w.lit("}\n");
}

// Runs `write` on a raw_writer over `room` bytes reserved at the end of `out`.
template <typename F>
void append_with(std::string& out, std::size_t room, F write) {
    const std::size_t start = out.size();
    out.resize(start + room);
    raw_writer w(out.data() + start);
    write(w);
    out.resize(static_cast<std::size_t>(w.end() - out.data()));
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    append_with(out, room(s), [&](raw_writer& w) { w.str(s); });
}

void append_json_string_array(std::string& out, const std::vector<std::string>& list) {
    out += '[';
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, list[i]);
    }
    out += ']';
}

void append_json_double(std::string& out, double d) {
    append_with(out, number_room, [&](raw_writer& w) { w.dbl(d); });
}

void append_event_json(std::string& out, const event& ev) {
    append_with(out, bound(ev), [&](raw_writer& w) { write_event(w, ev); });
}

}  // namespace telecap
