#include "metrics/metric_store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>

#include "capture/utf8.hpp"
#include "core/glob.hpp"

namespace telecap::metrics {

std::string_view to_string(skip_reason r) noexcept {
    switch (r) {
        case skip_reason::missing_measurement: return "missing_measurement";
        case skip_reason::not_numeric: return "not_numeric";
        case skip_reason::not_finite: return "not_finite";
        case skip_reason::negative: return "negative";
    }
    return "?";
}

namespace {

constexpr std::string_view terminated_event = "snakepit.pool.worker.terminated";
constexpr char key_separator = '\xff';  // never part of valid UTF-8: keys cannot collide
constexpr std::size_t name_cache_limit = 4096;

// Label values are UTF-8 on every wire: a malformed byte becomes U+FFFD here, before the
// value identifies a series, so two values that render alike are one series.
void append_utf8(std::string& out, std::string_view v) {
    std::size_t bad = first_invalid_utf8(v);
    while (bad != std::string_view::npos) {
        out.append(v.substr(0, bad));
        out.append("\xEF\xBF\xBD");
        v.remove_prefix(bad + 1);
        bad = first_invalid_utf8(v);
    }
    out.append(v);
}

struct cell {
    std::vector<std::string> values;  // one per label, in the config's order
    double value = 0;
    std::vector<std::uint64_t> buckets;
    double sum = 0;
    std::uint64_t count = 0;
    std::int64_t start_ns = 0;
};

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

struct metric_store::state {
    explicit state(metric_def d) : def(std::move(d)), missing(def.labels.size()) {
        for (std::size_t i = 0; i < def.labels.size(); ++i)
            if (def.labels[i].key == "worker_id") worker_label = static_cast<int>(i);
    }
    metric_def def;
    std::unordered_map<std::string, std::uint32_t, string_hash, std::equal_to<>> index;
    std::vector<cell> all;
    std::int64_t overflow = -1;  // index in `all` of the overflow series
    int worker_label = -1;
    std::array<std::atomic<std::uint64_t>, skip_reason_count> skipped{};
    std::vector<std::atomic<std::uint64_t>> missing;
    std::atomic<std::uint64_t> overflowed{0};
    std::atomic<std::size_t> count{0};

    void skip(skip_reason r) { skipped[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed); }

    cell& make(std::string key, std::vector<std::string> values, std::int64_t now) {
        cell s;
        s.values = std::move(values);
        s.start_ns = now;
        if (def.kind == metric_kind::histogram) s.buckets.assign(def.buckets.size() + 1, 0);
        index.emplace(std::move(key), static_cast<std::uint32_t>(all.size()));
        all.push_back(std::move(s));
        count.store(all.size(), std::memory_order_relaxed);
        return all.back();
    }

