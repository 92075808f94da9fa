#include "capture/parser.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <bit>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <cctype>
#include <cstring>
#include <vector>

#include "capture/swar.hpp"
#include "capture/utf8.hpp"

namespace telecap {
namespace {

// The in-situ stream over the parser's buffer, which always carries at least
// scan_padding bytes past the payload's terminator: that is what lets the string scan
// below read whole words without checking for the end.
struct padded_insitu_stream : rapidjson::InsituStringStream {
    using rapidjson::InsituStringStream::GenericInsituStringStream;
};
constexpr std::size_t scan_padding = 16;

constexpr std::uint64_t highs = 0x8080808080808080ull;

// Sixteen bytes as one value of the compiler's portable vector extension (SSE2 on x86-64,
// NEON on ARM); comparisons give 0xFF in the lanes that match.
using v16 = unsigned char __attribute__((vector_size(16)));

// Index (0..15) of the first 0xFF lane of a comparison result, or 16 if there is none.
inline std::size_t first_lane(v16 m) noexcept {
#if defined(__SSE2__)
    // One byte mask and one count, without branches (16 for no lane: the bit above the mask).
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(reinterpret_cast<__m128i>(m)));
    return static_cast<std::size_t>(std::countr_zero(mask | 0x10000u));
#else
    std::uint64_t w[2];
    std::memcpy(w, &m, 16);
    // The first lane is the lowest-addressed byte: the low end of a word on a little-endian
    // machine, the high end on a big-endian one.
    const auto first = [](std::uint64_t x) {
        if constexpr (std::endian::native == std::endian::little)
            return static_cast<std::size_t>(__builtin_ctzll(x)) / 8;
        else
            return static_cast<std::size_t>(__builtin_clzll(x)) / 8;
    };
    if (w[0]) return first(w[0]);
    if (w[1]) return 8 + first(w[1]);
    return 16;
#endif
}

// Offset (0..15) of the first '"', '\\' or control byte among the sixteen at p, or 16.
inline std::size_t first_string_stop(const char* p) noexcept {
    const v16 quote = v16{} + static_cast<unsigned char>('"');
    const v16 bslash = v16{} + static_cast<unsigned char>('\\');
    const v16 space = v16{} + static_cast<unsigned char>(' ');
    v16 v;
    std::memcpy(&v, p, 16);
    return first_lane(static_cast<v16>((v == quote) | (v == bslash) | (v < space)));
}

// Copies the payload into the parse buffer and tells, in the same pass, whether it holds a
// non-ASCII byte (UTF-8 to validate before any reader sees it). Sixteen bytes at a time with
// the compiler's portable vector extension (SSE2 on x86-64, NEON on ARM). A NUL or a '\\'
// needs no pass of its own here: the fast reader refuses both, so they are looked for only
// before a line goes to RapidJSON.
inline bool copy_and_scan(const char* src, std::size_t n, char* dst) noexcept {
    v16 any{};
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16 v;
        std::memcpy(&v, src + i, 16);
        std::memcpy(dst + i, &v, 16);
        any |= v;
    }
    if (i < n) {
        unsigned char tail[16];
        std::memset(tail, ' ', sizeof tail);  // neutral filler: ASCII
        std::memcpy(tail, src + i, n - i);
        std::memcpy(dst + i, tail, n - i);
        v16 v;
        std::memcpy(&v, tail, 16);
        any |= v;
    }
    std::uint64_t w[2];
    std::memcpy(w, &any, 16);
    return ((w[0] | w[1]) & highs) != 0;
}

}  // namespace
}  // namespace telecap

