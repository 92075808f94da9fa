#pragma once
// Metrics derived from events: the series of the configured counters, histograms and gauges.
// record() runs on the dispatch thread (never the capture thread); collect() copies a
// consistent snapshot for an exporter from any thread. One lock guards the series: a record
// holds it for one event's updates, a collect for a copy (rendering happens outside it), so a
// scrape never sees a half-updated histogram and never waits on capture for longer than one
// event takes to record. record() is for one thread at a time: it keeps, per event name, the
// label values of the last event and the series they went to (reused while they stay the same).
//
// Rules (docs/metrics.md):
// - an event lacking a label's metadata key gets the value "" for it (Prometheus reads an
//   empty label as an absent one), counted in missing_label;
// - an event lacking the measurement, or whose measurement is not a finite number (a string,
//   NaN), or a negative value for a counter, is not recorded for that metric, counted by reason;
// - a label value longer than max_label_bytes is cut there (on a UTF-8 boundary), counted:
//   a series costs what its values hold, so the caps bound memory only with this;
// - past max_series distinct label sets, measurements go to one overflow series labelled
//   otel_metric_overflow="true" (so totals stay right), counted;
// - counters never expire; the gauges of a worker are removed when it terminates (the
//   supervisor's snakepit.pool.worker.terminated event names its worker_id).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/event.hpp"
#include "telecap/core/flat_map.hpp"
#include "telecap/metrics/family.hpp"
#include "telecap/metrics/metric_config.hpp"
#include "telecap/metrics/registry.hpp"

namespace telecap::metrics {

inline constexpr std::size_t max_label_bytes = 1024;

enum class skip_reason : std::uint8_t { missing_measurement, not_numeric, not_finite, negative };
inline constexpr std::size_t skip_reason_count = 4;
std::string_view to_string(skip_reason r) noexcept;

// A mutex whose uncontended lock and unlock are one atomic instruction each, inline: the
// recording thread takes it once per event, and a scrape rarely competes. Contended, it
// sleeps (futex, through std::atomic::wait) like std::mutex.
class record_mutex {
public:
    [[gnu::always_inline]] void lock() noexcept {
        int c = 0;
        if (!state_.compare_exchange_strong(c, 1, std::memory_order_acquire)) lock_slow(c);
    }
    [[gnu::always_inline]] void unlock() noexcept {
        if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
    }

private:
    void lock_slow(int c) noexcept;
    std::atomic<int> state_{0};  // 0 free, 1 held, 2 held and maybe waited for
};

class metric_store {
public:
    // Metrics with capture: false are left out. `now_ns` is the wall clock (tests inject it).
    explicit metric_store(const metrics_config& cfg,
                          std::function<std::int64_t()> now_ns = nullptr);
    ~metric_store();
    metric_store(const metric_store&) = delete;
    metric_store& operator=(const metric_store&) = delete;

    void record(const event& ev);
    std::vector<family> collect() const;

    // The store's own counters: telecap_metrics_skipped_total{metric,reason},
    // telecap_metrics_missing_label_total{metric,label}, telecap_metrics_overflow_total{metric}
    // and the telecap_metrics_series{metric} gauge. Any thread.
    void own_samples(std::vector<sample>& out) const;

    std::uint64_t skipped(std::string_view metric, skip_reason r) const;
    std::uint64_t missing_label(std::string_view metric, std::string_view label) const;
    std::uint64_t cut_label(std::string_view metric, std::string_view label) const;
    std::uint64_t overflowed(std::string_view metric) const;
    std::size_t series(std::string_view metric) const;

    const std::string& service_name() const noexcept { return service_name_; }

private:
    struct state;
    struct name_entry;
    struct target;
    struct entry_key;
    // One label value of the event being recorded: resolved once per event, shared by every
    // metric that uses the key (keys are numbered across the config).
    struct label_value {
        std::string_view view;
        bool missing = false;
        bool cut = false;  // longer than max_label_bytes: cut
        char digits[24];   // an integer value's text
    };

    name_entry& entry_for(const event& ev);
    name_entry& entry_slow(const event& ev);
    name_entry& entry_by_parts(const event& ev);
    void record_one(state& st, target& t, const event& ev, const name_entry& e,
                    std::uint64_t changed, std::uint64_t flagged);
    void record_slow(state& st, target& t, const name_entry& e, double v);
    void forget_terminated(const event& ev);
    void forget_worker(std::string_view worker_id);
    const state* find(std::string_view metric) const;

    std::string service_name_;
    std::vector<std::unique_ptr<state>> metrics_;
    std::function<std::int64_t()> now_ns_;
    mutable record_mutex mu_;
    // Only the recording thread touches these.
    std::vector<std::unique_ptr<name_entry>> entries_;  // every name seen (names_ points here)
    flat_map<std::uint64_t, name_entry*> names_{64};    // by the parts' hash
    // name_id -> entry (the normalizer's events skip hashing their name).
    flat_map<const void*, name_entry*> by_id_{64};
    std::vector<std::string> keys_;       // every label key of the config, once
    std::vector<label_value> values_;     // by key number: this event's resolved labels
    std::uint32_t event_key_;             // the number of "$event" among them (or none)
    std::string_view views_[max_labels];  // the label values of the metric being recorded
};

// Puts the store's own counters into the registry (the collector keeps the store alive).
registry::collector_id add_store_collector(registry& r, std::shared_ptr<const metric_store> store);

}  // namespace telecap::metrics
