#include "capture/normalizer.hpp"

#include <charconv>
#include <cstdlib>
#include <limits>

namespace telecap {

namespace {

enum class number_kind { integer, real, nan, pos_inf, neg_inf };

number_kind classify(std::string_view t) noexcept {
    if (t == "NaN" || t == "-NaN") return number_kind::nan;
    if (t == "Infinity" || t == "Inf") return number_kind::pos_inf;
    if (t == "-Infinity" || t == "-Inf") return number_kind::neg_inf;
    return t.find_first_of(".eE") == std::string_view::npos ? number_kind::integer
                                                              : number_kind::real;
}

bool parse_int64(std::string_view t, std::int64_t& out) noexcept {
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return ec == std::errc() && p == t.data() + t.size();
}

double parse_double(std::string_view t) {
    double d = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec == std::errc::result_out_of_range) {
        // 1e400 is valid JSON; Python's float() makes it inf (or 0.0 for 1e-400).
        const std::string copy(t);
        return std::strtod(copy.c_str(), nullptr);
    }
    return d;
}

template <typename V>
void upsert(std::vector<std::pair<std::string, V>>& members, std::string_view key, V value) {
    for (auto& [k, v] : members) {
        if (k == key) {  // a repeated key: the last one wins, as json.loads and protobuf do
            v = std::move(value);
            return;
        }
    }
    members.emplace_back(std::string(key), std::move(value));
}

bool reject(parse_error& err, reject_reason r, std::string detail) {
    err.reason = r;
    err.offset = 0;
    err.detail = std::move(detail);
    return false;
}

}  // namespace

std::string metadata_string(const raw_value& v) {
    switch (v.kind) {
        case raw_kind::true_: return "True";
        case raw_kind::false_: return "False";
        case raw_kind::null: return "None";
        case raw_kind::number:
            switch (classify(v.text)) {
                case number_kind::nan: return "nan";
                case number_kind::pos_inf: return "inf";
                case number_kind::neg_inf: return "-inf";
                default: return std::string(v.text);
            }
        default: return std::string(v.text);
    }
}

bool normalizer::normalize(const raw_event& raw, const worker_context& ctx,
                           std::int64_t receive_time_ns, event& out, parse_error& err) {
    // 1. Name: the parts joined with "." must be a wire name of the catalog.
    std::string_view wire = raw.event;
    if (raw.event_is_array) {
        name_.clear();
        for (std::size_t i = 0; i < raw.parts.size(); ++i) {
            if (i) name_ += '.';
            name_ += raw.parts[i];
        }
        wire = name_;
    }
    if (wire.empty()) return reject(err, reject_reason::bad_shape, "empty event name");
    out.name.clear();
    if (const auto* we = catalog_.find_event(wire)) {
        out.name = we->parts;
    } else if (catalog_.policies().unknown_event == unknown_event_policy::keep) {
        out.name = catalog_.policies().unknown_event_prefix;
        std::size_t start = 0;
        while (true) {
            const std::size_t dot = wire.find('.', start);
            const std::string_view part = wire.substr(start, dot - start);
            if (part.empty()) return reject(err, reject_reason::bad_shape, "empty event part");
            out.name.emplace_back(part);
            if (dot == std::string_view::npos) break;
            start = dot + 1;
        }
    } else {
        return reject(err, reject_reason::unknown_event,
                      "unknown event \"" + std::string(wire) + "\"");
    }

    // 2. Measurements: known keys only; int64, double or string.
    out.measurements.clear();
    for (const auto& m : raw.measurements) {
        if (!catalog_.known_measurement(m.key)) {
            if (catalog_.policies().unknown_measurement == unknown_measurement_policy::drop)
                continue;
            return reject(err, reject_reason::unknown_measurement,
                          "unknown measurement \"" + std::string(m.key) + "\"");
        }
        switch (m.value.kind) {
            case raw_kind::string:
                upsert(out.measurements, m.key, measurement_value(std::string(m.value.text)));
                break;
            case raw_kind::true_:
            case raw_kind::false_:
                upsert(out.measurements, m.key,
                       measurement_value(std::int64_t{m.value.kind == raw_kind::true_}));
                break;
            case raw_kind::number:
                switch (classify(m.value.text)) {
                    case number_kind::integer: {
                        std::int64_t i = 0;
                        if (!parse_int64(m.value.text, i))
                            return reject(err, reject_reason::bad_measurement,
                                          "measurement \"" + std::string(m.key) +
                                              "\" is out of int64 range");
                        upsert(out.measurements, m.key, measurement_value(i));
                        break;
                    }
                    case number_kind::real:
                        upsert(out.measurements, m.key,
                               measurement_value(parse_double(m.value.text)));
                        break;
                    case number_kind::nan:
                        upsert(out.measurements, m.key,
                               measurement_value(std::numeric_limits<double>::quiet_NaN()));
                        break;
                    case number_kind::pos_inf:
                        upsert(out.measurements, m.key,
                               measurement_value(std::numeric_limits<double>::infinity()));
                        break;
                    case number_kind::neg_inf:
                        upsert(out.measurements, m.key,
                               measurement_value(-std::numeric_limits<double>::infinity()));
                        break;
                }
                break;
            default:
                return reject(err, reject_reason::bad_measurement,
                              "measurement \"" + std::string(m.key) +
                                  "\" must be a number, a bool or a string");
        }
    }

    // 3. Timestamp and correlation id.
    if (raw.has_timestamp) {
        if (classify(raw.timestamp) != number_kind::integer ||
            !parse_int64(raw.timestamp, out.timestamp_ns))
            return reject(err, reject_reason::bad_shape, "timestamp_ns must be an int64 integer");
    } else {
        out.timestamp_ns = receive_time_ns;
    }
    if (raw.has_correlation_id && !raw.correlation_id.empty())
        out.correlation_id.emplace(raw.correlation_id);
    else
        out.correlation_id.reset();

    // 4. Metadata: str() of every value; unknown keys kept or dropped by policy.
    out.metadata.clear();
    const bool drop_unknown =
        catalog_.policies().unknown_metadata == unknown_metadata_policy::drop;
    for (const auto& m : raw.metadata) {
        if (drop_unknown && !catalog_.known_metadata(m.key)) continue;
        // The host's keys replace the worker's: skip them here, append them below.
        if (m.key == "node" || m.key == "pool_name" || m.key == "correlation_id" ||
            m.key == "timestamp_ns" || (m.key == "worker_id" && ctx.worker_id) ||
            (m.key == "python_pid" && ctx.pid))
            continue;
        upsert(out.metadata, m.key, metadata_value(metadata_string(m.value)));
    }
    out.metadata.emplace_back("node", metadata_value(ctx.node));
    if (ctx.worker_id) out.metadata.emplace_back("worker_id", metadata_value(*ctx.worker_id));
    out.metadata.emplace_back("pool_name", metadata_value(ctx.pool_name));
    if (ctx.pid) out.metadata.emplace_back("python_pid", metadata_value(*ctx.pid));
    out.metadata.emplace_back("correlation_id",
                              out.correlation_id ? metadata_value(*out.correlation_id)
                                                 : metadata_value(nullptr));
    out.metadata.emplace_back("timestamp_ns", metadata_value(out.timestamp_ns));
    return true;
}

}  // namespace telecap
