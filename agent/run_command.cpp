// telecap run: the wiring of the run core. The event loop (loop/), the dispatcher
// (dispatch/), the supervisor (supervise/) and the output streams (io/) do the work; this
// file builds them from the options and writes --stats.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "agent/output_series.hpp"
#include "agent/run.hpp"
#include "control/server.hpp"
#include "metrics/collectors.hpp"
#include "metrics/registry.hpp"
#include "spawn/guard.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"

namespace telecap::agent {

namespace {

// Passes only the events of one pool to the handler it wraps (a pool's own outputs).
class pool_filter final : public handler {
public:
    pool_filter(std::string pool, std::shared_ptr<handler> inner)
        : pool_(std::move(pool)), inner_(std::move(inner)) {}
    void handle(const event& ev) override {
        const auto* p = ev.meta("pool_name");
        if (p && std::holds_alternative<std::string>(*p) && std::get<std::string>(*p) == pool_)
            inner_->handle(ev);
    }
    void flush() override { inner_->flush(); }
    void finish(std::chrono::steady_clock::time_point deadline) override { inner_->finish(deadline); }
    std::string counters_json() const override { return inner_->counters_json(); }
    std::uint64_t events_dropped() const override { return inner_->events_dropped(); }

private:
    std::string pool_;
    std::shared_ptr<handler> inner_;
};

// How long telecap waits for a handler that makes no progress once the workers are gone.
std::chrono::milliseconds stuck_handler_limit(const run_options& o) {
    return std::max<std::chrono::milliseconds>(o.grace, std::chrono::seconds(5));
}

}  // namespace

int run_workers(const run_options& o) {
    // Signals are blocked before any thread exists, so only the loop's signalfd sees them.
    if (auto ec = spawn::block_signals(spawn::loop_signal_set(), nullptr))
        throw std::runtime_error("cannot block signals: " + ec.message());
    if (auto ec = spawn::become_subreaper())
        spdlog::warn("cannot become a child subreaper: {}", ec.message());

    command_streams cs;
    stream_set& streams = cs.get();
    const bool block = o.overflow == overflow_policy::block;

    const catalog main_catalog = load_catalog(o.capture);
    std::vector<std::unique_ptr<catalog>> pool_catalogs;
    supervisor_io io;
    for (const auto& pool : o.pools) {
        if (pool.catalog_path.empty()) {
            io.catalogs.push_back(&main_catalog);
            continue;
        }
        capture_options co = o.capture;
        co.catalog_path = pool.catalog_path;
        pool_catalogs.push_back(std::make_unique<catalog>(load_catalog(co)));
        io.catalogs.push_back(pool_catalogs.back().get());
    }

    // The live counters: the supervisor adds the workers' series, these the streams' and the
    // process's. --stats writes a snapshot of them under "metrics"; the metrics exporters serve
    // them. Declared before the outputs, which read it until they go.
    metrics::registry registry;
    metrics::add_stream_collector(registry, streams);
    metrics::add_process_collector(registry);

    handler_bus bus;
    attached_outputs outputs;
    output_env env{streams, block, &registry, o.capture.metrics_path, nullptr, false};
    attach_outputs(o.capture.outputs, bus, env, &outputs);
    for (const auto& pool : o.pools)
        for (std::size_t k = 0; k < pool.outputs.size(); ++k) {
            const std::string id =
                "pool." + pool.name + ".output." + std::to_string(k) + ":" + pool.outputs[k];
            auto h = make_output(pool.outputs[k], env, id);
            outputs.emplace_back(id, h);
            bus.attach(id, {}, std::make_shared<pool_filter>(pool.name, std::move(h)));
        }
    passthrough_mux pass(open_passthrough(o.capture.passthrough, streams));
    passthrough_mux stdout_pass(streams.standard(1));
    auto rejects = open_rejects(o.capture.rejects_path, streams);

    dispatcher events(bus, {o.queue, o.queue_bytes});
    io.events = &events;
    io.stderr_pass = &pass;
    io.stdout_pass = &stdout_pass;
    io.rejects = rejects.get();
    io.registry = &registry;
    add_output_series(registry, outputs);

    supervisor_options so;
    so.pools = o.pools;
    so.pipeline = make_pipeline_options(o.capture);
    so.node = o.capture.node.empty() ? hostname() : o.capture.node;
    so.worker_id = o.capture.worker_id;
    so.stop_signal = o.stop_signal;
    so.grace = o.grace;
    so.overflow = o.overflow;
    so.label = o.label;
    so.line_budget = o.line_budget;
    so.controls = o.controls;
    so.reap_orphans = true;  // telecap is the subreaper of everything below it
    if (auto guard = spawn::find_guard_executable()) {
        so.guard = *guard;
    } else {
        spdlog::warn("telecap-guard not found ({}): what a worker leaves running is killed only "
                     "when telecap exits normally (docs/run.md \"No leftovers\")",
                     guard.error().message());
    }

    event_loop loop;
    supervisor sup(loop, so, io);
    // The control socket, served by the loop while the supervisor runs it (before any worker
    // starts, so a socket that cannot be listened on is a startup error).
    std::unique_ptr<control::server> control_socket;
    if (!o.control_socket.empty()) {
        try {
            control_socket = std::make_unique<control::server>(
                loop, o.control_socket,
                [&sup](std::string_view line) { return sup.handle_control(line); });
        } catch (const std::runtime_error& e) {
            throw usage_error(e.what());
        }
    }
    int rc = sup.run();
    control_socket.reset();  // no client waits on a loop that no longer turns

    // A handler stuck for good must not keep telecap (and its caller) waiting forever.
    const auto limit = stuck_handler_limit(o);
    capture_stats stats = sup.totals();
    if (!events.finish(std::chrono::steady_clock::now() + limit)) {
        stats.dropped_for(drop_reason::shutdown) += events.depth();
        spdlog::error("a handler did not return within {} ms; exiting without it", limit.count());
        if (!o.capture.stats_path.empty())
            write_stats_file(o.capture.stats_path, stats, {},
                             ",\"workers\":" + sup.workers_json() + ",\"streams\":" +
                                 streams_json(streams) + ",\"metrics\":" +
                                 metrics::to_json(registry.snapshot()));
        cs.finish(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        std::fflush(nullptr);
        ::_exit(rc ? rc : exit_data_lost);  // the stuck thread cannot be joined
    }
    // Network outputs send what they still hold (a last metrics export) within the grace
    // period (at least 1 s, at most 10 s: the workers are gone already).
    bus.finish(std::chrono::steady_clock::now() +
               std::clamp<std::chrono::milliseconds>(o.grace, std::chrono::seconds(1),
                                                     std::chrono::seconds(10)));
    stats.handler_failures = bus.failures();
    stats.dropped_for(drop_reason::output) += bus.events_dropped();
    cs.finish(std::chrono::steady_clock::now() + limit);
    if (!o.capture.stats_path.empty() &&
        !write_stats_file(o.capture.stats_path, stats, bus.counters_json(),
                          ",\"workers\":" + sup.workers_json() + ",\"streams\":" +
                              streams_json(streams) + ",\"metrics\":" +
                              metrics::to_json(registry.snapshot())) &&
        rc == 0)
        rc = 1;
    if (rc == 0 && data_lost(stats, bus, streams)) rc = exit_data_lost;
    return rc;
}

}  // namespace telecap::agent
