#pragma once
// The handler that records events into a metric_store: attached once to the bus, ahead of
// the metrics exporters that read the store, however many there are.

#include <memory>
#include <string>

#include "telecap/capture/handler.hpp"
#include "telecap/metrics/metric_store.hpp"

namespace telecap::metrics {

class deriver final : public handler {
public:
    explicit deriver(std::shared_ptr<metric_store> store) : store_(std::move(store)) {}
    void handle(const event& ev) override { store_->record(ev); }

private:
    std::shared_ptr<metric_store> store_;
};

}  // namespace telecap::metrics
