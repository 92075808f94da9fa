#include "export/otlp_json.hpp"

#include <rapidjson/document.h>

#include <cmath>
#include <string>
#include <variant>

#include "capture/event_json.hpp"
#include "telecap/version.hpp"

namespace telecap::exporting {

namespace {

void key(std::string& out, std::string_view k) {
    out += '"';
    out += k;
    out += "\":";
}

void decimal(std::string& out, std::int64_t v) {
    out += '"';
    out += std::to_string(v);
    out += '"';
}

void decimal(std::string& out, std::uint64_t v) {
    out += '"';
    out += std::to_string(v);
    out += '"';
}

void string_kv(std::string& out, std::string_view k, std::string_view v) {
    out += "{\"key\":";
    append_json_string(out, k);
    out += ",\"value\":{\"stringValue\":";
    append_json_string(out, v);
    out += "}}";
}

// "attributes":[...] with a leading comma, or nothing for no attributes: an empty repeated
// field is the same as an absent one, and strict decoders read both back as absent.
void attributes(std::string& out, const string_attributes& attrs) {
    if (attrs.empty()) return;
    out += ",\"attributes\":[";
    bool first = true;
    for (const auto& [k, v] : attrs) {
        if (!first) out += ',';
        first = false;
        string_kv(out, k, v);
    }
    out += ']';
}

void resource(std::string& out, const string_attributes& attrs) {
    out += "\"resource\":{";
    if (!attrs.empty()) {
        // attributes() writes a leading comma; the resource has nothing before it.
        std::string tmp;
        attributes(tmp, attrs);
        out.append(tmp, 1);
    }
    out += '}';
}

void scope(std::string& out) {
    out += "\"scope\":{\"name\":\"telecap\",\"version\":";
    append_json_string(out, version_string);
    out += '}';
}

// asInt for integral values a double holds exactly (counts), asDouble otherwise.
void number_value(std::string& out, double v) {
    if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
        key(out, "asInt");
        decimal(out, static_cast<std::int64_t>(v));
    } else {
        key(out, "asDouble");
        append_json_double(out, v);
    }
}

void point_times(std::string& out, const metrics::point& p, bool with_start, std::int64_t now_ns,
                 std::int64_t default_start_ns) {
    if (with_start || p.start_ns > 0) {
        key(out, "startTimeUnixNano");
        decimal(out, p.start_ns > 0 ? p.start_ns : default_start_ns);
        out += ',';
    }
    key(out, "timeUnixNano");
    decimal(out, now_ns);
}

std::size_t number_points(std::string& out, const metrics::family& f, bool with_start,
                          std::int64_t now_ns, std::int64_t default_start_ns) {
    out += "\"dataPoints\":[";
    for (std::size_t i = 0; i < f.points.size(); ++i) {
        const auto& p = f.points[i];
        if (i) out += ',';
        out += '{';
        point_times(out, p, with_start, now_ns, default_start_ns);
        out += ',';
        number_value(out, p.value);
        attributes(out, p.labels);
        out += '}';
    }
    out += ']';
    return f.points.size();
}

std::size_t histogram_points(std::string& out, const metrics::family& f, std::int64_t now_ns,
                             std::int64_t default_start_ns) {
    out += "\"dataPoints\":[";
    std::size_t n = 0;
    for (const auto& p : f.points) {
        if (p.bucket_counts.size() != f.bounds.size() + 1) continue;  // malformed: not sendable
        if (n++) out += ',';
        out += '{';
        point_times(out, p, true, now_ns, default_start_ns);
        out += ',';
        key(out, "count");
        decimal(out, p.count);
        out += ',';
        key(out, "sum");
        append_json_double(out, p.sum);
        out += ",\"bucketCounts\":[";
        for (std::size_t i = 0; i < p.bucket_counts.size(); ++i) {
            if (i) out += ',';
            decimal(out, p.bucket_counts[i]);
        }
        out += ']';
        if (!f.bounds.empty()) {
            out += ",\"explicitBounds\":[";
            for (std::size_t i = 0; i < f.bounds.size(); ++i) {
                if (i) out += ',';
                append_json_double(out, f.bounds[i]);
            }
            out += ']';
        }
        attributes(out, p.labels);
        out += '}';
    }
    out += ']';
    return n;
}

void measurement_value(std::string& out, const measurement_value& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
        out += "{\"intValue\":";
        decimal(out, *i);
    } else if (const auto* d = std::get_if<double>(&v)) {
        out += "{\"doubleValue\":";
        append_json_double(out, *d);  // non-finite: "NaN"/"Infinity", protobuf's JSON mapping
    } else {
        out += "{\"stringValue\":";
        append_json_string(out, std::get<std::string>(v));
    }
    out += '}';
}

void metadata_value(std::string& out, const metadata_value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) {
        out += "{\"stringValue\":";
        append_json_string(out, *s);
        out += '}';
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
        out += "{\"intValue\":";
        decimal(out, *i);
        out += '}';
    } else {
        out += "{}";
    }
}

}  // namespace

