#include "capture/event_json.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "capture/key_shapes.hpp"
#include "capture/string_table.hpp"
#include "capture/utf8.hpp"

#if defined(__SSE2__) && defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI
#include <emmintrin.h>
#define TELECAP_JSON_SSE2_SHORT_STRINGS 1
#endif

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

constexpr std::uint64_t ones = 0x0101010101010101ull;

// The high bit of each byte of `w` that `special` marks, eight at a time. A subtraction that
// borrows only starts at a special byte, so the lowest marked byte is always exact (bytes
// above it may be marked falsely; only the first is used).
constexpr std::uint64_t special_bytes(std::uint64_t w) noexcept {
    return ((w - ones * 0x20) | ((w ^ (ones * '"')) - ones) | ((w ^ (ones * '\\')) - ones) | w) &
           (ones * 0x80);
}

// The n (1..7) bytes at q in the low bytes of a word, the bytes above them clean ('a'). Two
// overlapping loads, so nothing past q + n is read.
inline std::uint64_t tail_word(const unsigned char* q, std::size_t n) noexcept {
    std::uint64_t w;
    if (n >= 4) {
        std::uint32_t a, b;
        std::memcpy(&a, q, 4);
        std::memcpy(&b, q + n - 4, 4);
        w = a | (std::uint64_t{b} << (8 * (n - 4)));
    } else {
        w = q[0] | (std::uint64_t{q[n / 2]} << (8 * (n / 2))) |
            (std::uint64_t{q[n - 1]} << (8 * (n - 1)));
    }
    return w | ((ones * 'a') << (8 * n));
}

constexpr auto digit_pairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
        t[static_cast<std::size_t>(2 * i)] = static_cast<char>('0' + i / 10);
        t[static_cast<std::size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
    }
    return t;
}();

// Exactly 2, 4 or 8 digits (leading zeros kept).
inline char* digits2(char* p, std::uint32_t v) noexcept {
    std::memcpy(p, &digit_pairs[2 * v], 2);
    return p + 2;
}
inline char* digits4(char* p, std::uint32_t v) noexcept {
    digits2(p, v / 100);
    return digits2(p + 2, v % 100);
}
inline char* digits8(char* p, std::uint32_t v) noexcept {
    digits4(p, v / 10000);
    return digits4(p + 4, v % 10000);
}
// v < 10^4 without leading zeros.
inline char* digits_upto4(char* p, std::uint32_t v) noexcept {
    if (v < 10) {
        *p = static_cast<char>('0' + v);
        return p + 1;
    }
    if (v < 100) return digits2(p, v);
    if (v < 1000) {
        *p = static_cast<char>('0' + v / 100);
        return digits2(p + 1, v % 100);
    }
    return digits4(p, v);
}
// v < 10^8 without leading zeros.
inline char* digits_upto8(char* p, std::uint32_t v) noexcept {
    if (v < 10000) return digits_upto4(p, v);
    return digits4(digits_upto4(p, v / 10000), v % 10000);
}

// The same digits as std::to_chars, in 8-digit blocks of 32-bit arithmetic.
inline char* write_u64(char* p, std::uint64_t v) noexcept {
    constexpr std::uint64_t e8 = 100000000;
    if (v < e8) return digits_upto8(p, static_cast<std::uint32_t>(v));
    if (v < e8 * e8) {
        p = digits_upto8(p, static_cast<std::uint32_t>(v / e8));
        return digits8(p, static_cast<std::uint32_t>(v % e8));
    }
    const std::uint64_t hi = v / e8;  // < 1.9e11
    p = digits_upto4(p, static_cast<std::uint32_t>(hi / e8));
    p = digits8(p, static_cast<std::uint32_t>(hi % e8));
    return digits8(p, static_cast<std::uint32_t>(v % e8));
}

inline char* write_i64(char* p, std::int64_t v) noexcept {
    if (v >= 0) return write_u64(p, static_cast<std::uint64_t>(v));
    *p++ = '-';
    return write_u64(p, std::uint64_t{0} - static_cast<std::uint64_t>(v));  // INT64_MIN too
}

// Most bytes a number takes (int64: 20; a double: 24 plus ".0"; "-Infinity" quoted: 11).
constexpr std::size_t number_room = 32;
// Word-wide stores may write up to 8 bytes past the end of what they mean to write.
constexpr std::size_t slack = 16;

