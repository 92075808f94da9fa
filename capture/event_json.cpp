#include "capture/event_json.hpp"

#include <array>
#include <charconv>
#include <cmath>

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

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    const auto* run = p;  // start of bytes that need no escaping
    const auto flush = [&](const unsigned char* upto) {
        out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(upto - run));
    };
    while (p < end) {
        const unsigned char c = *p;
        if (!special[c]) {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            if (const std::size_t n = utf8_sequence_length(p, end)) {
                p += n;
                continue;
            }
            flush(p);
            out += "\xEF\xBF\xBD";  // U+FFFD for a byte that is not UTF-8
            run = ++p;
            continue;
        }
        flush(p);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
        }
        run = ++p;
    }
    flush(p);
    out += '"';
}

void append_json_double(std::string& out, double d) {
    if (std::isnan(d)) {
        out += "\"NaN\"";
        return;
    }
    if (std::isinf(d)) {
        out += d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
        return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
    const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
    out += text;
    if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append_event_json(std::string& out, const event& ev) {
    out += "{\"event\":[";
    for (std::size_t i = 0; i < ev.name.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, ev.name[i]);
    }
    out += "],\"measurements\":{";
    bool first = true;
    for (const auto& [k, v] : ev.measurements) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        if (const auto* i = std::get_if<std::int64_t>(&v))
            append_int(out, *i);
        else if (const auto* d = std::get_if<double>(&v))
            append_json_double(out, *d);
        else
            append_json_string(out, std::get<std::string>(v));
    }
    out += "},\"metadata\":{";
    first = true;
    for (const auto& [k, v] : ev.metadata) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, k);
        out += ':';
        if (const auto* s = std::get_if<std::string>(&v))
            append_json_string(out, *s);
        else if (const auto* i = std::get_if<std::int64_t>(&v))
            append_int(out, *i);
        else
            out += "null";
    }
    out += "},\"timestamp_ns\":";
    append_int(out, ev.timestamp_ns);
    out += ",\"correlation_id\":";
    if (ev.correlation_id)
        append_json_string(out, *ev.correlation_id);
    else
        out += "null";
    out += "}\n";
}

}  // namespace telecap