namespace rapidjson {

template <>
struct StreamTraits<telecap::padded_insitu_stream> {
    enum { copyOptimization = 1 };
};

// RapidJSON's reader calls ScanCopyUnescapedString before its byte-by-byte string loop as an
// optional fast path (its own versions need SSE and 16-byte alignment). This one moves sixteen
// bytes at a time up to the first '"', '\\' or control byte; the reader's loop takes it from
// there. Only used with the padded stream above, only in this file.
template <>
template <>
inline void GenericReader<UTF8<>, UTF8<>, CrtAllocator>::ScanCopyUnescapedString<
    telecap::padded_insitu_stream, telecap::padded_insitu_stream>(telecap::padded_insitu_stream& is,
                                                                  telecap::padded_insitu_stream&) {
    char* p = is.src_;
    if (is.dst_ == p) {  // nothing unescaped yet: the string stays where it is
        for (;;) {
            const std::size_t n = telecap::first_string_stop(p);
            p += n;
            if (n < 16) break;
        }
        is.src_ = is.dst_ = p;
        return;
    }
    char* q = is.dst_;  // behind p after an escape: move the bytes down
    for (;;) {
        const std::size_t n = telecap::first_string_stop(p);
        std::memmove(q, p, n);  // q < p: only bytes already read are overwritten
        p += n;
        q += n;
        if (n < 16) break;
    }
    is.src_ = p;
    is.dst_ = q;
}

}  // namespace rapidjson

namespace telecap {

void raw_event::clear() noexcept {
    has_event = event_is_array = has_timestamp = has_correlation_id = false;
    event = timestamp = correlation_id = control_seq = {};
    parts.clear();
    measurements.clear();
    metadata.clear();
}

namespace {

enum class field : std::uint8_t {
    none,
    event,
    measurements,
    metadata,
    timestamp,
    correlation,
    control_seq
};

[[gnu::always_inline]] inline field top_level_field(std::string_view key) noexcept {
    switch (key.size()) {  // one comparison per key on the per-line path
        case 5:
            return key == "event" ? field::event : field::none;
        case 8:
            return key == "metadata" ? field::metadata : field::none;
        case 11:
            return key == "control_seq" ? field::control_seq : field::none;
        case 12:
            return key == "measurements"   ? field::measurements
                   : key == "timestamp_ns" ? field::timestamp
                                           : field::none;
        case 14:
            return key == "correlation_id" ? field::correlation : field::none;
        default:
            return field::none;  // other top-level keys are ignored
    }
}

// A decoded string can still hold a lone UTF-16 surrogate written as a \u escape
// (RapidJSON encodes it as ED A0..BF xx); no other invalid UTF-8 survives its validation.
bool has_lone_surrogate(const char* s, std::size_t n) noexcept {
    const void* p = std::memchr(s, 0xED, n);
    while (p) {
        const auto* c = static_cast<const unsigned char*>(p);
        const std::size_t at = static_cast<std::size_t>(reinterpret_cast<const char*>(c) - s);
        if (at + 1 < n && c[1] >= 0xA0) return true;
        p = at + 1 < n ? std::memchr(c + 1, 0xED, n - at - 1) : nullptr;
    }
    return false;
}

// Where nested metadata values are serialized; kept from line to line like the parse buffer.
struct nested_scratch {
    std::string text;  // compact JSON of the line's nested values; raw values are views into it
    rapidjson::StringBuffer buffer;  // the value being serialized
    rapidjson::Writer<rapidjson::StringBuffer> writer;
};

// SAX handler: fills a raw_event; returns false (stopping the parse) on a schema violation.
class sax_handler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, sax_handler> {
public:
    sax_handler(raw_event& ev, nested_scratch& nested, std::size_t max_depth,
                std::size_t payload_size, bool has_escapes)
        : ev_(ev),
          nested_(nested.text),
          buffer_(nested.buffer),
          writer_(nested.writer),
          max_depth_(max_depth),
          payload_size_(payload_size),
          has_escapes_(has_escapes) {}

    bool failed() const noexcept { return failed_; }
    reject_reason reason() const noexcept { return reason_; }
    const char* detail() const noexcept { return detail_; }

