#pragma once
// A pool's own output (`pools.NAME.outputs` in the config): the handler it wraps gets only the
// events of that pool. Everything else the bus asks goes to the wrapped handler unchanged,
// congestion included, so a pool's output that is behind pauses the run loop in block mode as
// a global one does.

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "capture/handler.hpp"

namespace telecap::agent {

class pool_filter final : public handler {
public:
    pool_filter(std::string pool, std::shared_ptr<handler> inner)
        : pool_(std::move(pool)), inner_(std::move(inner)) {}
    void handle(const event& ev) override {
        const auto* p = ev.meta("pool_name");
        if (p && std::holds_alternative<std::string>(*p) && std::get<std::string>(*p) == pool_)
            inner_->deliver(ev);
    }
    void flush() override { inner_->flush(); }
    void finish(std::chrono::steady_clock::time_point deadline) override {
        inner_->finish(deadline);
    }
    bool congested() const override { return inner_->congested(); }
    bool about_to_drop() const override { return inner_->about_to_drop(); }
    std::string counters_json() const override { return inner_->counters_json(); }
    std::uint64_t events_dropped() const override { return inner_->events_dropped(); }
    std::uint64_t items_lost() const override { return inner_->items_lost(); }
    std::uint64_t errors() const override { return inner_->errors(); }
    std::string last_error() const override { return inner_->last_error(); }

private:
    std::string pool_;
    std::shared_ptr<handler> inner_;
};

}  // namespace telecap::agent
