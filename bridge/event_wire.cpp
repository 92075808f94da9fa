#include "bridge/event_wire.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <variant>

namespace telecap::bridge {

namespace {

// Protobuf's wire format: a field is a tag (field number << 3 | wire type), then a varint, 8
// bytes, or a varint length and that many bytes.
constexpr char tag(unsigned field, unsigned type) { return static_cast<char>(field << 3 | type); }
constexpr unsigned varint = 0, fixed64 = 1, bytes = 2;

std::size_t varint_size(std::uint64_t v) noexcept {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

// A length-delimited field's whole size, for a payload of n bytes.
std::size_t field_size(std::size_t n) noexcept { return 1 + varint_size(n) + n; }

void put_varint(std::string& out, std::uint64_t v) {
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = static_cast<char>(v | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
}

void put_bytes(std::string& out, char t, std::string_view s) {
    out += t;
    put_varint(out, s.size());
    out.append(s);
}

// A metadata value as the worker's str() gives it (metadata_string, without allocating).
struct metadata_text {
    explicit metadata_text(const metadata_value& v) noexcept {
        if (const auto* s = std::get_if<std::string>(&v)) {
            text = *s;
        } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
            text = {digits, static_cast<std::size_t>(
                                std::to_chars(digits, digits + sizeof digits, *i).ptr - digits)};
        } else {
            text = "None";
        }
    }
    metadata_text(const metadata_text&) = delete;
    metadata_text& operator=(const metadata_text&) = delete;
    char digits[24];
    std::string_view text;
};

// TelemetryValue's size: the oneof member is written even when it holds its default.
std::size_t value_size(const measurement_value& v) noexcept {
    if (const auto* i = std::get_if<std::int64_t>(&v))
        return 1 + varint_size(static_cast<std::uint64_t>(*i));
    if (std::holds_alternative<double>(v)) return 1 + 8;
    return field_size(std::get<std::string>(v).size());
}

bool host_field(std::string_view key) noexcept {
    // The message carries these two as fields; a worker never puts them in its metadata.
    return key == "correlation_id" || key == "timestamp_ns";
}

}  // namespace

void append_event_wire(std::string& out, const event& ev, std::string_view wire) {
    // 1: event_parts
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = wire.find('.', start);
        put_bytes(out, tag(1, bytes), wire.substr(start, dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    // 2: measurements, map<string, TelemetryValue>: entries {1: key, 2: value}
    for (const auto& [key, value] : ev.measurements) {
        const std::size_t vsize = value_size(value);
        out += tag(2, bytes);
        put_varint(out, field_size(key.size()) + field_size(vsize));
        put_bytes(out, tag(1, bytes), key);
        out += tag(2, bytes);
        put_varint(out, vsize);
        if (const auto* i = std::get_if<std::int64_t>(&value)) {
            out += tag(1, varint);
            put_varint(out, static_cast<std::uint64_t>(*i));
        } else if (const auto* d = std::get_if<double>(&value)) {
            out += tag(2, fixed64);
            std::uint64_t bits;
            std::memcpy(&bits, d, 8);
            char le[8];
            for (int b = 0; b < 8; ++b) le[b] = static_cast<char>(bits >> (8 * b));
            out.append(le, 8);
        } else {
            put_bytes(out, tag(3, bytes), std::get<std::string>(value));
        }
    }
    // 3: metadata, map<string, string>
    for (const auto& [key, value] : ev.metadata) {
        if (host_field(key)) continue;
        const metadata_text v(value);
        out += tag(3, bytes);
        put_varint(out, field_size(key.size()) + field_size(v.text.size()));
        put_bytes(out, tag(1, bytes), key);
        put_bytes(out, tag(2, bytes), v.text);
    }
    // 4: timestamp_ns, 5: correlation_id; proto3 leaves out a field at its default.
    if (ev.timestamp_ns != 0) {
        out += tag(4, varint);
        put_varint(out, static_cast<std::uint64_t>(ev.timestamp_ns));
    }
    if (ev.correlation_id && !ev.correlation_id->empty())
        put_bytes(out, tag(5, bytes), *ev.correlation_id);
}

}  // namespace telecap::bridge