    // The callbacks of every member are inlined into the readers: a call each was some 15
    // instructions of a line's ~1,300 in the fast reader.
    bool Null() { return scalar({raw_kind::null, {}}); }
    bool Bool(bool b) { return scalar({b ? raw_kind::true_ : raw_kind::false_, {}}); }
    [[gnu::always_inline]] bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
        return scalar({raw_kind::number, {s, n}});
    }
    [[gnu::always_inline]] bool String(const char* s, rapidjson::SizeType n, bool) {
        if (has_escapes_ && has_lone_surrogate(s, n))
            return fail(reject_reason::invalid_utf8, "lone surrogate");
        return scalar({raw_kind::string, {s, n}});
    }
    [[gnu::always_inline]] bool Key(const char* s, rapidjson::SizeType n, bool) {
        if (has_escapes_ && has_lone_surrogate(s, n))
            return fail(reject_reason::invalid_utf8, "lone surrogate");
        if (sub_ > 0) return mode_ != sub_mode::serialize || writer_.Key(s, n);
        if (depth_ == 1) {
            cur_ = top_level_field({s, n});
            if (cur_ == field::event) ev_.parts.clear();
        } else {
            key_ = {s, n};
        }
        return true;
    }
    [[gnu::always_inline]] bool StartObject() { return start(true); }
    [[gnu::always_inline]] bool EndObject(rapidjson::SizeType) { return end(true); }
    bool StartArray() { return start(false); }
    bool EndArray(rapidjson::SizeType) { return end(false); }

private:
    enum class sub_mode : std::uint8_t { skip, serialize };

    bool fail(reject_reason r, const char* detail) {
        failed_ = true;
        reason_ = r;
        detail_ = detail;
        return false;
    }

    [[gnu::always_inline]] bool scalar(raw_value v) {
        if (sub_ > 0) {
            if (mode_ == sub_mode::skip) return true;
            switch (v.kind) {
                case raw_kind::null:
                    return writer_.Null();
                case raw_kind::true_:
                    return writer_.Bool(true);
                case raw_kind::false_:
                    return writer_.Bool(false);
                case raw_kind::number:
                    return writer_.RawValue(v.text.data(), v.text.size(), rapidjson::kNumberType);
                default:
                    return writer_.String(v.text.data(),
                                          static_cast<rapidjson::SizeType>(v.text.size()));
            }
        }
        switch (depth_) {
            case 0:
                return fail(reject_reason::bad_shape, "not a json object");
            case 1:
                return top_scalar(v);
            default:
                switch (cur_) {
                    case field::event:
                        if (v.kind != raw_kind::string)
                            return fail(reject_reason::bad_shape, "event parts must be strings");
                        ev_.parts.push_back(v.text);
                        return true;
                    case field::measurements:
                        ev_.measurements.push_back({key_, v});
                        return true;
                    case field::metadata:
                        ev_.metadata.push_back({key_, v});
                        return true;
                    default:
                        return true;
                }
        }
    }

    bool top_scalar(raw_value v) {
        switch (cur_) {
            case field::event:
                if (v.kind != raw_kind::string)
                    return fail(reject_reason::bad_shape, "event must be a string or an array");
                ev_.has_event = true;
                ev_.event_is_array = false;
                ev_.event = v.text;
                return true;
            case field::measurements:
            case field::metadata:
                // A null map is an empty one (Python's metadata=None); anything else is not.
                if (v.kind == raw_kind::null) return true;
                return fail(reject_reason::bad_shape, cur_ == field::measurements
                                                          ? "measurements must be an object"
                                                          : "metadata must be an object");
            case field::timestamp:
                if (v.kind == raw_kind::null) {
                    ev_.has_timestamp = false;
                    return true;
                }
                if (v.kind != raw_kind::number)
                    return fail(reject_reason::bad_shape, "timestamp_ns must be an integer");
                ev_.has_timestamp = true;
                ev_.timestamp = v.text;
                return true;
            case field::correlation:
                if (v.kind == raw_kind::null) {
                    ev_.has_correlation_id = false;
                    return true;
                }
                if (v.kind != raw_kind::string)
                    return fail(reject_reason::bad_shape, "correlation_id must be a string");
                ev_.has_correlation_id = true;
                ev_.correlation_id = v.text;
                return true;
            case field::control_seq:
                // The emitter's tag (docs/control.md); anything but a number is ignored.
                ev_.control_seq = v.kind == raw_kind::number ? v.text : std::string_view{};
                return true;
            case field::none:
                return true;
        }
        return true;
    }

