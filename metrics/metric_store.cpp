#include "metrics/metric_store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#include "capture/string_table.hpp"
#include "capture/utf8.hpp"
#include "core/clock.hpp"
#include "core/glob.hpp"

namespace telecap::metrics {

std::string_view to_string(skip_reason r) noexcept {
    switch (r) {
        case skip_reason::missing_measurement:
            return "missing_measurement";
        case skip_reason::not_numeric:
            return "not_numeric";
        case skip_reason::not_finite:
            return "not_finite";
        case skip_reason::negative:
            return "negative";
    }
    return "?";
}

namespace {

constexpr std::string_view terminated_event = "snakepit.pool.worker.terminated";
constexpr std::size_t name_cache_limit = 4096;

// A fast hash for short strings (names, label values). Lookups verify by comparing the
// strings, so it only has to spread well, not resist attack; a flood of colliding values is
// still bounded by max_series.
inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) noexcept {
    h ^= v;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t h) noexcept {
    h = mix(h, s.size());
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = mix(h, w);
    }
    // The tail in at most two loads (overlapping), as wyhash does: a byte loop through the
    // stack cost more than the rest of the hash.
    if (n >= 4) {
        std::uint32_t a, b;
        std::memcpy(&a, p, 4);
        std::memcpy(&b, p + n - 4, 4);
        h = mix(h, (std::uint64_t{a} << 32) | b);
    } else if (n) {
        const auto byte = [&](std::size_t i) {
            return std::uint64_t{static_cast<unsigned char>(p[i])};
        };
        h = mix(h, (byte(0) << 16) | (byte(n >> 1) << 8) | byte(n - 1));
    }
    return h;
}

constexpr std::uint64_t seed = 0x51AFD7ED558CCD1Dull;
constexpr std::uint32_t no_cell = ~std::uint32_t{0};
constexpr std::size_t kept_cells = 4;  // per metric and event name

// The store's own counters are written by the recording thread alone: a plain load and store
// rather than a locked read-modify-write (readers on other threads still see whole values).
inline void bump(std::atomic<std::uint64_t>& a) noexcept {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// The value of `key` among the n pairs at kv. `hint`: where the key was last time (an emitter
// writes its keys in the same order).
template <typename V>
[[gnu::always_inline]] inline const V* find_key(const std::pair<std::string, V>* kv, std::size_t n,
                                                std::string_view key, std::size_t& hint) noexcept {
    if (hint < n && same_string(kv[hint].first, key)) return &kv[hint].second;
    for (std::size_t i = 0; i < n; ++i)
        if (same_string(kv[i].first, key)) {
            hint = i;
            return &kv[i].second;
        }
    return nullptr;
}

// Label values are UTF-8 on every wire: a malformed byte becomes U+FFFD before the value
// identifies a series, so two values that render alike are one series.
std::string valid_utf8(std::string_view v) {
    std::string out;
    std::size_t bad = first_invalid_utf8(v);
    while (bad != std::string_view::npos) {
        out.append(v.substr(0, bad));
        out.append("\xEF\xBF\xBD");
        v.remove_prefix(bad + 1);
        bad = first_invalid_utf8(v);
    }
    out.append(v);
    return out;
}

struct cell {
    std::vector<std::string> values;  // one per label, in the config's order; valid UTF-8
    std::uint64_t hash = 0;
    double value = 0;
    std::vector<std::uint64_t> buckets;
    double sum = 0;
    std::uint64_t count = 0;
    std::int64_t start_ns = 0;
};

}  // namespace

// A metric an event name feeds, and the series the last events of that name went to: events
// of one name mostly repeat their label values (a pool, a tool), so when none of the metric's
// label values changed since the last event, its series is the one, unhashed and unprobed;
// when some did, the other kept series are compared before hashing.
struct metric_store::target {
    std::uint32_t metric = 0;  // index in metrics_
    // Indices in the metric's `all`, most recent first, never the overflow series; cells[0]
    // is the last event's series when `current`.
    std::array<std::uint32_t, kept_cells> cells{no_cell, no_cell, no_cell, no_cell};
    bool current = false;
    std::uint64_t generation = 0;      // the metric's generation when the cells were kept
    std::uint64_t mask = 0;            // the bits of the name's keys that the labels use
    std::size_t measurement_hint = 0;  // where the measurement was in the last event

