#include "outputs/log_handler.hpp"

#include <spdlog/spdlog.h>

#include "capture/event_json.hpp"
#include "capture/utf8.hpp"

namespace telecap {

namespace {

void append_hex(std::string& out, const char* lead, unsigned v, int digits) {
    static constexpr char hex[] = "0123456789abcdef";
    out += lead;
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex[(v >> shift) & 0xF];
}

// Keys and values come from the worker: a newline would forge a line and an escape sequence
// would drive the reader's terminal. Escaped: C0 controls, DEL, C1 controls (U+0080..U+009F,
// which some terminals obey), backslash, bytes that are not UTF-8 (as \xNN, keeping the byte),
// and `also` (the characters that would forge structure in this position).
void append_escaped(std::string& out, std::string_view s, std::string_view also) {
    const auto* const begin = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = begin + s.size();
    for (const auto* p = begin; p < end;) {
        const unsigned c = *p;
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(p, end);
            if (n == 0) {
                append_hex(out, "\\x", c, 2);
                ++p;
            } else if (c == 0xC2 && p[1] < 0xA0) {
                append_hex(out, "\\u", p[1], 4);  // C1
                p += n;
            } else {
                out.append(reinterpret_cast<const char*>(p), n);
                p += n;
            }
            continue;
        }
        ++p;
        switch (c) {
            case '\n':
                out += "\\n";
                continue;
            case '\t':
                out += "\\t";
                continue;
            case '\r':
                out += "\\r";
                continue;
            case '\\':
                out += "\\\\";
                continue;
            default:
                break;
        }
        const bool escape_also = also.find(static_cast<char>(c)) != std::string_view::npos;
        if (c == '"' && escape_also)
            out += "\\\"";
        else if (c < 0x20 || c == 0x7F || escape_also)
            append_hex(out, "\\x", c, 2);
        else
            out += static_cast<char>(c);
    }
}

// In a key: nothing that reads as a separator (" k=v", " |") or a quote.
void append_key(std::string& out, std::string_view key) { append_escaped(out, key, " =|\""); }

void append_quoted(std::string& out, std::string_view value) {
    out += '"';
    append_escaped(out, value, "\"");
    out += '"';
}

}  // namespace

std::string log_handler::format(const event& ev) {
    std::string out;
    append_key(out, ev.dotted_name());
    for (const auto& [k, v] : ev.measurements) {
        out += ' ';
        append_key(out, k);
        out += '=';
        if (const auto* i = std::get_if<std::int64_t>(&v))
            out += std::to_string(*i);
        else if (const auto* d = std::get_if<double>(&v))
            append_json_double(out, *d);
        else
            append_quoted(out, std::get<std::string>(v));
    }
    out += " |";
    for (const auto& [k, v] : ev.metadata) {
        if (k == "timestamp_ns" || k == "node") continue;  // noise in a debug view
        out += ' ';
        append_key(out, k);
        out += '=';
        if (const auto* s = std::get_if<std::string>(&v))
            append_quoted(out, *s);
        else if (const auto* i = std::get_if<std::int64_t>(&v))
            out += std::to_string(*i);
        else
            out += "null";
    }
    return out;
}

void log_handler::handle(const event& ev) { logger_->info("{}", format(ev)); }

void log_handler::flush() { logger_->flush(); }

}  // namespace telecap