// Room for a string in the worst case (every byte escaped as \u00XX) plus quotes, a colon and
// a comma.
constexpr std::size_t room(std::string_view s) noexcept { return 6 * s.size() + 4; }

// Grows `s` to hold `at + n` bytes. Its bytes past `at` are scratch room: written before they
// are read, except that the word-wide stores and again() may copy some not yet written into
// other scratch bytes (never tested, never written out). With C++23's resize_and_overwrite
// (this file is compiled as C++23 where the compiler can, CMakeLists.txt) nothing is
// zero-filled: the string takes all its capacity at once. The operation writes nothing: the
// standard asks it to leave no indeterminate byte, which libstdc++ neither checks nor relies on
// (fresh bytes are malloc's, the others an earlier batch's); a build without the function, or
// another library, takes resize(). Else resize() zero-fills, so it grows in pages (page_mask + 1
// bytes): only what is needed now, and a batch's buffer that came back with a large capacity is not
// cleared whole each time. A free function, so that no raw_writer's address escapes.
[[gnu::noinline]] char* grow_string(std::string& s, std::size_t at, std::size_t n,
                                    std::size_t page_mask) {
    const std::size_t want = (at + n + page_mask) & ~page_mask;
#if defined(__cpp_lib_string_resize_and_overwrite) && defined(__GLIBCXX__)
    s.resize_and_overwrite(std::max(want, s.capacity()),
                           [](char*, std::size_t len) { return len; });
#else
    s.resize(want);
#endif
    return s.data();
}