    // `cell`, kept at cells[i] (or to be kept, i = the last slot), becomes the most recent.
    void to_front(std::size_t i, std::uint32_t cell) noexcept {
        for (; i > 0; --i) cells[i] = cells[i - 1];
        cells[0] = cell;
        current = true;
    }
};

// A metadata key that labels one of a name's metrics, and its value in the last event of that
// name (what the targets' kept series were found with).
struct metric_store::entry_key {
    std::uint32_t key = 0;  // its number in keys_
    std::string_view name;  // keys_[key]
    std::size_t hint = 0;   // where it was in the last event's metadata
    std::string last;       // the value as resolved (cut), "" when missing
};

struct metric_store::name_entry {
    std::vector<std::string> parts;
    std::string dotted;
    std::uint64_t hash = 0;         // of the parts
    std::uint64_t dotted_hash = 0;  // of `dotted`, as a label value
    std::vector<target> targets;    // the metrics whose event glob matches
    std::vector<entry_key> keys;    // their labels' metadata keys, each once ("$event" aside)
    bool event_label = false;       // one of them is labelled by "$event"
    bool terminated = false;
};

namespace {

// The bit of a name's key `i` in the masks; keys past 63 share the last bit (a change of one
// then looks like a change of all: slower, never wrong).
inline std::uint64_t key_bit(std::size_t i) noexcept {
    return std::uint64_t{1} << (i < 63 ? i : 63);
}

}  // namespace

void record_mutex::lock_slow(int c) noexcept {
    // A record holds the lock for one event: spin a little before sleeping.
    for (int i = 0; i < 100 && c == 1; ++i) {
        c = 0;
        if (state_.compare_exchange_weak(c, 1, std::memory_order_acquire)) return;
    }
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
        state_.wait(2, std::memory_order_relaxed);
        c = state_.exchange(2, std::memory_order_acquire);
    }
}

struct metric_store::state {
    explicit state(metric_def d)
        : def(std::move(d)), missing(def.labels.size()), cut(def.labels.size()) {
        for (std::size_t i = 0; i < def.labels.size(); ++i)
            if (def.labels[i].key == "worker_id") worker_label = static_cast<int>(i);
    }
    metric_def def;
    std::vector<std::uint32_t> keys;  // each label's key number in the store
    std::vector<cell> all;
    // Bumped whenever series leave `all` (their indices change): kept indices are then stale.
    std::uint64_t generation = 0;
    // Series hash -> index in `all` (the overflow series is not in it).
    flat_map<std::uint64_t, std::uint32_t> slots;
    std::int64_t overflow = -1;  // index in `all` of the overflow series
    int worker_label = -1;
    std::array<std::atomic<std::uint64_t>, skip_reason_count> skipped{};
    std::vector<std::atomic<std::uint64_t>> missing;
    std::vector<std::atomic<std::uint64_t>> cut;  // values cut at max_label_bytes
    std::atomic<std::uint64_t> overflowed{0};
    std::atomic<std::size_t> count{0};

    void skip(skip_reason r) { bump(skipped[static_cast<std::size_t>(r)]); }

    // The series whose values equal `views` (hash `h`), or null.
    cell* lookup(std::uint64_t h, const std::string_view* views) {
        const std::uint32_t* i = slots.find(h, [&](std::uint64_t ch, std::uint32_t index) {
            if (ch != h) return false;
            const cell& c = all[index];
            bool equal = true;
            for (std::size_t l = 0; equal && l < c.values.size(); ++l)
                equal = same_string(c.values[l], views[l]);
            return equal;
        });
        return i ? &all[*i] : nullptr;
    }

