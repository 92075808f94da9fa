#include "metrics/registry.hpp"

#include <algorithm>

namespace telecap::metrics {

namespace {

label_set sorted(label_set l) {
    std::sort(l.begin(), l.end());
    return l;
}

}  // namespace

counter& registry::get_counter(const std::string& name, label_set labels) {
    std::lock_guard lock(mu_);
    auto& slot = counters_[{name, sorted(std::move(labels))}];
    if (!slot) slot = std::make_unique<counter>();
    return *slot;
}

gauge& registry::get_gauge(const std::string& name, label_set labels) {
    std::lock_guard lock(mu_);
    auto& slot = gauges_[{name, sorted(std::move(labels))}];
    if (!slot) slot = std::make_unique<gauge>();
    return *slot;
}

void registry::remove_gauge(const std::string& name, label_set labels) {
    std::lock_guard lock(mu_);
    gauges_.erase({name, sorted(std::move(labels))});
}

registry::collector_id registry::add_collector(collector fn) {
    std::lock_guard lock(mu_);
    collectors_.emplace(next_, std::move(fn));
    return next_++;
}

void registry::remove_collector(collector_id id) {
    std::lock_guard lock(mu_);
    collectors_.erase(id);
}

std::vector<sample> registry::snapshot() const {
    std::vector<sample> out;
    {
        std::lock_guard lock(mu_);
        for (const auto& [k, c] : counters_)
            out.push_back({k.first, k.second, kind::counter, static_cast<double>(c->value())});
        for (const auto& [k, g] : gauges_)
            out.push_back({k.first, k.second, kind::gauge, static_cast<double>(g->value())});
        for (const auto& [id, fn] : collectors_) {
            const auto from = out.size();
            fn(out);
            for (auto i = from; i < out.size(); ++i)
                out[i].labels = sorted(std::move(out[i].labels));
        }
    }
    std::sort(out.begin(), out.end(), [](const sample& a, const sample& b) {
        return std::tie(a.name, a.labels) < std::tie(b.name, b.labels);
    });
    return out;
}

double registry::find(const std::vector<sample>& s, const std::string& name,
                      const label_set& labels) {
    const auto want = sorted(labels);
    for (const auto& x : s)
        if (x.name == name && x.labels == want) return x.value;
    return -1;
}

}  // namespace telecap::metrics
