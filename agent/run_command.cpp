// telecap run: the wiring of the run core. The event loop (loop/), the dispatcher
// (dispatch/), the supervisor (supervise/) and the output streams (io/) do the work; this
// file builds them from the options and writes --stats.

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "agent/grpc_sources.hpp"
#include "agent/reload.hpp"
#include "agent/run.hpp"
#include "agent/run_outputs.hpp"
#include "agent/run_taps.hpp"
#include "control/server.hpp"
#include "control/worker_control_relay.hpp"
#include "core/service_notify.hpp"
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
    // systemd's Type=notify (docs/run.md, "Deployment"): taken out of the environment before
    // any worker starts, so none inherits it.
    const service_notifier notifier = service_notifier::from_environment();
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
    auto tap_names = std::make_shared<wire_names>();  // what `ctl tap` patterns match
    supervisor_io io;
    for (const auto& pool : running.pools) {
        auto& cat = catalogs[pool.catalog_path];
        if (!cat) {
            capture_options co = o.capture;
            co.catalog_path = pool.catalog_path;
            cat = std::make_unique<catalog>(load_catalog(co));
            tap_names->add(*cat);
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
                   .wait = block && o.dispatch == dispatch_mode::thread,
                   .block = block,
                   .name_ids_unique = true,  // a reload's catalogs are kept until exit
                   .registry = &registry,
                   .metrics_path = o.capture.metrics_path,
                   .catalog_path = o.capture.catalog_path,
                   .worker_controls = std::make_shared<control::worker_control_relay>()};
    run_outputs outputs(bus, env, registry);  // before the dispatcher: a reload's change uses it
    outputs.attach(o);
    passthrough_mux pass(open_passthrough(o.capture.passthrough, streams));
    passthrough_mux stdout_pass(streams.standard(1));
    auto rejects = open_rejects(o.capture.rejects_path, streams);

    unknown_event_notes unknown_events;  // outlives the supervisor and its pipelines
    // Block: the dispatch thread waits while an output is behind; drop-newest: it holds a
    // burst in its queue for --burst-hold at most (the loop holds it in the pipes instead
    // when it runs the outputs itself). The dispatcher never holds where it waits.
    dispatcher events(bus, {o.queue, o.queue_bytes, o.dispatch, block, o.burst_hold});
    io.events = &events;
    io.stderr_pass = &pass;
    io.stdout_pass = &stdout_pass;
    io.rejects = rejects.get();
    io.registry = &registry;
    io.outputs = [&outputs] { return outputs.status(); };
    std::unique_ptr<run_taps> taps;  // `ctl tap`: outlives the socket, read by --stats
    io.losses = [&outputs, &taps](control::run_losses& l) {
        for (const auto& o : outputs.status()) l.output += o.dropped;
        l.output += outputs.removed_drops();
        if (taps) l.tap = taps->hub().dropped_total();
    };
    io.listeners = [book = env.listeners] {
        std::vector<control::listener_status> out;
        for (auto& [output, url] : book->live()) out.push_back({output, url});
        return out;
    };

    supervisor_options so;
    so.pools = running.pools;
    so.pipeline = make_pipeline_options(o.capture);
    so.pipeline.unknown_events = &unknown_events;
    so.node = o.capture.node.empty() ? hostname() : o.capture.node;
    so.worker_id = o.capture.worker_id;
    so.stop_signal = o.stop_signal;
    so.grace = o.grace;
    so.overflow = o.overflow;
    so.burst_hold = o.burst_hold;
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

    so.reopen = [&streams] { return streams.reopen_files(); };
    if (notifier.active()) so.notify = [&notifier](std::string_view s) { notifier.send(s); };

    event_loop loop;
    io.grpc = grpc_sources(loop);  // for the pools with `grpc`
    supervisor* sup_ptr = nullptr;
    std::unique_ptr<reloader> reload;
    if (o.reread) {
        reload = std::make_unique<reloader>(o.reread, running, outputs, events, registry);
        reload->on_catalog = [tap_names](const catalog& c) { tap_names->add(c); };
        so.reload = [&reload, &sup_ptr, &notifier] {
            timespec now{};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            notifier.send("RELOADING=1\nMONOTONIC_USEC=" +
                          std::to_string(now.tv_sec * 1000000LL + now.tv_nsec / 1000));
            std::string reply = (*reload)(*sup_ptr);
            notifier.send("READY=1");
            return reply;
        };
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
    env.worker_controls->attach(loop, sup);  // `-o grpc?control=workers` streams' controls
    // The control socket, served by the loop while the supervisor runs it (before any worker
    // starts, so a socket that cannot be listened on is a startup error).
    std::unique_ptr<control::server> control_socket;
    if (!o.control_socket.empty()) {
        taps = std::make_unique<run_taps>(bus, events, registry, tap_names,
                                          [&sup](bool on) { sup.tap_passthrough(on); });
        // Clients the socket cut off, by reason (all of them present from the start, at 0).
        std::array<metrics::counter*, control::close_reason_count> closed{};
        for (std::size_t r = 0; r < closed.size(); ++r)
            closed[r] = &registry.get_counter(
                "telecap_control_clients_closed_total",
                {{"reason",
                  std::string(control::to_string(static_cast<control::close_reason>(r)))}});
        control::server_options co;
        co.on_close = [closed](control::close_reason r) {
            closed[static_cast<std::size_t>(r)]->inc();
        };
        co.open_stream = [&taps](std::string_view line) { return taps->hub().open(line); };
        try {
            control_socket = std::make_unique<control::server>(
                loop, o.control_socket,
                [&sup](std::string_view line) { return sup.handle_control(line); }, co);
        } catch (const std::runtime_error& e) {
            throw usage_error(e.what());
        }
    }
    // Ready: the config, catalogs, outputs and control socket are all in place; the workers
    // start with the loop's first turns.
    if (notifier.active() && !notifier.send("READY=1"))
        spdlog::warn("NOTIFY_SOCKET is set but telecap could not notify the service manager");
    int rc = sup.run();
    env.worker_controls->detach();  // the loop turns no more
    // The control socket stays until the handlers have run dry (below): the taps' last
    // events are then written to their clients, and the socket closed. Its clients wait
    // meanwhile (the loop no longer turns), within the stop's bounds.

    // A handler stuck for good must not keep telecap (and its caller) waiting forever. After
    // a stop (SIGTERM), every step below shares the stop's one deadline (grace + 2 s from the
    // signal), so their bounds do not add up; `by(d)` is now + d, or that deadline if sooner.
    const auto limit = stuck_handler_limit(o);
    const auto stop_end = sup.stop_deadline();
    const auto by = [&stop_end](std::chrono::milliseconds d) {
        const auto t = std::chrono::steady_clock::now() + d;
        return stop_end ? std::min(t, *stop_end) : t;
    };
    // The fallbacks after a stuck handler need a moment even past the deadline.
    const auto at_least = [](std::chrono::steady_clock::time_point t, std::chrono::milliseconds d) {
        return std::max(t, std::chrono::steady_clock::now() + d);
    };
    capture_stats stats = sup.totals();
    for (const auto* mux : {&pass, &stdout_pass}) {
        stats.long_lines_split += mux->long_lines_split();
        stats.partial_lines += mux->partial_lines();
    }
    const auto handlers_from = std::chrono::steady_clock::now();
    // Handlers get the time up to the stop's deadline less a little for the streams' drain.
    bool done = events.finish(
        stop_end ? std::min(by(limit), at_least(*stop_end - std::chrono::milliseconds(250),
                                                std::chrono::milliseconds(0)))
                 : by(limit));
    if (!done) {
        // Most often a handler waits for room in an output stream whose reader stopped
        // reading: closing the streams (what they hold is dropped and counted) lets it go on,
        // and the rest of the queue then counts as dropped by that output.
        spdlog::warn("a handler has not returned within {} ms: closing the output streams",
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - handlers_from)
                         .count());
        cs.finish(at_least(by(std::chrono::seconds(1)), std::chrono::milliseconds(50)));
        done = events.finish(at_least(by(std::chrono::seconds(2)), std::chrono::milliseconds(200)));
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
        cs.finish(at_least(by(std::chrono::seconds(1)), std::chrono::milliseconds(50)));
        control_socket.reset();  // its file removed
        std::fflush(nullptr);
        ::_exit(rc ? rc : exit_data_lost);  // the stuck thread cannot be joined
    }
    // Every event has passed the bus: a tap that reads gets the last of them (a tap that
    // does not read costs this stop at most 250 ms), then the socket goes.
    if (control_socket) {
        control_socket->drain_streams(by(std::chrono::milliseconds(250)));
        control_socket.reset();
    }
    // Network outputs send what they still hold (a last metrics export) within the grace
    // period (at least 1 s, at most 10 s: the workers are gone already).
    bus.finish(by(std::clamp<std::chrono::milliseconds>(o.grace, std::chrono::seconds(1),
                                                        std::chrono::seconds(10))));
    stats.handler_failures = bus.failures();
    stats.dropped_for(drop_reason::output) += bus.events_dropped() + outputs.removed_drops();
    // Every stream drains against the same deadline (stream_set::close_all).
    cs.finish(by(limit));
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