    void insert_slot(std::uint64_t h, std::uint32_t index) { slots.insert(h, h) = index; }

    void rebuild_slots() {
        slots = flat_map<std::uint64_t, std::uint32_t>(all.size() * 2 + 2);  // shrinks too
        for (std::size_t i = 0; i < all.size(); ++i)
            if (static_cast<std::int64_t>(i) != overflow)
                insert_slot(all[i].hash, static_cast<std::uint32_t>(i));
    }

    // A new series at the end of `all`, labelled by `values` (none: the overflow series).
    cell& append(std::vector<std::string> values, std::uint64_t h, std::int64_t now) {
        cell c;
        c.values = std::move(values);
        c.hash = h;
        c.start_ns = now;
        if (def.kind == metric_kind::histogram) c.buckets.assign(def.buckets.size() + 1, 0);
        all.push_back(std::move(c));
        count.store(all.size(), std::memory_order_relaxed);
        return all.back();
    }

    cell& make(std::uint64_t h, std::vector<std::string> values, std::int64_t now) {
        append(std::move(values), h, now);
        insert_slot(h, static_cast<std::uint32_t>(all.size() - 1));
        return all.back();
    }

    cell& overflow_cell(std::int64_t now) {
        if (overflow < 0) {
            overflow = static_cast<std::int64_t>(all.size());
            append({}, 0, now);
        }
        bump(overflowed);
        return all[static_cast<std::size_t>(overflow)];
    }

    std::size_t labelled() const { return all.size() - (overflow >= 0 ? 1 : 0); }

    [[gnu::always_inline]] void update(cell& s, double v) {
        switch (def.kind) {
            case metric_kind::counter:
                s.value += v;
                break;
            case metric_kind::gauge:
                s.value = v;
                break;
            case metric_kind::histogram: {
                const auto it = std::lower_bound(def.buckets.begin(), def.buckets.end(), v);
                ++s.buckets[static_cast<std::size_t>(it - def.buckets.begin())];
                s.sum += v;
                ++s.count;
                break;
            }
        }
    }
};

metric_store::metric_store(const metrics_config& cfg, std::function<std::int64_t()> now_ns)
    : service_name_(cfg.service_name), now_ns_(now_ns ? std::move(now_ns) : wall_clock_ns) {
    for (const auto& d : cfg.metrics)
        if (d.capture) metrics_.push_back(std::make_unique<state>(d));
    for (auto& p : metrics_)
        for (const auto& l : p->def.labels) {
            auto it = std::find(keys_.begin(), keys_.end(), l.key);
            if (it == keys_.end()) it = keys_.insert(keys_.end(), l.key);
            p->keys.push_back(static_cast<std::uint32_t>(it - keys_.begin()));
        }
    // Sized once: a label_value holds an integer value's text itself, and views point into it.
    values_.resize(keys_.size());
    event_key_ = static_cast<std::uint32_t>(std::find(keys_.begin(), keys_.end(), event_name_key) -
                                            keys_.begin());
}

metric_store::~metric_store() = default;

// The id is the catalog's entry; the size and last part guard against a catalog that was
// freed and another allocated where it was.
[[gnu::always_inline]] inline bool same_name(const std::vector<std::string>& parts,
                                             const event& ev) noexcept {
    return parts.size() == ev.name.size() && !parts.empty() &&
           same_string(parts.back(), ev.name.back());
}

[[gnu::always_inline]] inline metric_store::name_entry& metric_store::entry_for(const event& ev) {
    if (ev.name_id) {  // the first slot mostly holds it
        const void* id = ev.name_id;
        if (name_entry* const* e = by_id_.find(
                mix(seed, reinterpret_cast<std::uintptr_t>(id)),
                [&](const void* k, name_entry* x) { return k == id && same_name(x->parts, ev); }))
            return **e;
    }
    return entry_slow(ev);
}