// Writes into a std::string from an offset, growing it only at need(): the per-byte paths do
// no capacity checks. The string's size is scratch room; the caller trims it to offset().
// Its state is three pointers that the functions below copy into a local writer and back
// (`local_writer`): a local whose address is never taken stays in registers, where a writer
// reached through a reference would be stored and reloaded around every byte it writes (a
// char store may alias anything).
class raw_writer {
public:
    // `page`: grow in steps of this many bytes (a power of two; 1: just what is needed).
    raw_writer(std::string& s, std::size_t at, std::size_t page = 1) noexcept
        : s_(&s), base_(s.data()), p_(base_ + at), lim_(base_ + s.size()), page_mask_(page - 1) {}
    std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - base_); }

    // Room for n more bytes (and the slack of word-wide stores).
    void need(std::size_t n) {
        if (static_cast<std::size_t>(lim_ - p_) < n + slack) {
            const std::size_t at = offset();
            base_ = grow_string(*s_, at, n + slack, page_mask_);
            p_ = base_ + at;
            lim_ = base_ + s_->size();
        }
    }

    void lit(std::string_view s) noexcept {
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
    }
    template <std::size_t N>
    void lit(const char (&s)[N]) noexcept {  // a literal: a fixed-size copy the compiler inlines
        std::memcpy(p_, s, N - 1);
        p_ += N - 1;
    }
    void ch(char c) noexcept { *p_++ = c; }
    // n bytes from `src`, which may be read up to 15 bytes past src + n (padded): 16-byte
    // moves the compiler inlines, no call to memcpy for a short run of varying length.
    void padded(const char* src, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; i += 16) std::memcpy(p_ + i, src + i, 16);
        p_ += n;
    }
    // n bytes from `src`, which may be read up to 32 bytes past src + n, before a need() that
    // covers n + 32: up to 32 bytes (a key fragment) as two fixed 16-byte moves, no loop.
    void padded32(const char* src, std::size_t n) noexcept {
        if (n > 32) return padded(src, n);
        std::memcpy(p_, src, 16);
        std::memcpy(p_ + 16, src + 16, 16);
        p_ += n;
    }
    // n (at most 32) bytes written earlier at `at`, before a need() that covers 32: fixed-size
    // moves the compiler inlines (through a copy: the 32 bytes read may reach past p_).
    void again(std::size_t at, std::size_t n) noexcept {
        char tmp[32];
        std::memcpy(tmp, base_ + at, 32);
        std::memcpy(p_, tmp, 32);
        p_ += n;
    }
    void i64(std::int64_t v) noexcept { p_ = write_i64(p_, v); }
    void dbl(double d) noexcept {
        if (std::isnan(d)) return lit("\"NaN\"");
        if (std::isinf(d)) return lit(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        char* const start = p_;
        p_ = std::to_chars(p_, p_ + 32, d).ptr;  // shortest round-trip form
        // Keep a "." or an exponent so that the value reads back as a double.
        for (const char* q = start; q < p_; ++q)
            if (*q == '.' || *q == 'e') return;
        lit(".0");
    }
    void str(std::string_view s) noexcept {
        *p_++ = '"';
        const auto* q = reinterpret_cast<const unsigned char*>(s.data());
        const auto* const end = q + s.size();
        while (q < end) {
            if constexpr (std::endian::native == std::endian::little) {
                // Eight bytes at a time: copy the word whole, keep its clean prefix.
                std::uint64_t m = 0;
                while (end - q >= 8) {
                    std::uint64_t w;
                    std::memcpy(&w, q, 8);
                    std::memcpy(p_, &w, 8);
                    if ((m = special_bytes(w))) break;
                    p_ += 8;
                    q += 8;
                }
                if (!m && q < end) {
                    // The last 1..7 bytes as one word, padded with clean bytes (no read past
                    // the end): short keys and values take this path only.
                    const auto n = static_cast<std::size_t>(end - q);
                    const std::uint64_t w = tail_word(q, n);
                    std::memcpy(p_, &w, 8);
                    m = special_bytes(w);
                    if (!m) {
                        p_ += n;
                        break;
                    }
                }
                if (!m) break;
                const auto k = static_cast<std::size_t>(std::countr_zero(m) >> 3);
                p_ += k;
                q += k;
            } else {
                while (q < end && !special[*q]) *p_++ = static_cast<char>(*q++);
                if (q == end) break;
            }
            if (*q >= 0x80) {
                if (const std::size_t n = utf8_sequence_length(q, end)) {
                    std::memcpy(p_, q, n);
                    p_ += n;
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

    // A std::string: one of up to 15 bytes that needs no escape is checked and copied with one
    // 16-byte load and store. Keys and most values are that short, and 16 bytes at its data()
    // are always readable: libstdc++ keeps such a string in its 16-byte local buffer, or in a
    // heap block of more than 16 bytes (a capacity above 15). The bytes loaded past its end
    // are masked off and their copies overwritten.
    [[gnu::always_inline]] void str(const std::string& s) noexcept {
#ifdef TELECAP_JSON_SSE2_SHORT_STRINGS
        const std::size_t n = s.size();
        if (n < 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data()));
            // Signed: bytes of 0x80 and above are negative, so "< 0x20" also marks non-ASCII.
            const __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                             _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                          _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            if ((static_cast<unsigned>(_mm_movemask_epi8(bad)) & ((1u << n) - 1)) == 0) {
                *p_ = '"';
                _mm_storeu_si128(reinterpret_cast<__m128i*>(p_ + 1), v);
                p_[n + 1] = '"';
                p_ += n + 2;
                return;
            }
        }
#endif
        str(std::string_view(s));
    }

private:
    void escape(unsigned char c) noexcept {
        switch (c) {
            case '"':
                lit("\\\"");
                break;
            case '\\':
                lit("\\\\");
                break;
            case '\n':
                lit("\\n");
                break;
            case '\r':
                lit("\\r");
                break;
            case '\t':
                lit("\\t");
                break;
            case '\b':
                lit("\\b");
                break;
            case '\f':
                lit("\\f");
                break;
            default:
                lit("\\u00");
                ch(hex[c >> 4]);
                ch(hex[c & 0xF]);
        }
    }

    std::string* s_;
    char* base_;  // s_->data()
    char* p_;
    char* lim_;
    std::size_t page_mask_;
};

// A copy of `out` to write with, copied back at the end of the scope (see raw_writer).
class local_writer {
public:
    explicit local_writer(raw_writer& out) noexcept : out_(out), w(out) {}
    ~local_writer() { out_ = w; }
    local_writer(const local_writer&) = delete;
    local_writer& operator=(const local_writer&) = delete;

private:
    raw_writer& out_;

public:
    raw_writer w;
};

// {"event":[...],"measurements":{
void write_head(raw_writer& out, const std::vector<std::string>& name) {
    local_writer local(out);
    raw_writer& w = local.w;
    w.need(32);
    w.lit("{\"event\":[");
    for (std::size_t i = 0; i < name.size(); ++i) {
        w.need(room(name[i]));
        if (i) w.ch(',');
        w.str(name[i]);
    }
    w.need(32);
    w.lit("],\"measurements\":{");
}

// The room an entry's value may take.
template <typename V>
[[gnu::always_inline]] inline std::size_t value_room(const V& v) noexcept {
    const auto* s = std::get_if<std::string>(&v);
    return s ? room(*s) : number_room;
}

// Where each entry's key fragment (its comma, quoted key and colon) was written: the offsets
// of its start and its end, entry after entry (measurements, then metadata).
using key_marks = std::vector<std::size_t>;

enum class keys_mode {
    write,   // render each key
    record,  // render each key and note where its fragment went (key_marks)
    copy,    // copy each fragment kept for the event's keys_id (event_json_writer)
};

// The rest of the event after its head.
// `marks`: where the keys went (record). `at`, `text`: the fragments to copy (copy), fragment
// i at text[at[i], at[i + 1]), the text padded for padded32().
template <keys_mode Mode>
void write_body(raw_writer& out, const event& ev, key_marks* marks = nullptr,
                const std::size_t* at = nullptr, const char* text = nullptr) {
    local_writer local(out);
    raw_writer& w = local.w;
    std::size_t entry = 0;
    // Entry `i` of its section (0: no comma before it) with key `k`; its value needs
    // `value_room` bytes.
    const auto key = [&](std::size_t i, const std::string& k, std::size_t value_room) {
        if constexpr (Mode == keys_mode::copy) {
            const std::size_t a = at[entry], n = at[entry + 1] - a;
            ++entry;
            w.need(n + 32 + value_room);
            w.padded32(text + a, n);
        } else {
            w.need(room(k) + value_room);
            if constexpr (Mode == keys_mode::record) marks->push_back(w.offset());
            if (i) w.ch(',');
            w.str(k);
            w.ch(':');
            if constexpr (Mode == keys_mode::record) marks->push_back(w.offset());
        }
    };
    std::size_t i = 0;
    for (const auto& [k, v] : ev.measurements) {
        key(i++, k, value_room(v));
        if (const auto* n = std::get_if<std::int64_t>(&v))
            w.i64(*n);
        else if (const auto* d = std::get_if<double>(&v))
            w.dbl(*d);
        else
            w.str(*std::get_if<std::string>(&v));
    }
    w.need(32);
    w.lit("},\"metadata\":{");
    // The host's enrichment repeats the event's timestamp in its metadata: its digits are
    // copied for the top-level one instead of formatted twice.
    std::int64_t last_int = 0;
    std::size_t last_at = 0, last_len = 0;
    i = 0;
    for (const auto& [k, v] : ev.metadata) {
        key(i++, k, value_room(v));
        if (const auto* s = std::get_if<std::string>(&v)) {
            w.str(*s);
        } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
            last_int = *n;
            last_at = w.offset();
            w.i64(*n);
            last_len = w.offset() - last_at;
        } else {
            w.lit("null");
        }
    }
    w.need(64);
    w.lit("},\"timestamp_ns\":");
    if (last_len && last_int == ev.timestamp_ns)
        w.again(last_at, last_len);
    else
        w.i64(ev.timestamp_ns);
    w.lit(",\"correlation_id\":");
    if (ev.correlation_id) {
        w.need(room(*ev.correlation_id) + 4);
        w.str(*ev.correlation_id);
    } else {
        w.lit("null");
    }
    w.lit("}\n");
}

bool same_name(const std::vector<std::string>& a, const std::vector<std::string>& b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same_string(a[i], b[i])) return false;
    return true;
}