    void update(cell& s, double v) {
        switch (def.kind) {
            case metric_kind::counter: s.value += v; break;
            case metric_kind::gauge: s.value = v; break;
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
    : service_name_(cfg.service_name), now_ns_(now_ns ? std::move(now_ns) : wall_ns) {
    for (const auto& d : cfg.metrics)
        if (d.capture) metrics_.push_back(std::make_unique<state>(d));
}

metric_store::~metric_store() = default;

const std::vector<std::uint32_t>& metric_store::metrics_for(const event& ev) {
    name_buf_.clear();
    for (std::size_t i = 0; i < ev.name.size(); ++i) {
        if (i) name_buf_ += '.';
        name_buf_ += ev.name[i];
    }
    if (auto it = by_name_.find(std::string_view(name_buf_)); it != by_name_.end())
        return it->second;
    std::vector<std::uint32_t> ids;
    for (std::size_t i = 0; i < metrics_.size(); ++i)
        if (glob_match(metrics_[i]->def.event, name_buf_)) ids.push_back(static_cast<std::uint32_t>(i));
    // Names are bounded by the catalog; the limit only guards against a custom one.
    if (by_name_.size() >= name_cache_limit) by_name_.clear();
    return by_name_.emplace(name_buf_, std::move(ids)).first->second;
}

void metric_store::record(const event& ev) {
    const auto& ids = metrics_for(ev);
    if (name_buf_ == terminated_event) {
        if (const auto* w = ev.meta("worker_id"); w && std::holds_alternative<std::string>(*w))
            forget_worker(std::get<std::string>(*w));
    }
    if (ids.empty()) return;
    std::lock_guard lk(mu_);
    for (const auto id : ids) {
        state& st = *metrics_[id];
        const metric_def& d = st.def;
        double v = 1;
        if (!d.measurement.empty()) {
            const auto* m = ev.measurement(d.measurement);
            if (!m) {
                st.skip(skip_reason::missing_measurement);
                continue;
            }
            if (const auto* i = std::get_if<std::int64_t>(m)) v = static_cast<double>(*i);
            else if (const auto* f = std::get_if<double>(m)) v = *f;
            else {
                st.skip(skip_reason::not_numeric);
                continue;
            }
            v *= d.scale;
            if (!std::isfinite(v)) {
                st.skip(skip_reason::not_finite);
                continue;
            }
            if (d.kind == metric_kind::counter && v < 0) {
                st.skip(skip_reason::negative);
                continue;
            }
        }
        key_buf_.clear();
        for (std::size_t l = 0; l < d.labels.size(); ++l) {
            const auto& key = d.labels[l].key;
            if (key == event_name_key) {
                append_utf8(key_buf_, name_buf_);
            } else if (const auto* mv = ev.meta(key)) {
                if (const auto* s = std::get_if<std::string>(mv)) {
                    append_utf8(key_buf_, *s);
                } else if (const auto* n = std::get_if<std::int64_t>(mv)) {
                    char buf[24];
                    const auto r = std::to_chars(buf, buf + sizeof buf, *n);
                    key_buf_.append(buf, r.ptr);
                } else {
                    st.missing[l].fetch_add(1, std::memory_order_relaxed);  // null
                }
            } else {
                st.missing[l].fetch_add(1, std::memory_order_relaxed);
            }
            key_buf_ += key_separator;
        }
        cell* s;
        if (auto it = st.index.find(std::string_view(key_buf_)); it != st.index.end()) {
            s = &st.all[it->second];
        } else if (st.all.size() - (st.overflow >= 0 ? 1 : 0) < d.max_series) {
            std::vector<std::string> values;
            values.reserve(d.labels.size());
            std::size_t from = 0;
            for (std::size_t l = 0; l < d.labels.size(); ++l) {
                const auto to = key_buf_.find(key_separator, from);
                values.emplace_back(key_buf_, from, to - from);
                from = to + 1;
            }
            s = &st.make(key_buf_, std::move(values), now_ns_());
        } else {
            if (st.overflow < 0) {
                st.overflow = static_cast<std::int64_t>(st.all.size());
                cell o;
                o.start_ns = now_ns_();
                if (d.kind == metric_kind::histogram) o.buckets.assign(d.buckets.size() + 1, 0);
                st.all.push_back(std::move(o));
                st.count.store(st.all.size(), std::memory_order_relaxed);
            }
            st.overflowed.fetch_add(1, std::memory_order_relaxed);
            s = &st.all[static_cast<std::size_t>(st.overflow)];
        }
        st.update(*s, v);
    }
}

void metric_store::forget_worker(std::string_view worker_id) {
    std::lock_guard lk(mu_);
    for (auto& p : metrics_) {
        state& st = *p;
        if (st.def.kind != metric_kind::gauge || st.worker_label < 0) continue;
        const auto l = static_cast<std::size_t>(st.worker_label);
        const bool any = std::any_of(st.all.begin(), st.all.end(), [&](const cell& s) {
            return !s.values.empty() && s.values[l] == worker_id;
        });
        if (!any) continue;
        // Rare (a worker's exit): rebuild the index rather than patch it.
        std::vector<cell> keep;
        keep.reserve(st.all.size());
        for (auto& s : st.all)
            if (s.values.empty() || s.values[l] != worker_id) keep.push_back(std::move(s));
        st.all = std::move(keep);
        st.index.clear();
        st.overflow = -1;
        for (std::size_t i = 0; i < st.all.size(); ++i) {
            if (st.all[i].values.empty()) {
                st.overflow = static_cast<std::int64_t>(i);
                continue;
            }
            std::string key;
            for (const auto& v : st.all[i].values) (key += v) += key_separator;
            st.index.emplace(std::move(key), static_cast<std::uint32_t>(i));
        }
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
            f.type = st.def.kind == metric_kind::counter   ? family_type::counter
                     : st.def.kind == metric_kind::gauge   ? family_type::gauge
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

std::uint64_t metric_store::overflowed(std::string_view metric) const {
    const auto* st = find(metric);
    return st ? st->overflowed.load() : 0;
}

std::size_t metric_store::series(std::string_view metric) const {
    const auto* st = find(metric);
    return st ? st->count.load() : 0;
}

registry::collector_id add_store_collector(registry& r, std::shared_ptr<const metric_store> store) {
    return r.add_collector([store = std::move(store)](std::vector<sample>& out) { store->own_samples(out); });
}

void metric_store::own_samples(std::vector<sample>& out) const {
    {
        for (const auto& p : metrics_) {
            const state& st = *p;
            const std::string& m = st.def.wire_name;
            for (std::size_t k = 0; k < skip_reason_count; ++k)
                out.push_back({"telecap_metrics_skipped_total",
                               {{"metric", m}, {"reason", std::string(to_string(static_cast<skip_reason>(k)))}},
                               kind::counter, static_cast<double>(st.skipped[k].load())});
            for (std::size_t l = 0; l < st.def.labels.size(); ++l)
                out.push_back({"telecap_metrics_missing_label_total",
                               {{"label", st.def.labels[l].name}, {"metric", m}},
                               kind::counter, static_cast<double>(st.missing[l].load())});
            out.push_back({"telecap_metrics_overflow_total", {{"metric", m}}, kind::counter,
                           static_cast<double>(st.overflowed.load())});
            out.push_back({"telecap_metrics_series", {{"metric", m}}, kind::gauge,
                           static_cast<double>(st.count.load())});
        }
    }
}

}  // namespace telecap::metrics
