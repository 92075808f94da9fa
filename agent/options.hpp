#pragma once
// Options shared by the commands that capture (parse, lint, run), and the wiring of outputs.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "capture/bus.hpp"
#include "capture/catalog.hpp"
#include "capture/normalizer.hpp"
#include "capture/pipeline.hpp"
#include "control/worker_control_relay.hpp"
#include "io/rejects_writer.hpp"
#include "io/streams.hpp"
#include "metrics/metric_config.hpp"
#include "metrics/metric_store.hpp"
#include "metrics/registry.hpp"
#include "outputs/jsonl_handler.hpp"

namespace spdlog {
class logger;
}

namespace telecap {
class prometheus_handler;
}

namespace telecap::agent {

// A startup problem the user can fix: printed as "telecap: <what>", exit 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What a telecap built without the gRPC bridge throws for `-o grpc`, before any output is
// made: main_cli() then runs the same command line in telecap-grpc, the build's variant with
// the bridge linked in (docs/grpc.md, "Two executables"), or says this when there is none.
class grpc_needed : public usage_error {
public:
    using usage_error::usage_error;
};
// The variant of telecap with the gRPC bridge, found as telecap-guard is (spawn/guard.hpp).
inline constexpr const char* grpc_executable_name = "telecap-grpc";
inline constexpr const char* grpc_path_env = "TELECAP_GRPC_BIN";

struct capture_options {
    std::string catalog_path;  // empty: the built-in catalog
    std::string prefix{default_telemetry_prefix};
    std::size_t max_line = std::size_t{1} << 20;
    std::string node;  // empty: the hostname
    std::optional<std::string> worker_id;
    std::string pool = "default";
    std::optional<std::int64_t> pid;
    std::vector<std::string> outputs;  // empty: {"jsonl"}
    std::string passthrough = "stderr";
    std::string rejects_path;
    std::string stats_path;
    std::string metrics_path;  // --metrics: derived metrics; empty: the bundled default
    // --unknown-events reject|keep over the catalog's policies.unknown_event; empty: the
    // catalog's (reject for the built-in one, as the gRPC path drops them).
    std::string unknown_events;
};

std::string hostname();
catalog load_catalog(const capture_options& o);  // with --unknown-events; throws usage_error
pipeline_options make_pipeline_options(const capture_options& o);
worker_context make_context(const capture_options& o);

// What outputs are made from. Streams come from `streams`, so outputs that share one
// (stdout, a file) share its writer. `wait`: a congested stream makes the output wait
// (back-pressure) rather than drop. The metrics exporters (prometheus) read the derived
// metrics of one store, made on first need from `metrics_path` (or the bundled default) and
// recorded into by one deriver on the bus, and telecap's own series from `registry`, which
// must outlive the outputs.
// The store the metrics exporters read: a reload of the metrics file puts a new one in.
class store_slot {
public:
    explicit store_slot(std::shared_ptr<metrics::metric_store> s) : store_(std::move(s)) {}
    std::shared_ptr<metrics::metric_store> get() const {
        std::lock_guard lock(mu_);
        return store_;
    }
    void set(std::shared_ptr<metrics::metric_store> s) {
        std::lock_guard lock(mu_);
        store_ = std::move(s);
    }

private:
    mutable std::mutex mu_;
    std::shared_ptr<metrics::metric_store> store_;
};

// The network endpoints the outputs serve, as outputs come and go (a reload): ctl status
// names them (`-o prometheus:0` picks its port at start). Any thread.
class listener_book {
public:
    void add(std::string output, std::weak_ptr<const prometheus_handler> h) {
        std::lock_guard lock(mu_);
        std::erase_if(entries_, [](const auto& e) { return e.second.expired(); });
        entries_.emplace_back(std::move(output), std::move(h));
    }
    // The live ones: {output, url}.
    std::vector<std::pair<std::string, std::string>> live() const;

private:
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, std::weak_ptr<const prometheus_handler>>> entries_;
};

struct output_env {
    stream_set& streams;
    bool wait = false;
    // `run --overflow block`: the gRPC output asks the run loop to pause for a stream that is
    // behind and holds what the loop read meanwhile (grpc_output_options::block).
    bool block = false;
    // What a JSON-lines output gathers before handing it to its stream (jsonl_handler).
    std::size_t batch_bytes = jsonl_handler::default_batch_bytes;
    // Every catalog the events name lives until the command ends (parse loads one; a run keeps
    // each one a reload loads, agent/reload.cpp): an event's name_id alone tells its name, and
    // the JSON-lines outputs skip comparing names (event_json_writer::trust_name_ids).
    bool name_ids_unique = false;
    metrics::registry* registry = nullptr;
    std::string metrics_path;
    std::string catalog_path;  // the catalog the gRPC output maps event names back with
    std::shared_ptr<metrics::metric_store> store{};  // made by the first metrics exporter
    bool deriver_attached = false;
    std::shared_ptr<store_slot> slot{};                   // with the store: what exporters read
    metrics::registry::collector_id store_collector = 0;  // the store's own series
    std::shared_ptr<listener_book> listeners = std::make_shared<listener_book>();
    // Where `-o grpc?control=workers` sends its streams' controls (telecap run sets it;
    // control/worker_control_relay.hpp). Null: no workers to control (telecap parse).
    std::shared_ptr<control::worker_control_relay> worker_controls{};
};

// Creates each output named by a spec ("jsonl", "jsonl:PATH", "unix:PATH", "log", "null",
// "prometheus[:HOST:PORT]") and attaches it to the bus as "output.N:SPEC", then the metrics
// deriver (as "metrics") when an exporter needs it; throws usage_error for a bad spec, a file
// that cannot be opened (or is named twice, or is an input), a socket or port that cannot be
// listened on, or a bad metrics file. `attached`, when given, receives each output with its id.
using attached_outputs = std::vector<std::pair<std::string, std::shared_ptr<handler>>>;
void attach_outputs(const std::vector<std::string>& specs, handler_bus& bus, output_env& env,
                    attached_outputs* attached = nullptr);
// `pool`: the pool whose output it is (empty: a top-level one).
std::shared_ptr<handler> make_output(const std::string& spec, output_env& env,
                                     const std::string& use,
                                     const std::string& pool = {});  // throws usage_error
// Why `-o grpc` is refused by a telecap built without the gRPC bridge and without telecap-grpc
// beside it.
inline constexpr const char* grpc_not_built =
    "this telecap was built without gRPC (cmake -DTELECAP_GRPC=ON, with libgrpc++-dev)";
// True for `grpc`, `grpc:ADDR` and `grpc?OPTIONS`.
bool is_grpc_output(std::string_view spec);
// True for the outputs that export metrics rather than events (one per telecap, not per pool).
bool is_metrics_output(std::string_view spec);
// The store's metrics config: the file, or the bundled default. Throws usage_error.
metrics::metrics_config load_metrics(const std::string& path);

// The pass-through stream named by --passthrough ("stderr", "stdout", "none": null, or a file).
std::shared_ptr<stream_writer> open_passthrough(const std::string& spec, stream_set& streams);
// The --rejects file, or null when none is asked for.
std::unique_ptr<rejects_writer> open_rejects(const std::string& path, stream_set& streams);

// A command's streams: while it lives, spdlog's default logger ("telecap: level: message")
// writes through stderr's stream writer; at the end the previous logger is back and every
// stream is drained (until the deadline given to finish(), or 10 s) and closed.
class command_streams {
public:
    command_streams();
    ~command_streams();
    stream_set& get() noexcept { return streams_; }
    void finish(std::chrono::steady_clock::time_point deadline);

private:
    stream_set streams_;
    std::shared_ptr<spdlog::logger> previous_;
    std::shared_ptr<spdlog::logger> previous_lib_;
    bool finished_ = false;
};

// The streams' counters as a JSON object keyed by stream name.
std::string streams_json(const stream_set& streams);

// Writes --stats at exit; returns false (after saying why on stderr) if it cannot.
// `more`: further members, each `,"key":value`, appended inside the object.
bool write_stats_file(const std::string& path, const capture_stats& s,
                      std::string_view outputs = {}, std::string_view more = {});

// True when some event or line was lost: dropped events, handler failures, stream drops.
bool data_lost(const capture_stats& s, const handler_bus& bus, const stream_set& streams);

// The exit status when everything else went well but data was lost.
inline constexpr int exit_data_lost = 3;

}  // namespace telecap::agent
