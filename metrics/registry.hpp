#pragma once
// A thread-safe registry of named counters and gauges with labels: telecap's live counters.
// Writers update their series through a reference kept from registration (one relaxed atomic
// operation, no lock); parts that keep their own counters (a pipeline's capture_stats, a
// stream's counters) add a collector instead, which reads them when a snapshot is taken.
// A snapshot may be taken at any time from any thread: --stats reads it at exit, the metrics
// export serves it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace telecap::metrics {

using label_set = std::vector<std::pair<std::string, std::string>>;

enum class kind { counter, gauge };

struct sample {
    std::string name;  // e.g. "telecap_events_total"
    label_set labels;
    kind type = kind::counter;
    double value = 0;
};

class counter {
public:
    void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

class gauge {
public:
    void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> v_{0};
};

class registry {
public:
    using collector = std::function<void(std::vector<sample>&)>;
    using collector_id = std::uint64_t;

    // The series `name` + `labels`, created on first use; the reference stays valid for the
    // registry's life (counters never go away: no false resets). Labels are kept sorted.
    counter& get_counter(const std::string& name, label_set labels = {});
    gauge& get_gauge(const std::string& name, label_set labels = {});
    // Gauges of things that are gone (a worker that stopped for good) are removed.
    void remove_gauge(const std::string& name, label_set labels);

    // fn appends samples when a snapshot is taken, on the snapshot's thread: it must only read
    // what is safe to read from any thread (atomics).
    collector_id add_collector(collector fn);
    void remove_collector(collector_id id);

    // Every series, sorted by name then labels.
    std::vector<sample> snapshot() const;
    // The value of one series in a snapshot, or -1 when absent (for tests and --stats).
    static double find(const std::vector<sample>& s, const std::string& name,
                       const label_set& labels = {});

private:
    using key = std::pair<std::string, label_set>;
    mutable std::mutex mu_;
    std::map<key, std::unique_ptr<counter>> counters_;
    std::map<key, std::unique_ptr<gauge>> gauges_;
    std::map<collector_id, collector> collectors_;
    collector_id next_ = 1;
};

}  // namespace telecap::metrics