metric_store::name_entry& metric_store::entry_slow(const event& ev) {
    // entry_for found no entry by id: one by the name's parts, then kept under the id.
    name_entry& e = entry_by_parts(ev);
    if (!ev.name_id) return e;
    // Bounded, as the names are. A stale id (its name changed) stays until then: lookups
    // check the name, so it only costs a slot.
    if (by_id_.full() && by_id_.capacity() >= 2 * name_cache_limit) by_id_.clear();
    by_id_.insert(mix(seed, reinterpret_cast<std::uintptr_t>(ev.name_id)), ev.name_id) = &e;
    return e;
}

metric_store::name_entry& metric_store::entry_by_parts(const event& ev) {
    std::uint64_t h = seed;
    for (const auto& part : ev.name) h = hash_bytes(part, h);
    if (name_entry** e = names_.find(h, [&](std::uint64_t, const name_entry* x) {
            return x->hash == h && x->parts == ev.name;
        }))
        return **e;
    // A new name: match it against every metric once. Names are bounded by the catalog; the
    // limit only guards against a custom one.
    if (names_.size() >= name_cache_limit) {
        names_.clear();
        entries_.clear();
        by_id_.clear();  // its entries are gone
    }
    auto e = std::make_unique<name_entry>();
    e->parts = ev.name;
    for (std::size_t k = 0; k < ev.name.size(); ++k) {
        if (k) e->dotted += '.';
        e->dotted += ev.name[k];
    }
    e->hash = h;
    e->dotted_hash = hash_bytes(e->dotted, seed);
    e->terminated = e->dotted == terminated_event;
    for (std::size_t m = 0; m < metrics_.size(); ++m) {
        if (!glob_match(metrics_[m]->def.event, e->dotted)) continue;
        target t;
        t.metric = static_cast<std::uint32_t>(m);
        for (const auto k : metrics_[m]->keys) {
            if (k == event_key_) {  // the same for every event of the name
                e->event_label = true;
                continue;
            }
            std::size_t i = 0;
            while (i < e->keys.size() && e->keys[i].key != k) ++i;
            if (i == e->keys.size()) {
                entry_key ek;
                ek.key = k;
                ek.name = keys_[k];
                e->keys.push_back(std::move(ek));
            }
            t.mask |= key_bit(i);
        }
        e->targets.push_back(t);
    }
    names_.insert(h, h) = e.get();
    entries_.push_back(std::move(e));
    return *entries_.back();
}

namespace {

// Where the label value of `key` is in `ev`, as `v`: a string's bytes, an integer's text, or
// "" when absent or null; cut at max_label_bytes.
template <typename Label>
[[gnu::always_inline]] inline void resolve(const std::pair<std::string, metadata_value>* md,
                                           std::size_t n, std::string_view key, std::size_t& hint,
                                           Label& v) {
    const auto* mv = find_key(md, n, key, hint);
    v.missing = false;
    if (const auto* str = mv ? std::get_if<std::string>(mv) : nullptr) {
        v.view = *str;
    } else if (const auto* n = mv ? std::get_if<std::int64_t>(mv) : nullptr) {
        const auto r = std::to_chars(v.digits, v.digits + sizeof v.digits, *n);
        v.view = std::string_view(v.digits, static_cast<std::size_t>(r.ptr - v.digits));
    } else {
        v.view = {};
        v.missing = true;
    }
    v.cut = v.view.size() > max_label_bytes;
    if (v.cut) [[unlikely]] {  // back off to the start of a UTF-8 sequence
        std::size_t end = max_label_bytes;
        while (end > 0 && (static_cast<unsigned char>(v.view[end]) & 0xC0) == 0x80) --end;
        v.view = v.view.substr(0, end);
    }
}

}  // namespace

