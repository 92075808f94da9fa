#include "bridge/event_proto.hpp"

#include <variant>

namespace telecap::bridge {

wire_names::wire_names(const catalog& cat) {
    for (std::size_t i = 0; i < cat.event_count(); ++i) {
        const std::string_view wire = cat.wire_name(i);
        const auto* we = cat.find_event(wire);
        if (!we) continue;
        std::string dotted;
        for (const auto& part : we->parts) {
            if (!dotted.empty()) dotted += '.';
            dotted += part;
        }
        by_name_.emplace(std::move(dotted), entry{std::string(wire), i});
    }
    if (cat.policies().unknown_event == unknown_event_policy::keep)
        unknown_prefix_ = cat.policies().unknown_event_prefix;
}

bool wire_names::find(const event& ev, entry& out) const {
    const std::string dotted = ev.dotted_name();
    if (const auto it = by_name_.find(dotted); it != by_name_.end()) {
        out = it->second;
        return true;
    }
    // A kept unknown name: the prefix, then at least one part of the worker's name.
    if (unknown_prefix_.empty() || ev.name.size() <= unknown_prefix_.size() ||
        !ev.matches(unknown_prefix_))
        return false;
    out.index = std::string_view::npos;
    out.wire.clear();
    for (std::size_t i = unknown_prefix_.size(); i < ev.name.size(); ++i) {
        if (!out.wire.empty()) out.wire += '.';
        out.wire += ev.name[i];
    }
    return true;
}

std::string metadata_string(const metadata_value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    return "None";
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