    [[gnu::always_inline]] bool start(bool object) {
        if (++depth_ > max_depth_) return fail(reject_reason::too_deep, "nesting too deep");
        if (sub_ > 0) {
            ++sub_;
            if (mode_ == sub_mode::skip) return true;
            return object ? writer_.StartObject() : writer_.StartArray();
        }
        if (depth_ == 1) {
            return object || fail(reject_reason::bad_shape, "not a json object");
        }
        if (depth_ == 2) {
            switch (cur_) {
                case field::none:
                    return begin_sub(sub_mode::skip, object);
                case field::event:
                    if (object)
                        return fail(reject_reason::bad_shape, "event must be a string or an array");
                    ev_.has_event = true;
                    ev_.event_is_array = true;
                    ev_.parts.clear();
                    return true;
                case field::measurements:
                    return object ||
                           fail(reject_reason::bad_shape, "measurements must be an object");
                case field::metadata:
                    return object || fail(reject_reason::bad_shape, "metadata must be an object");
                case field::timestamp:
                    return fail(reject_reason::bad_shape, "timestamp_ns must be an integer");
                case field::correlation:
                    return fail(reject_reason::bad_shape, "correlation_id must be a string");
                case field::control_seq:
                    return begin_sub(sub_mode::skip, object);
            }
        }
        // depth 3: a container as a member value, or inside the event array.
        switch (cur_) {
            case field::event:
                return fail(reject_reason::bad_shape, "event parts must be strings");
            case field::measurements:
                ev_.measurements.push_back({key_, {raw_kind::invalid, {}}});
                return begin_sub(sub_mode::skip, object);
            case field::metadata:
                return begin_sub(sub_mode::serialize, object);
            default:
                return begin_sub(sub_mode::skip, object);
        }
    }

    bool begin_sub(sub_mode mode, bool object) {
        sub_ = 1;
        mode_ = mode;
        if (mode == sub_mode::skip) return true;
        // The compact text of nested metadata can never exceed the payload's size, so reserving
        // that much keeps views into nested_ stable while it grows.
        if (nested_.capacity() < payload_size_ + 1) nested_.reserve(payload_size_ + 1);
        nested_start_ = nested_.size();
        buffer_.Clear();
        writer_.Reset(buffer_);
        return object ? writer_.StartObject() : writer_.StartArray();
    }

    [[gnu::always_inline]] bool end(bool object) {
        --depth_;
        if (sub_ > 0) {
            --sub_;
            if (mode_ == sub_mode::serialize) {
                if (!(object ? writer_.EndObject() : writer_.EndArray())) return false;
                if (sub_ == 0) {
                    // nested_ is reserved up front so these views stay valid (see begin_sub()).
                    nested_.append(buffer_.GetString(), buffer_.GetSize());
                    ev_.metadata.push_back(
                        {key_,
                         {raw_kind::nested, std::string_view(nested_).substr(nested_start_)}});
                }
            }
            return true;
        }
        return true;
    }

    raw_event& ev_;
    std::string& nested_;
    rapidjson::StringBuffer& buffer_;
    rapidjson::Writer<rapidjson::StringBuffer>& writer_;
    std::size_t max_depth_;
    std::size_t payload_size_;
    bool has_escapes_;  // only a \u escape can smuggle in a lone surrogate
    std::size_t depth_ = 0;
    std::size_t sub_ = 0;  // depth inside a skipped or serialized member value
    sub_mode mode_ = sub_mode::skip;
    field cur_ = field::none;
    std::string_view key_;
    std::size_t nested_start_ = 0;
    bool failed_ = false;
    reject_reason reason_ = reject_reason::bad_shape;
    const char* detail_ = "";
};

// The fast path: a strict subset of JSON read straight into the same SAX handler. It takes
// what emitters write (objects, arrays, strings without escapes, true/false/null, numbers
// without an exponent) and gives up, returning false, on anything else: an escape, a control
// byte, an exponent, NaN or Infinity, a syntax error, or a handler that refuses the input. The
// caller then parses the line again with RapidJSON, so errors, offsets and every rarer form
// keep RapidJSON's behaviour exactly; what the fast path accepts RapidJSON accepts too, with
// the same handler calls in the same order. Nothing is written to the buffer, which ends in a
// NUL and scan_padding bytes (a NUL stops every loop below).
class fast_reader {
public:
    static constexpr std::size_t max_stack = 64;  // deeper input goes to RapidJSON