void metric_store::forget_terminated(const event& ev) {
    // The id as its series have it: a string made valid UTF-8, or an integer's text.
    if (const auto* w = ev.meta("worker_id")) {
        if (const auto* s = std::get_if<std::string>(w)) {
            forget_worker(valid_utf8(*s));
        } else if (const auto* n = std::get_if<std::int64_t>(w)) {
            char digits[24];
            const auto r = std::to_chars(digits, digits + sizeof digits, *n);
            forget_worker(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
        }
    }
}

void metric_store::record(const event& ev) {
    name_entry& e = entry_for(ev);
    if (e.terminated) [[unlikely]]
        forget_terminated(ev);
    if (e.targets.empty()) return;
    bool locked = false;
    try {
        // Every label value is resolved once, ahead of the lock, and compared with the last
        // event's of this name: `changed` has the bits of the keys whose value differs,
        // `flagged` those missing or cut (counted per metric).
        std::uint64_t changed = 0;
        std::uint64_t flagged = 0;
        const auto* md = ev.metadata.data();
        const std::size_t md_n = ev.metadata.size();
        const std::size_t keys = e.keys.size();
        for (std::size_t i = 0; i < keys; ++i) {
            entry_key& k = e.keys[i];
            label_value& v = values_[k.key];
            resolve(md, md_n, k.name, k.hint, v);
            if (!same_string(k.last, v.view)) {
                changed |= key_bit(i);
                k.last.assign(v.view);
            }
            if (v.missing || v.cut) flagged |= key_bit(i);
        }
        mu_.lock();
        locked = true;
        for (auto& t : e.targets) record_one(*metrics_[t.metric], t, ev, e, changed, flagged);
        mu_.unlock();
    } catch (...) {
        if (locked) mu_.unlock();
        // The keys' last values may now be ahead of the series kept.
        for (auto& t : e.targets) t.current = false;
        throw;
    }
}

// Forced inline, as entry_for, find_key and resolve: GCC's -O2 left them out of line, and the
// calls cost about a tenth of a record.
[[gnu::always_inline]] inline void metric_store::record_one(state& st, target& t, const event& ev,
                                                            const name_entry& e,
                                                            std::uint64_t changed,
                                                            std::uint64_t flagged) {
    const metric_def& d = st.def;
    double v = 1;
    if (!d.measurement.empty()) {
        // Not recorded: the kept series no longer goes with the keys' last values.
        const auto skip = [&](skip_reason r) {
            t.current = false;
            st.skip(r);
        };
        const auto* m = find_key(ev.measurements.data(), ev.measurements.size(), d.measurement,
                                 t.measurement_hint);
        if (!m) return skip(skip_reason::missing_measurement);
        if (const auto* i = std::get_if<std::int64_t>(m))
            v = static_cast<double>(*i);
        else if (const auto* f = std::get_if<double>(m))
            v = *f;
        else
            return skip(skip_reason::not_numeric);
        v *= d.scale;
        if (!std::isfinite(v)) return skip(skip_reason::not_finite);
        if (d.kind == metric_kind::counter && v < 0) return skip(skip_reason::negative);
    }
    if (flagged & t.mask) [[unlikely]] {
        for (std::size_t l = 0; l < d.labels.size(); ++l) {
            const label_value& lv = values_[st.keys[l]];
            if (lv.missing) bump(st.missing[l]);
            if (lv.cut) bump(st.cut[l]);
        }
    }
    if ((changed & t.mask) == 0 && t.current && t.generation == st.generation)
        return st.update(st.all[t.cells[0]], v);
    record_slow(st, t, e, v);
}

void metric_store::record_slow(state& st, target& t, const name_entry& e, double v) {
    const metric_def& d = st.def;
    std::string_view* views = views_;  // a member: a local array would be zeroed per call
    const std::size_t n = d.labels.size();
    if (e.event_label) values_[event_key_].view = e.dotted;  // never missing or cut
    for (std::size_t l = 0; l < n; ++l) views[l] = values_[st.keys[l]].view;
    if (t.generation != st.generation) {  // series left: the kept indices no longer hold
        t.cells.fill(no_cell);
        t.generation = st.generation;
    }
    // A series kept from a recent event whose values are these (so they are valid UTF-8, and
    // it is the series the table would give). A current cells[0] differs: a value changed.
    for (std::size_t i = t.current ? 1 : 0; i < kept_cells && t.cells[i] != no_cell; ++i) {
        const std::uint32_t found = t.cells[i];
        cell& c = st.all[found];
        bool same = true;
        for (std::size_t l = 0; same && l < n; ++l) same = same_string(c.values[l], views[l]);
        if (!same) continue;
        t.to_front(i, found);
        return st.update(c, v);
    }
    t.current = false;
    std::uint64_t h = seed;
    for (std::size_t l = 0; l < n; ++l)
        h = mix(h, st.keys[l] == event_key_ ? e.dotted_hash : hash_bytes(views[l], seed));
    cell* c = st.lookup(h, views);
    if (!c) {
        // Not seen as is: make the values valid UTF-8 (a malformed value may name a series
        // that exists), then create the series, or count it into the overflow one.
        bool valid = true;
        for (std::size_t l = 0; valid && l < n; ++l)
            valid = first_invalid_utf8(views[l]) == std::string_view::npos;
        std::vector<std::string> values;
        std::uint64_t vh = h;
        if (!valid) {
            values.reserve(n);
            vh = seed;
            std::string_view clean[max_labels];
            for (std::size_t l = 0; l < n; ++l) {
                values.push_back(valid_utf8(views[l]));
                clean[l] = values.back();
                vh = mix(vh, hash_bytes(clean[l], seed));
            }
            c = st.lookup(vh, clean);
        }
        if (!c && st.labelled() < d.max_series) {
            if (valid) values.assign(views, views + n);
            c = &st.make(vh, std::move(values), now_ns_());
        }
        if (!c) return st.update(st.overflow_cell(now_ns_()), v);  // not kept: no values
    }
    // Kept first; the least recent one goes. It may be kept already (cells[0], skipped above,
    // found for malformed values that render as these): then it moves, no slot holds it twice.
    const auto found = static_cast<std::uint32_t>(c - st.all.data());
    std::size_t i = 0;
    while (i < kept_cells - 1 && t.cells[i] != found) ++i;
    t.to_front(i, found);
    st.update(*c, v);
}

void metric_store::forget_worker(std::string_view worker_id) {
    std::lock_guard lk(mu_);
    for (auto& p : metrics_) {
        state& st = *p;
        if (st.def.kind != metric_kind::gauge || st.worker_label < 0) continue;
        const auto l = static_cast<std::size_t>(st.worker_label);
        const auto gone = [&](const cell& c) {
            return !c.values.empty() && c.values[l] == worker_id;
        };
        if (std::none_of(st.all.begin(), st.all.end(), gone)) continue;
        // Rare (a worker's exit): rebuild the table rather than patch it.
        std::vector<cell> keep;
        keep.reserve(st.all.size());
        std::int64_t overflow = -1;
        for (std::size_t i = 0; i < st.all.size(); ++i) {
            if (gone(st.all[i])) continue;
            if (static_cast<std::int64_t>(i) == st.overflow)
                overflow = static_cast<std::int64_t>(keep.size());
            keep.push_back(std::move(st.all[i]));
        }
        st.all = std::move(keep);
        st.overflow = overflow;
        ++st.generation;  // indices kept by the name entries no longer hold
        st.rebuild_slots();
        st.count.store(st.all.size(), std::memory_order_relaxed);
    }
}

std::vector<family> metric_store::collect() const {
    std::vector<family> out;
    out.reserve(metrics_.size());
    {
        std::lock_guard lk(mu_);
        for (const auto& p : metrics_) {
            const state& st = *p;
            family f;
            f.name = st.def.wire_name;
            f.description = st.def.description;
            f.unit = st.def.unit;
            f.type = st.def.kind == metric_kind::counter ? family_type::counter
                     : st.def.kind == metric_kind::gauge ? family_type::gauge
                                                         : family_type::histogram;
            f.bounds = st.def.buckets;
            f.points.reserve(st.all.size());
            for (std::size_t i = 0; i < st.all.size(); ++i) {
                const cell& s = st.all[i];
                point pt;
                if (static_cast<std::int64_t>(i) == st.overflow) {
                    pt.labels = {{"otel_metric_overflow", "true"}};
                } else {
                    pt.labels.reserve(s.values.size());
                    for (std::size_t l = 0; l < s.values.size(); ++l)
                        pt.labels.emplace_back(st.def.labels[l].name, s.values[l]);
                }
                pt.value = s.value;
                pt.bucket_counts = s.buckets;
                pt.sum = s.sum;
                pt.count = s.count;
                pt.start_ns = s.start_ns;
                f.points.push_back(std::move(pt));
            }
            out.push_back(std::move(f));
        }
    }
    // Sorting happens outside the lock: recording goes on meanwhile.
    for (auto& f : out) {
        for (auto& pt : f.points) std::sort(pt.labels.begin(), pt.labels.end());
        std::sort(f.points.begin(), f.points.end(),
                  [](const point& a, const point& b) { return a.labels < b.labels; });
    }
    std::sort(out.begin(), out.end(),
              [](const family& a, const family& b) { return a.name < b.name; });
    return out;
}

const metric_store::state* metric_store::find(std::string_view metric) const {
    for (const auto& p : metrics_)
        if (p->def.name == metric || p->def.wire_name == metric) return p.get();
    return nullptr;
}

std::uint64_t metric_store::skipped(std::string_view metric, skip_reason r) const {
    const auto* st = find(metric);
    return st ? st->skipped[static_cast<std::size_t>(r)].load() : 0;
}

std::uint64_t metric_store::missing_label(std::string_view metric, std::string_view label) const {
    const auto* st = find(metric);
    if (!st) return 0;
    for (std::size_t l = 0; l < st->def.labels.size(); ++l)
        if (st->def.labels[l].key == label || st->def.labels[l].name == label)
            return st->missing[l].load();
    return 0;
}

std::uint64_t metric_store::cut_label(std::string_view metric, std::string_view label) const {
    const auto* st = find(metric);
    if (!st) return 0;
    for (std::size_t l = 0; l < st->def.labels.size(); ++l)
        if (st->def.labels[l].key == label || st->def.labels[l].name == label)
            return st->cut[l].load();
    return 0;
}

std::uint64_t metric_store::overflowed(std::string_view metric) const {
    const auto* st = find(metric);
    return st ? st->overflowed.load() : 0;
}

std::size_t metric_store::series(std::string_view metric) const {
    const auto* st = find(metric);
    return st ? st->count.load() : 0;
}

registry::collector_id add_store_collector(registry& r, std::shared_ptr<const metric_store> store) {
    return r.add_collector(
        [store = std::move(store)](std::vector<sample>& out) { store->own_samples(out); });
}

void metric_store::own_samples(std::vector<sample>& out) const {
    {
        for (const auto& p : metrics_) {
            const state& st = *p;
            const std::string& m = st.def.wire_name;
            for (std::size_t k = 0; k < skip_reason_count; ++k)
                out.push_back({"telecap_metrics_skipped_total",
                               {{"metric", m},
                                {"reason", std::string(to_string(static_cast<skip_reason>(k)))}},
                               kind::counter,
                               static_cast<double>(st.skipped[k].load())});
            for (std::size_t l = 0; l < st.def.labels.size(); ++l) {
                out.push_back({"telecap_metrics_missing_label_total",
                               {{"label", st.def.labels[l].name}, {"metric", m}},
                               kind::counter,
                               static_cast<double>(st.missing[l].load())});
                out.push_back({"telecap_metrics_cut_label_total",
                               {{"label", st.def.labels[l].name}, {"metric", m}},
                               kind::counter,
                               static_cast<double>(st.cut[l].load())});
            }
            out.push_back({"telecap_metrics_overflow_total",
                           {{"metric", m}},
                           kind::counter,
                           static_cast<double>(st.overflowed.load())});
            out.push_back({"telecap_metrics_series",
                           {{"metric", m}},
                           kind::gauge,
                           static_cast<double>(st.count.load())});
        }
    }
}

}  // namespace telecap::metrics
