#include "bridge/event_proto.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <variant>

namespace telecap::bridge {

std::string metadata_string(const metadata_value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    return "None";
}

namespace {

constexpr std::size_t number_room = 32;  // the longest double or int64 text fits

std::string_view number_text(char* at, double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
    const auto r = std::to_chars(at, at + number_room - 2, d);
    std::size_t n = static_cast<std::size_t>(r.ptr - at);
    // "1" would read as an integer: a double keeps its kind.
    if (std::find_if(at, r.ptr, [](char c) { return c == '.' || c == 'e'; }) == r.ptr) {
        at[n++] = '.';
        at[n++] = '0';
    }
    return {at, n};
}

std::string_view number_text(char* at, std::int64_t i) {
    const auto r = std::to_chars(at, at + number_room, i);
    return {at, static_cast<std::size_t>(r.ptr - at)};
}

template <typename Map, typename Fill>
void sorted_members(const Map& map, std::vector<raw_member>& out, Fill fill) {
    out.resize(map.size());
    std::size_t i = 0;
    for (const auto& [key, value] : map) {
        out[i].key = key;
        fill(value, out[i].value);
        ++i;
    }
    std::sort(out.begin(), out.end(),
              [](const raw_member& a, const raw_member& b) { return a.key < b.key; });
}

}  // namespace

void to_raw(const pb::TelemetryEvent& in, raw_event& out, std::vector<char>& numbers) {
    out.clear();
    out.has_event = true;
    out.event_is_array = true;
    out.parts.assign(in.event_parts().begin(), in.event_parts().end());
    // Room for every number first: the views must not move.
    const std::size_t room = (static_cast<std::size_t>(in.measurements_size()) + 1) * number_room;
    if (numbers.size() < room) numbers.resize(room);
    char* next = numbers.data();
    sorted_members(in.measurements(), out.measurements,
                   [&](const pb::TelemetryValue& v, raw_value& rv) {
                       switch (v.value_case()) {
                           case pb::TelemetryValue::kIntValue:
                               rv = {raw_kind::number, number_text(next, v.int_value())};
                               next += number_room;
                               break;
                           case pb::TelemetryValue::kFloatValue:
                               rv = {raw_kind::number, number_text(next, v.float_value())};
                               next += number_room;
                               break;
                           case pb::TelemetryValue::kStringValue:
                               rv = {raw_kind::string, v.string_value()};
                               break;
                           default:
                               rv = {raw_kind::invalid, {}};
                               break;
                       }
                   });
    sorted_members(in.metadata(), out.metadata, [](const std::string& v, raw_value& rv) {
        rv = {raw_kind::string, v};
    });
    if (in.timestamp_ns() != 0) {
        out.has_timestamp = true;
        out.timestamp = number_text(next, in.timestamp_ns());
    }
    out.has_correlation_id = true;
    out.correlation_id = in.correlation_id();
}

void to_proto(const event& ev, std::string_view wire, pb::TelemetryEvent& out) {
    out.Clear();
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = wire.find('.', start);
        out.add_event_parts(std::string(wire.substr(start, dot - start)));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    auto& measurements = *out.mutable_measurements();
    for (const auto& [key, value] : ev.measurements) {
        pb::TelemetryValue& v = measurements[key];
        if (const auto* i = std::get_if<std::int64_t>(&value))
            v.set_int_value(*i);
        else if (const auto* d = std::get_if<double>(&value))
            v.set_float_value(*d);
        else
            v.set_string_value(std::get<std::string>(value));
    }
    auto& metadata = *out.mutable_metadata();
    for (const auto& [key, value] : ev.metadata) {
        // The message carries these two as fields; a worker never puts them in its metadata.
        if (key == "correlation_id" || key == "timestamp_ns") continue;
        metadata[key] = metadata_string(value);
    }
    out.set_timestamp_ns(ev.timestamp_ns);
    out.set_correlation_id(ev.correlation_id.value_or(std::string()));
}

}  // namespace telecap::bridge