    template <typename Handler>
    static bool parse(const char* p, const char* end, Handler& h) {
        bool object[max_stack];  // per open container: object (true) or array (false)
        std::size_t depth = 0;
        skip_ws(p);
        if (*p != '{') return false;
        ++p;
        if (!h.StartObject()) return false;
        object[depth++] = true;
        bool first = true;  // just after '{' or '['
        for (;;) {
            // After a value or an opening bracket the next byte is rarely whitespace.
            if (static_cast<unsigned char>(*p) <= ' ') skip_ws(p);
            const bool in_object = object[depth - 1];
            const char close = in_object ? '}' : ']';
            if (*p == close) {
                ++p;
                if (!(in_object ? h.EndObject(0) : h.EndArray(0))) return false;
                if (--depth == 0) {
                    skip_ws(p);
                    return p == end;  // anything after the root object: RapidJSON's error
                }
                first = false;
                continue;
            }
            if (!first) {
                if (*p != ',') return false;
                ++p;
                skip_ws(p);
            }
            first = false;
            if (in_object) {
                const char* k = nullptr;
                std::size_t kn = 0;
                if (!string(p, k, kn) || !h.Key(k, static_cast<rapidjson::SizeType>(kn), false))
                    return false;
                if (*p != ':') skip_ws(p);  // a key is followed by ':' at once, as a rule
                if (*p != ':') return false;
                ++p;
                skip_ws(p);
            }
            switch (*p) {
                case '"': {
                    const char* v = nullptr;
                    std::size_t vn = 0;
                    if (!string(p, v, vn) ||
                        !h.String(v, static_cast<rapidjson::SizeType>(vn), false))
                        return false;
                    break;
                }
                case '{':
                case '[':
                    if (depth == max_stack) return false;
                    object[depth++] = *p == '{';
                    if (!(*p++ == '{' ? h.StartObject() : h.StartArray())) return false;
                    first = true;
                    break;
                case 't':
                    if (std::memcmp(p, "true", 4) != 0 || !h.Bool(true)) return false;
                    p += 4;
                    break;
                case 'f':
                    if (std::memcmp(p, "false", 5) != 0 || !h.Bool(false)) return false;
                    p += 5;
                    break;
                case 'n':
                    if (std::memcmp(p, "null", 4) != 0 || !h.Null()) return false;
                    p += 4;
                    break;
                default: {
                    const char* n = p;
                    if (!number(p) ||
                        !h.RawNumber(n, static_cast<rapidjson::SizeType>(p - n), false))
                        return false;
                }
            }
        }
    }

private:
    static bool digit(char c) noexcept { return static_cast<unsigned>(c - '0') < 10; }

    // Emitters write Python's separators (", " and ": "): one space, then the next token;
    // two comparisons for that, the loop for any other run of whitespace.
    static void skip_ws(const char*& p) noexcept {
        if (*p == ' ') ++p;
        if (static_cast<unsigned char>(*p) > ' ') [[likely]]
            return;
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') ++p;
    }

    // Past a run of digits, eight bytes at a time: the buffer's NUL terminator and padding
    // make the reads past the payload safe, and the NUL ends every run.
    static const char* skip_digits(const char* p) noexcept {
        for (;;) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            if (const std::uint64_t m = non_digit_bytes(w))
                return p + ((std::endian::native == std::endian::little ? std::countr_zero(m)
                                                                        : std::countl_zero(m)) >>
                            3);
            p += 8;
        }
    }

    // p at '"'. No escapes and no control bytes; the UTF-8 was validated before the parse.
    static bool string(const char*& p, const char*& s, std::size_t& n) noexcept {
        if (*p != '"') return false;
        const char* q = p + 1;
        for (;;) {
            const std::size_t k = first_string_stop(q);
            q += k;
            if (k < 16) break;
        }
        if (*q != '"') return false;  // '\\' or a control byte (the final NUL among them)
        s = p + 1;
        n = static_cast<std::size_t>(q - s);
        p = q + 1;
        return true;
    }

    // -?(0|[1-9][0-9]*)(\.[0-9]+)?, at most 64 characters: a number RapidJSON can never find
    // too big. An exponent, NaN and Infinity go to RapidJSON.
    static bool number(const char*& p) noexcept {
        const char* const start = p;
        if (*p == '-') ++p;
        if (*p == '0') {
            ++p;
        } else if (digit(*p)) {
            p = skip_digits(p + 1);
        } else {
            return false;
        }
        if (*p == '.') {
            ++p;
            if (!digit(*p)) return false;
            p = skip_digits(p + 1);
        }
        return *p != 'e' && *p != 'E' && p - start <= 64;
    }
};

}  // namespace

