// telecap run: the wiring of the run core. The event loop (loop/), the dispatcher
// (dispatch/), the supervisor (supervise/) and the output streams (io/) do the work; this
// file builds them from the options and writes --stats.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "agent/reload.hpp"
#include "agent/run.hpp"
#include "agent/run_outputs.hpp"
#include "control/server.hpp"
#include "metrics/collectors.hpp"
#include "metrics/registry.hpp"
#include "spawn/guard.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"

namespace telecap::agent {

namespace {

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
    // --stats is written whole at exit: no output, pass-through or rejects file may be it,
    // now or after a reload.
    if (!o.capture.stats_path.empty()) {
        try {
            streams.claim_output(o.capture.stats_path, "--stats");
        } catch (const std::exception& e) {
            throw usage_error(e.what());
        }
    }
    const bool block = o.overflow == overflow_policy::block;

    // Each pool's catalog file made explicit, so a reload can tell whether it changed.
    run_options running = o;
    resolve_catalog_paths(running);
    if (capture_stdout_if_shared(running))
        spdlog::debug(
            "events or pass-through go to stdout: the workers' stdout is captured, "
            "so their lines cannot cut into telecap's");
    std::map<std::string, std::unique_ptr<catalog>> catalogs;
    supervisor_io io;
    for (const auto& pool : running.pools) {
        auto& cat = catalogs[pool.catalog_path];
        if (!cat) {
            capture_options co = o.capture;
            co.catalog_path = pool.catalog_path;
            cat = std::make_unique<catalog>(load_catalog(co));
        }
        io.catalogs.push_back(cat.get());
    }

    // The live counters: the supervisor adds the workers' series, these the streams' and the
    // process's. --stats writes a snapshot of them under "metrics"; the metrics exporters serve
    // them. Declared before the outputs, which read it until they go.
    metrics::registry registry;
    metrics::add_stream_collector(registry, streams);
    metrics::add_process_collector(registry);

    handler_bus bus;
    output_env env{.streams = streams,
                   .wait = block,
                   .registry = &registry,
                   .metrics_path = o.capture.metrics_path};
    run_outputs outputs(bus, env, registry);  // before the dispatcher: a reload's change uses it
    outputs.attach(o);
    passthrough_mux pass(open_passthrough(o.capture.passthrough, streams));
    passthrough_mux stdout_pass(streams.standard(1));
    auto rejects = open_rejects(o.capture.rejects_path, streams);

    unknown_event_notes unknown_events;  // outlives the supervisor and its pipelines
    dispatcher events(bus, {o.queue, o.queue_bytes});
    io.events = &events;
    io.stderr_pass = &pass;
    io.stdout_pass = &stdout_pass;
    io.rejects = rejects.get();
    io.registry = &registry;

    supervisor_options so;
    so.pools = running.pools;
    so.pipeline = make_pipeline_options(o.capture);
    so.pipeline.unknown_events = &unknown_events;
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
        spdlog::warn(
            "telecap-guard not found ({}): what a worker leaves running is killed only "
            "when telecap exits normally (docs/run.md \"No leftovers\")",
            guard.error().message());
    }

    event_loop loop;
    supervisor* sup_ptr = nullptr;
    std::unique_ptr<reloader> reload;
    if (o.reread) {
        reload = std::make_unique<reloader>(o.reread, running, outputs, events, registry);
        so.reload = [&reload, &sup_ptr] { return (*reload)(*sup_ptr); };
    }
    // A long line whose worker goes quiet must not hold the other workers' lines past the
    // mux's bound: the mux asks for a call back when that bound passes.
    for (auto* mux : {&pass, &stdout_pass})
        mux->set_alarm([&loop, mux](std::chrono::steady_clock::time_point when) {
            loop.at(when, [mux] { mux->tick(); });
        });
    metrics::add_passthrough_collector(registry, {&pass, &stdout_pass});
    supervisor sup(loop, so, io);
    sup_ptr = &sup;
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
    for (const auto* mux : {&pass, &stdout_pass}) {
        stats.long_lines_split += mux->long_lines_split();
        stats.partial_lines += mux->partial_lines();
    }
    bool done = events.finish(std::chrono::steady_clock::now() + limit);
    if (!done) {
        // Most often a handler waits for room in an output stream whose reader stopped
        // reading: closing the streams (what they hold is dropped and counted) lets it go on,
        // and the rest of the queue then counts as dropped by that output.
        spdlog::warn("a handler has not returned within {} ms: closing the output streams",
                     limit.count());
        cs.finish(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        done = events.finish(std::chrono::steady_clock::now() + std::chrono::seconds(2));
    }
    if (!done) {
        events.give_up();
        stats.dropped_for(drop_reason::shutdown) += events.depth();
        spdlog::error("a handler did not return within {} ms; exiting without it", limit.count());
        if (!o.capture.stats_path.empty())
            write_stats_file(o.capture.stats_path, stats, {},
                             ",\"workers\":" + sup.workers_json() +
                                 ",\"streams\":" + streams_json(streams) +
                                 ",\"metrics\":" + metrics::to_json(registry.snapshot()));
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
    stats.dropped_for(drop_reason::output) += bus.events_dropped() + outputs.removed_drops();
    cs.finish(std::chrono::steady_clock::now() + limit);
    if (!o.capture.stats_path.empty() &&
        !write_stats_file(o.capture.stats_path, stats, bus.counters_json(),
                          ",\"workers\":" + sup.workers_json() +
                              ",\"streams\":" + streams_json(streams) +
                              ",\"metrics\":" + metrics::to_json(registry.snapshot())) &&
        rc == 0)
        rc = 1;
    if (rc == 0 && data_lost(stats, bus, streams)) rc = exit_data_lost;
    return rc;
}

}  // namespace telecap::agent
