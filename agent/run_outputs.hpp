#pragma once
// The outputs of `telecap run`: the top-level ones and each pool's own, attached to the bus,
// and rebuilt by a reload. An output is known by what it is (its spec, and its pool for a
// pool's), so a reload keeps the outputs that are still asked for (same handler, same
// connections, same queued data), makes the new ones and lets the others go.

#include <atomic>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/options.hpp"
#include "agent/run.hpp"
#include "control/status.hpp"
#include "dispatch/dispatcher.hpp"

namespace telecap::agent {

class run_outputs {
public:
    // `env` (streams, registry, metrics) and `bus` outlive this object.
    run_outputs(handler_bus& bus, output_env& env, metrics::registry& registry);
    ~run_outputs();
    run_outputs(const run_outputs&) = delete;
    run_outputs& operator=(const run_outputs&) = delete;

    // At startup, before the dispatcher runs: makes and attaches every output of `o` (the
    // default jsonl when none is named). Throws usage_error.
    void attach(const run_options& o);

    // A reload in two steps, so that a bad output changes nothing. prepare() makes the outputs
    // `o` adds (binding ports and sockets, opening files: throws usage_error, and what it made
    // is let go), and a new metric store when the metrics file changed; commit() hands the
    // change to the dispatch thread, where it happens between two batches: the events queued
    // before it reach the old set, those after it the new. A new metric store starts empty
    // (its counters start again from 0, which Prometheus and OTLP cumulative readers take
    // as a reset).
    // An output as run: what identifies it across reloads ("|SPEC#n" or "POOL|SPEC#n"), how
    // a reply names it ("SPEC" or "POOL: SPEC"), its bus id, the output itself.
    struct output {
        std::string key, label, id;
        std::shared_ptr<handler> inner;
    };
    struct change {
        std::vector<std::pair<std::string, std::shared_ptr<handler>>> add;  // bus id, attached
        std::vector<output> remove;
        std::vector<std::string> added_specs, removed_specs;  // for the reply
        std::vector<output> next;                             // the whole set
        bool metrics_changed = false;  // the metrics file (its path or its text)
        std::string metrics_path, metrics_text;
        std::shared_ptr<metrics::metric_store> store;  // the new store, when exporters need one
    };
    change prepare(const run_options& o);
    void commit(change c, dispatcher& d);

    // Waits (bounded) until the outputs removed by the last commit have sent what they held
    // and are let go, so that their files, sockets and ports are free again; prepare() calls
    // it. Throws usage_error when that takes too long (a stalled network output).
    void wait_for_removed();

    // The events the outputs removed by reloads had dropped (they leave the bus).
    std::uint64_t removed_drops() const noexcept { return removed_drops_->load(); }

    // Each output as run, with its counters now (ctl status, telecap top). On the thread
    // that commits reloads (the loop thread).
    std::vector<control::output_status> status() const;

private:
    struct wanted {
        std::string key;  // as output::key
        std::string spec;
        std::string pool;  // empty: a top-level output
        std::string label() const { return pool.empty() ? spec : pool + ": " + spec; }
    };
    static std::vector<wanted> wanted_outputs(const run_options& o);
    std::string new_id(const wanted& w);
    void add_outputs(const run_options& o, change& c);
    // The output, and what the bus gets: the same, or for a pool's output a filter around it.
    std::pair<std::shared_ptr<handler>, std::shared_ptr<handler>> make(const wanted& w,
                                                                       const std::string& id);
    void publish_series();

    handler_bus& bus_;
    output_env& env_;
    metrics::registry& registry_;
    std::vector<output> outputs_;  // in the order they were attached
    int next_index_ = 0;
    std::string metrics_path_, metrics_text_;  // the metrics file the store was made from
    metrics::registry::collector_id series_ = 0;
    std::shared_future<void> leaving_;  // ready once the last commit's removed outputs are gone
    std::shared_ptr<std::atomic<std::uint64_t>> removed_drops_ =
        std::make_shared<std::atomic<std::uint64_t>>(0);
};

}  // namespace telecap::agent