// Runs `write` on a raw_writer appending to `out`, then trims `out` to what was written.
template <typename F>
void append_with(std::string& out, F write) {
    raw_writer w(out, out.size());
    write(w);
    out.resize(w.offset());
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    append_with(out, [&](raw_writer& w) {
        w.need(room(s));
        w.str(s);
    });
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
    append_with(out, [&](raw_writer& w) {
        w.need(number_room);
        w.dbl(d);
    });
}

void append_event_json(std::string& out, const event& ev) {
    append_with(out, [&](raw_writer& w) {
        write_head(w, ev.name);
        write_body<keys_mode::write>(w, ev);
    });
}

event_json_writer::name_head& event_json_writer::head_slot(const event& ev) {
    // Catalog entries sit apart by their size: a multiplicative hash spreads them.
    const std::uint64_t h =
        (reinterpret_cast<std::uintptr_t>(ev.name_id) * 0x9E3779B97F4A7C15ull) >> 32;
    const void* id = ev.name_id;
    if (name_head* head = heads_.find(h, [id](const void* k, const name_head&) { return k == id; }))
        return *head;  // the caller checks the name
    if (heads_.full()) heads_.clear();
    name_head& head = heads_.insert(h, id);
    head.name.clear();
    head.text.clear();
    head.size = 0;
    head.keys_id = head.keys_seen = 0;
    return head;
}