std::string encode_metrics_request(const std::vector<metrics::family>& families,
                                   const string_attributes& res, std::int64_t now_ns,
                                   std::int64_t default_start_ns, std::size_t* points_sent) {
    std::string out = "{\"resourceMetrics\":[{";
    resource(out, res);
    out += ",\"scopeMetrics\":[{";
    scope(out);
    std::size_t points = 0;
    bool first = true;
    for (const auto& f : families) {
        if (f.points.empty()) continue;
        out += first ? ",\"metrics\":[" : ",";
        first = false;
        out += "{\"name\":";
        append_json_string(out, f.name);
        if (!f.description.empty()) {
            out += ",\"description\":";
            append_json_string(out, f.description);
        }
        if (!f.unit.empty()) {
            out += ",\"unit\":";
            append_json_string(out, f.unit);
        }
        switch (f.type) {
            case metrics::family_type::counter:
                out += ",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,";
                points += number_points(out, f, true, now_ns, default_start_ns);
                break;
            case metrics::family_type::gauge:
                out += ",\"gauge\":{";
                points += number_points(out, f, false, now_ns, default_start_ns);
                break;
            case metrics::family_type::histogram:
                out += ",\"histogram\":{\"aggregationTemporality\":2,";
                points += histogram_points(out, f, now_ns, default_start_ns);
                break;
        }
        out += "}}";
    }
    if (!first) out += ']';
    out += "}]}]}";
    if (points_sent) *points_sent = points;
    return out;
}

bool is_w3c_trace_id(std::string_view id) noexcept {
    if (id.size() != 32) return false;
    bool nonzero = false;
    for (char c : id) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        nonzero |= c != '0';
    }
    return nonzero;
}

void append_log_record(std::string& out, const event& ev, std::int64_t observed_ns) {
    out += '{';
    if (ev.timestamp_ns > 0) {
        key(out, "timeUnixNano");
        decimal(out, ev.timestamp_ns);
        out += ',';
    }
    key(out, "observedTimeUnixNano");
    decimal(out, observed_ns);
    out += ",\"severityNumber\":9,\"severityText\":\"INFO\"";
    const std::string name = ev.dotted_name();
    out += ",\"eventName\":";
    append_json_string(out, name);
    out += ",\"body\":{\"stringValue\":";
    append_json_string(out, name);
    out += '}';
    // Measurements and metadata are two namespaces ("measurement.duration" beside
    // "metadata.duration"); within one, the first of a repeated key wins (keys must be unique
    // in a record). A null metadata value says nothing: it is left out.
    std::vector<std::string_view> seen;
    bool any = false;
    const auto open = [&] {
        out += any ? "," : ",\"attributes\":[";
        any = true;
    };
    const auto fresh = [&](std::string_view k) {
        for (auto s : seen)
            if (s == k) return false;
        seen.push_back(k);
        return true;
    };
    std::string name_buf;
    const auto prefixed = [&](std::string_view prefix, std::string_view k) -> const std::string& {
        name_buf.assign(prefix);
        name_buf.append(k);
        return name_buf;
    };
    for (const auto& [k, v] : ev.measurements) {
        if (!fresh(k)) continue;
        open();
        out += "{\"key\":";
        append_json_string(out, prefixed("measurement.", k));
        out += ",\"value\":";
        measurement_value(out, v);
        out += '}';
    }
    seen.clear();
    for (const auto& [k, v] : ev.metadata) {
        if (std::holds_alternative<std::nullptr_t>(v) || !fresh(k)) continue;
        open();
        out += "{\"key\":";
        append_json_string(out, prefixed("metadata.", k));
        out += ",\"value\":";
        metadata_value(out, v);
        out += '}';
    }
    if (ev.correlation_id) {
        open();
        string_kv(out, "correlation_id", *ev.correlation_id);
    }
    if (any) out += ']';
    if (ev.correlation_id && is_w3c_trace_id(*ev.correlation_id)) {
        out += ",\"traceId\":\"";
        out += *ev.correlation_id;
        out += '"';
    }
    out += '}';
}

std::string encode_logs_request(const std::vector<std::string>& records,
                                const string_attributes& res) {
    std::size_t size = 256;
    for (const auto& r : records) size += r.size() + 1;
    std::string out;
    out.reserve(size);
    out += "{\"resourceLogs\":[{";
    resource(out, res);
    out += ",\"scopeLogs\":[{";
    scope(out);
    if (!records.empty()) {
        out += ",\"logRecords\":[";
        for (std::size_t i = 0; i < records.size(); ++i) {
            if (i) out += ',';
            out += records[i];
        }
        out += ']';
    }
    out += "}]}]}";
    return out;
}

std::uint64_t read_partial_success(std::string_view body, std::string_view rejected_key,
                                   std::string& message) {
    message.clear();
    if (body.empty() || body.front() != '{') return 0;
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject()) return 0;
    const auto ps = doc.FindMember("partialSuccess");
    if (ps == doc.MemberEnd() || !ps->value.IsObject()) return 0;
    const auto& obj = ps->value;
    const auto msg = obj.FindMember("errorMessage");
    if (msg != obj.MemberEnd() && msg->value.IsString())
        message.assign(msg->value.GetString(), msg->value.GetStringLength());
    const auto rej = obj.FindMember(rapidjson::Value(
        rejected_key.data(), static_cast<rapidjson::SizeType>(rejected_key.size())));
    if (rej == obj.MemberEnd()) return 0;
    if (rej->value.IsUint64()) return rej->value.GetUint64();
    if (rej->value.IsString()) {
        std::uint64_t n = 0;
        for (const char* p = rej->value.GetString(); *p; ++p) {
            if (*p < '0' || *p > '9') return 0;
            n = n * 10 + static_cast<std::uint64_t>(*p - '0');
        }
        return n;
    }
    return 0;
}

}  // namespace telecap::exporting