struct event_parser::reader {
    rapidjson::Reader r;
    std::vector<char> buf;  // in-situ copy of the payload, NUL-terminated and padded
    nested_scratch nested;
};

event_parser::event_parser(std::size_t max_depth, bool fast_path)
    : reader_(std::make_unique<reader>()), max_depth_(max_depth), fast_path_(fast_path) {}
event_parser::~event_parser() = default;
event_parser::event_parser(event_parser&&) noexcept = default;
event_parser& event_parser::operator=(event_parser&&) noexcept = default;

bool event_parser::parse(std::string_view payload, raw_event& out, parse_error& err) {
    out.clear();
    last_fast_ = false;
    std::vector<char>& buf = reader_->buf;
    if (buf.size() < payload.size() + scan_padding) buf.resize(payload.size() + scan_padding);
    const bool non_ascii = copy_and_scan(payload.data(), payload.size(), buf.data());
    std::memset(buf.data() + payload.size(), 0, scan_padding);  // terminator and padding
    // RapidJSON's in-situ stream ends at NUL, which would hide what follows it. Looked for
    // before the UTF-8 check (a line with both is refused for its NUL), else only when the fast
    // reader gave up: it never takes a line with a NUL.
    const auto nul_refused = [&] {
        const void* nul = std::memchr(payload.data(), '\0', payload.size());
        if (!nul) return false;
        err.reason = reject_reason::invalid_json;
        err.offset = static_cast<std::size_t>(static_cast<const char*>(nul) - payload.data());
        err.detail = "nul byte in telemetry line";
        return true;
    };
    // UTF-8 is checked here, not by RapidJSON: 1.1.0's validator reads up to three bytes past
    // the terminator after a truncated sequence at the end of the input (found by fuzzing).
    if (non_ascii) {
        if (nul_refused()) return false;
        if (const std::size_t bad = first_invalid_utf8(payload); bad != std::string_view::npos) {
            err.reason = reject_reason::invalid_utf8;
            err.offset = bad;
            err.detail = "invalid utf-8";
            return false;
        }
    }
    if (fast_path_) {
        reader_->nested.text.clear();
        // No escapes: the fast reader refuses a '\\' anywhere, so no lone surrogate either.
        sax_handler fast(out, reader_->nested, max_depth_, payload.size(), false);
        if (fast_reader::parse(buf.data(), buf.data() + payload.size(), fast)) {
            last_fast_ = true;
            if (out.has_event) return true;
            err.reason = reject_reason::bad_shape;
            err.offset = 0;
            err.detail = "missing event";
            return false;
        }
        out.clear();  // the handler may have taken part of the line: start again
    }
    if (!non_ascii && nul_refused()) return false;
    const bool backslash = std::memchr(payload.data(), '\\', payload.size()) != nullptr;
    reader_->nested.text.clear();
    sax_handler handler(out, reader_->nested, max_depth_, payload.size(), backslash);
    padded_insitu_stream stream(buf.data());
    constexpr unsigned flags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag |
                               rapidjson::kParseNanAndInfFlag |
                               rapidjson::kParseNumbersAsStringsFlag;
    const rapidjson::ParseResult result = reader_->r.Parse<flags>(stream, handler);
    if (handler.failed()) {
        err.reason = handler.reason();
        err.offset = result.Offset();
        err.detail = handler.detail();
        return false;
    }
    if (result.IsError()) {
        err.offset = result.Offset();
        if (result.Code() == rapidjson::kParseErrorStringUnicodeSurrogateInvalid) {
            err.reason = reject_reason::invalid_utf8;
            err.detail = "lone surrogate";
        } else {
            err.reason = reject_reason::invalid_json;
            err.detail = rapidjson::GetParseError_En(result.Code());
            for (auto& c : err.detail) c = static_cast<char>(std::tolower(c));
            if (!err.detail.empty() && err.detail.back() == '.') err.detail.pop_back();
        }
        return false;
    }
    if (!out.has_event) {
        err.reason = reject_reason::bad_shape;
        err.offset = 0;
        err.detail = "missing event";
        return false;
    }
    return true;
}

}  // namespace telecap