namespace shared_event_json {
namespace {
struct published {
    const event* ev = nullptr;
    const char* data = nullptr;
    std::size_t size = 0;
    int depth = 0;  // dispatch scopes open on this thread
};
thread_local published current;
}  // namespace

std::string_view find(const event& ev) noexcept {
    return current.ev == &ev ? std::string_view(current.data, current.size) : std::string_view();
}

void publish(const event& ev, std::string_view line) noexcept {
    if (current.depth == 0) return;
    current.ev = &ev;
    current.data = line.data();
    current.size = line.size();
}

// A nested dispatch (a failure announced from inside one) forgets the outer event's line too:
// its handlers render it again, which is only slower.
dispatch_scope::dispatch_scope() noexcept {
    ++current.depth;
    current.ev = nullptr;
}
dispatch_scope::~dispatch_scope() {
    --current.depth;
    current.ev = nullptr;
}
}  // namespace shared_event_json

std::string_view shared_event_json_line(const event& ev, std::string& scratch) {
    if (const auto line = shared_event_json::find(ev); !line.empty()) return line;
    scratch.clear();
    append_event_json(scratch, ev);
    shared_event_json::publish(ev, scratch);
    return scratch;
}

std::string_view event_json_writer::append_shared(const event& ev) {
    const auto line = shared_event_json::find(ev);
    if (line.empty()) {
        const auto mine = append(ev);
        shared_event_json::publish(ev, mine);
        return mine;
    }
    raw_writer w(buf_, used_, 4096);
    w.need(line.size());
    w.lit(line);
    used_ = w.offset();
    return {buf_.data() + used_ - line.size(), line.size()};
}

std::string_view event_json_writer::append(const event& ev) {
    const std::size_t start = used_;
    raw_writer w(buf_, used_, 4096);
    if (ev.name_id) {
        name_head& head = head_slot(ev);
        if (head.size && (trust_name_ids_ || same_name(head.name, ev.name))) {
            w.need(head.size);  // and the slack the padded copy may write past it
            w.padded(head.text.data(), head.size);
        } else {
            // An id seen first, or reused for another name: render the head here, keep a copy.
            const std::size_t start = w.offset();
            write_head(w, ev.name);
            head.name = ev.name;
            head.size = w.offset() - start;
            head.text.assign(buf_.data() + start, head.size);
            head.text.append(16, '\0');  // read by padded() past the head's end
        }
        // The body: keys copied from their fragments when this head keeps those of the
        // event's keys_id; kept from the second event in a row with a keys_id.
        if (!trust_keys_ids_ || ev.keys_id == 0 || ev.keys_id == key_shapes::none) {
            write_body<keys_mode::write>(w, ev);
        } else if (ev.keys_id == head.keys_id && ev.measurements.size() == head.measurements &&
                   ev.metadata.size() == head.metadata) {
            write_body<keys_mode::copy>(w, ev, nullptr, head.key_at.data(), head.key_text.data());
        } else if (ev.keys_id != head.keys_seen) {
            head.keys_seen = ev.keys_id;
            write_body<keys_mode::write>(w, ev);
        } else {
            marks_.clear();
            write_body<keys_mode::record>(w, ev, &marks_);
            keep_keys(head, ev);
        }
    } else {
        write_head(w, ev.name);
        write_body<keys_mode::write>(w, ev);
    }
    used_ = w.offset();
    return {buf_.data() + start, used_ - start};
}

void event_json_writer::keep_keys(name_head& head, const event& ev) {
    head.keys_id = ev.keys_id;
    head.measurements = ev.measurements.size();
    head.metadata = ev.metadata.size();
    head.key_at.clear();
    head.key_text.clear();
    for (std::size_t i = 0; i + 1 < marks_.size(); i += 2) {
        head.key_at.push_back(head.key_text.size());
        head.key_text.append(buf_.data() + marks_[i], marks_[i + 1] - marks_[i]);
    }
    head.key_at.push_back(head.key_text.size());
    head.key_text.append(32, '\0');  // read by padded32() past the last fragment
}

void event_json_writer::take(std::string& out) {
    buf_.resize(used_);
    out.swap(buf_);
    buf_.clear();
    used_ = 0;
}

}  // namespace telecap
