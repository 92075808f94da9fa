#include "capture/normalizer.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "capture/key_shapes.hpp"
#include "capture/swar.hpp"

namespace telecap {

namespace {

enum class number_kind { integer, out_of_range, real, nan, pos_inf, neg_inf };

// One pass over a JSON number's text: its kind and, for an integer, its value.
[[gnu::always_inline]] inline number_kind scan_number(std::string_view t,
                                                      std::int64_t& out) noexcept {
    const char* p = t.data();
    const char* const end = p + t.size();
    const bool neg = p < end && *p == '-';
    if (neg) ++p;
    if (p < end && (*p == 'N' || *p == 'I'))
        return *p == 'N' ? number_kind::nan : neg ? number_kind::neg_inf : number_kind::pos_inf;
    std::uint64_t v = 0;
    bool overflow = false;
    // Up to 19 digits cannot overflow a uint64 (10^19 - 1 < 2^64); only longer numbers pay
    // for the checks (nanosecond timestamps have 19). Eight digits at a time where there are
    // eight (SWAR: check and combine them in a few operations).
    const char* fast_end = end - p > 19 ? p + 19 : end;
    while (fast_end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if (non_digit_bytes(w)) break;  // not eight digits
        std::uint64_t x = w - 0x3030303030303030ull;
        x = (x * 10) + (x >> 8);
        x = (((x & 0x000000FF000000FFull) * 0x000F424000000064ull) +
             (((x >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >>
            32;
        v = v * 100000000 + x;
        p += 8;
    }
    for (; p < fast_end; ++p) {
        const auto d = static_cast<unsigned>(*p - '0');
        if (d > 9) return number_kind::real;  // '.', 'e' or 'E'
        v = v * 10 + d;
    }
    for (; p < end; ++p) {
        const auto d = static_cast<unsigned>(*p - '0');
        if (d > 9) return number_kind::real;
        overflow |= __builtin_mul_overflow(v, 10u, &v);
        overflow |= __builtin_add_overflow(v, d, &v);
    }
    constexpr std::uint64_t max = std::numeric_limits<std::int64_t>::max();
    if (overflow || v > max + (neg ? 1 : 0)) return number_kind::out_of_range;
    out = neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
    return number_kind::integer;
}

double parse_double(std::string_view t) {
    double d = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
    if (ec == std::errc::result_out_of_range) {
        // 1e-400 underflows: RapidJSON accepts it and Python's float() makes it 0.0.
        const std::string copy(t);
        return std::strtod(copy.c_str(), nullptr);
    }
    return d;
}

// `s` = `v`. A value of the same length as the old one (ids, session ids, timestamps: most of
// the values that change from line to line) is copied over it in place, with word moves the
// compiler inlines: no call into std::string, no length bookkeeping.
[[gnu::always_inline]] inline void assign_in_place(std::string& s, std::string_view v) {
    const std::size_t n = v.size();
    if (n != s.size() || n > 16) {
        s.assign(v);
        return;
    }
    char* d = s.data();
    const char* x = v.data();
    if (n >= 8) {
        std::uint64_t a, b;
        std::memcpy(&a, x, 8);
        std::memcpy(&b, x + n - 8, 8);
        std::memcpy(d, &a, 8);
        std::memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        std::uint32_t a, b;
        std::memcpy(&a, x, 4);
        std::memcpy(&b, x + n - 4, 4);
        std::memcpy(d, &a, 4);
        std::memcpy(d + n - 4, &b, 4);
    } else {
        for (std::size_t i = 0; i < n; ++i) d[i] = x[i];
    }
}

// Fills a member list in place: the event is reused line after line, so keys and string
// values keep their capacity and most lines allocate nothing.
template <typename V>
class member_writer {
public:
    explicit member_writer(std::vector<std::pair<std::string, V>>& members) : m_(members) {}
    ~member_writer() { finish(); }
    // Trims the members to those written. True when the keys are not the ones the list held
    // before (a key written over, added or cut off).
    bool finish() {
        if (m_.size() != n_) {
            m_.resize(n_);
            changed_ = true;
        }
        return changed_;
    }

    // The slot for `key`; a repeated key gets its earlier slot (the last value wins, as with
    // json.loads and protobuf maps).
    [[gnu::always_inline]] V& slot(std::string_view key) {
        if (V* earlier = repeated(key)) return *earlier;
        return append(key);
    }
    // The next slot when it holds `key` already (and `key` is not a repeat): taken, its key
    // not written again. Null, and nothing taken, otherwise.
    [[gnu::always_inline]] V* next_if_holds(std::string_view key) {
        if (n_ >= m_.size() || !same_string(m_[n_].first, key) || repeated(key)) return nullptr;
        return &m_[n_++].second;
    }
    [[gnu::always_inline]] V& append(std::string_view key) {
        if (n_ == m_.size()) {
            m_.emplace_back();
            changed_ = true;  // a key where there was none, even an empty one
        }
        std::string& k = m_[n_].first;
        if (!same_string(k, key)) {  // line after line the keys repeat
            k.assign(key);
            changed_ = true;
        }
        return m_[n_++].second;
    }
    std::size_t size() const noexcept { return n_; }

private:
    [[gnu::always_inline]] V* repeated(std::string_view key) {
        for (std::size_t i = 0; i < n_; ++i)
            if (same_string(m_[i].first, key)) return &m_[i].second;
        return nullptr;
    }

    std::vector<std::pair<std::string, V>>& m_;
    std::size_t n_ = 0;
    bool changed_ = false;
};

template <typename V>
[[gnu::always_inline]] inline void set_string(V& v, std::string_view s) {
    if (auto* str = std::get_if<std::string>(&v)) {
        if (!same_string(*str, s)) assign_in_place(*str, s);  // the host's values repeat
    } else {
        v.template emplace<std::string>(s);
    }
}

bool reject(parse_error& err, reject_reason r, std::string detail) {
    err.reason = r;
    err.offset = 0;
    err.detail = std::move(detail);
    return false;
}

// True for the metadata keys the host sets itself (and so replaces).
bool host_key(std::string_view k, const worker_context& ctx) noexcept {
    switch (k.size()) {
        case 4:
            return same_string(k, "node");
        case 9:
            return same_string(k, "pool_name") || (ctx.worker_id && same_string(k, "worker_id"));
        case 10:
            return ctx.pid && same_string(k, "python_pid");
        case 12:
            return same_string(k, "timestamp_ns");
        case 14:
            return same_string(k, "correlation_id");
        default:
            return false;
    }
}

// More members than this and the linear duplicate check would be quadratic on hostile input.
constexpr std::size_t max_members = 1024;

}  // namespace

std::string metadata_string(const raw_value& v) {
    switch (v.kind) {
        case raw_kind::true_:
            return "True";
        case raw_kind::false_:
            return "False";
        case raw_kind::null:
            return "None";
        case raw_kind::number: {
            std::int64_t ignored = 0;
            switch (scan_number(v.text, ignored)) {
                case number_kind::nan:
                    return "nan";
                case number_kind::pos_inf:
                    return "inf";
                case number_kind::neg_inf:
                    return "-inf";
                default:
                    return std::string(v.text);
            }
        }
        default:
            return std::string(v.text);
    }
}

const catalog::wire_event* normalizer::resolve(const raw_event& raw, std::string_view& wire) {
    wire = raw.event;
    if (raw.event_is_array) {
        name_.clear();
        for (std::size_t i = 0; i < raw.parts.size(); ++i) {
            if (i) name_ += '.';
            name_ += raw.parts[i];
        }
        wire = name_;
    }
    wire_ = wire;
    return wire.empty() ? nullptr : catalog_.find_event(wire);
}

bool normalizer::normalize(const raw_event& raw, const worker_context& ctx,
                           std::int64_t receive_time_ns, event& out, parse_error& err) {
    std::string_view wire;
    const catalog::wire_event* we = resolve(raw, wire);
    return fill(raw, we, wire, ctx, receive_time_ns, out, err, false);
}

event* normalizer::normalize(const raw_event& raw, const worker_context& ctx,
                             std::int64_t receive_time_ns, event_slot_source& slots,
                             parse_error& err) {
    std::string_view wire;
    const catalog::wire_event* we = resolve(raw, wire);
    event& out = slots.slot(we ? catalog_.event_index(*we) : std::string_view::npos);
    return fill(raw, we, wire, ctx, receive_time_ns, out, err, true) ? &out : nullptr;
}

bool normalizer::fill(const raw_event& raw, const catalog::wire_event* we, std::string_view wire,
                      const worker_context& ctx, std::int64_t receive_time_ns, event& out,
                      parse_error& err, bool slot) {
    // 1. Name: the parts joined with "." must be a wire name of the catalog.
    if (wire.empty()) return reject(err, reject_reason::bad_shape, "empty event name");
    // A slot last filled for this very entry: its name and its measurement keys are this
    // entry's and its catalog's (event_slot_source; a slot moved from has lost its name).
    const bool warm = slot && we && out.name_id == we && out.name.size() == we->parts.size();
    out.name_id = we;
    if (we) {
        // Part by part: consecutive events share most parts ("snakepit", "python").
        if (!warm) {
            out.name.resize(we->parts.size());
            for (std::size_t i = 0; i < we->parts.size(); ++i)
                if (!same_string(out.name[i], we->parts[i])) out.name[i].assign(we->parts[i]);
        }
    } else if (catalog_.policies().unknown_event == unknown_event_policy::keep) {
        out.name = catalog_.policies().unknown_event_prefix;  // then the wire name's parts
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

    // The keys' id holds only if this event ends with the keys it started with: 0 until then,
    // so an event left half written by a rejection never keeps an id its keys no longer have.
    const std::uint64_t keys_id = out.keys_id;
    out.keys_id = 0;
    bool keys_changed = false;

    // 2. Measurements: known keys only; int64, double or string.
    if (raw.measurements.size() > max_members || raw.metadata.size() > max_members)
        return reject(err, reject_reason::bad_shape, "more than 1024 measurements or metadata");
    {
        member_writer<measurement_value> w(out.measurements);
        for (const auto& m : raw.measurements) {
            // A warm slot's key in its place is one the catalog knows (event_slot_source).
            measurement_value* const in_place = warm ? w.next_if_holds(m.key) : nullptr;
            if (!in_place && !catalog_.known_measurement(m.key)) {
                if (catalog_.policies().unknown_measurement == unknown_measurement_policy::drop)
                    continue;
                return reject(err, reject_reason::unknown_measurement,
                              "unknown measurement \"" + std::string(m.key) + "\"");
            }
            const auto slot = [&]() -> measurement_value& {
                return in_place ? *in_place : w.slot(m.key);
            };
            switch (m.value.kind) {
                case raw_kind::string:
                    set_string(slot(), m.value.text);
                    break;
                case raw_kind::true_:
                    slot() = std::int64_t{1};
                    break;
                case raw_kind::false_:
                    slot() = std::int64_t{0};
                    break;
                case raw_kind::number: {
                    std::int64_t i = 0;
                    switch (scan_number(m.value.text, i)) {
                        case number_kind::integer:
                            slot() = i;
                            break;
                        case number_kind::out_of_range:
                            return reject(
                                err, reject_reason::bad_measurement,
                                "measurement \"" + std::string(m.key) + "\" is out of int64 range");
                        case number_kind::real:
                            slot() = parse_double(m.value.text);
                            break;
                        case number_kind::nan:
                            slot() = std::numeric_limits<double>::quiet_NaN();
                            break;
                        case number_kind::pos_inf:
                            slot() = std::numeric_limits<double>::infinity();
                            break;
                        case number_kind::neg_inf:
                            slot() = -std::numeric_limits<double>::infinity();
                            break;
                    }
                    break;
                }
                default:
                    return reject(err, reject_reason::bad_measurement,
                                  "measurement \"" + std::string(m.key) +
                                      "\" must be a number, a bool or a string");
            }
        }
        keys_changed = w.finish();
    }

    // 3. Timestamp and correlation id.
    if (raw.has_timestamp) {
        if (scan_number(raw.timestamp, out.timestamp_ns) != number_kind::integer)
            return reject(err, reject_reason::bad_shape, "timestamp_ns must be an int64 integer");
    } else {
        out.timestamp_ns = receive_time_ns;
    }
    if (raw.has_correlation_id && !raw.correlation_id.empty()) {
        if (out.correlation_id)
            assign_in_place(*out.correlation_id, raw.correlation_id);
        else
            out.correlation_id.emplace(raw.correlation_id);
    } else {
        out.correlation_id.reset();
    }
    out.control_seq = 0;
    for (const char c : raw.control_seq) {  // digits only; anything else leaves it 0
        if (c < '0' || c > '9' || out.control_seq > (~std::uint64_t{0} - 9) / 10) {
            out.control_seq = 0;
            break;
        }
        out.control_seq = out.control_seq * 10 + static_cast<std::uint64_t>(c - '0');
    }

    // 4. Metadata: str() of every value; unknown keys kept or dropped by policy.
    const bool drop_unknown = catalog_.policies().unknown_metadata == unknown_metadata_policy::drop;
    member_writer<metadata_value> w(out.metadata);
    for (const auto& m : raw.metadata) {
        if (drop_unknown && !catalog_.known_metadata(m.key)) continue;
        // The host's keys replace the worker's: skip them here, append them below.
        if (host_key(m.key, ctx)) continue;
        metadata_value& v = w.slot(m.key);
        switch (m.value.kind) {
            case raw_kind::string:
            case raw_kind::nested:
                set_string(v, m.value.text);
                break;
            default:
                v = metadata_string(m.value);
                break;
        }
    }
    set_string(w.append("node"), ctx.node);
    if (ctx.worker_id) set_string(w.append("worker_id"), *ctx.worker_id);
    set_string(w.append("pool_name"), ctx.pool_name);
    if (ctx.pid) w.append("python_pid") = *ctx.pid;
    if (out.correlation_id)
        set_string(w.append("correlation_id"), *out.correlation_id);
    else
        w.append("correlation_id") = nullptr;
    w.append("timestamp_ns") = out.timestamp_ns;
    keys_changed |= w.finish();
    out.keys_id = keys_id != 0 && !keys_changed ? keys_id : shapes_.id(out);
    return true;
}

}  // namespace telecap
