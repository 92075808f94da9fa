#include "agent/options.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "agent/validate.hpp"
#include "capture/event_json.hpp"
#include "core/log.hpp"
#include "export/otlp_env.hpp"
#include "io/log_sink.hpp"
#include "metrics/deriver.hpp"
#include "metrics/family.hpp"
#include "outputs/http_handler.hpp"
#include "outputs/jsonl_handler.hpp"
#include "outputs/log_handler.hpp"
#include "outputs/otlp_handler.hpp"
#include "outputs/prometheus_handler.hpp"
#include "outputs/unix_socket_handler.hpp"
#include "spdlog/spdlog.h"
#ifdef TELECAP_HAVE_GRPC
#include "bridge/grpc_output.hpp"
#include "control/worker_control_relay.hpp"
#endif

namespace telecap::agent {

std::string hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

catalog load_catalog(const capture_options& o) {
    try {
        auto cat = o.catalog_path.empty() ? catalog::builtin() : catalog::from_file(o.catalog_path);
        if (o.unknown_events == "keep")
            cat.policies().unknown_event = unknown_event_policy::keep;
        else if (o.unknown_events == "reject")
            cat.policies().unknown_event = unknown_event_policy::reject;
        return cat;
    } catch (const catalog_error& e) {
        throw usage_error(std::string("bad catalog: ") + e.what());
    }
}

pipeline_options make_pipeline_options(const capture_options& o) {
    pipeline_options p;
    p.prefix = o.prefix;
    p.max_line = o.max_line;
    return p;
}

worker_context make_context(const capture_options& o) {
    worker_context ctx;
    ctx.node = o.node.empty() ? hostname() : o.node;
    ctx.worker_id = o.worker_id;
    ctx.pool_name = o.pool;
    ctx.pid = o.pid;
    return ctx;
}

bool is_metrics_output(std::string_view spec) {
    const auto kind = spec.substr(0, spec.find(':'));
    return kind == "prometheus" || kind == "otlp";
}

bool is_grpc_output(std::string_view spec) {
    return spec == "grpc" || spec.starts_with("grpc:") || spec.starts_with("grpc?");
}

metrics::metrics_config load_metrics(const std::string& path) {
    try {
        return path.empty() ? metrics::default_metrics_config()
                            : metrics::load_metrics_config(path);
    } catch (const metrics::metrics_config_error& e) {
        throw usage_error(std::string("bad metrics file: ") + e.what());
    }
}

namespace {

// The exporters' view: the derived families and telecap's own, one sorted list.
metrics::family_source families_of(output_env& env) {
    if (!env.store) {
        env.store = std::make_shared<metrics::metric_store>(load_metrics(env.metrics_path));
        env.slot = std::make_shared<store_slot>(env.store);
        if (env.registry)
            env.store_collector = metrics::add_store_collector(*env.registry, env.store);
    }
    return [slot = env.slot, registry = env.registry] {
        auto out = slot->get()->collect();
        if (registry) {
            auto own = metrics::families_from_samples(registry->snapshot());
            out.insert(out.end(), std::make_move_iterator(own.begin()),
                       std::make_move_iterator(own.end()));
            std::stable_sort(out.begin(), out.end(),
                             [](const auto& a, const auto& b) { return a.name < b.name; });
        }
        return out;
    };
}

// The OTEL_* variables, with the metrics file's service_name as the default service.name
// (the standard variables win: OTEL_SERVICE_NAME, then service.name in the resource ones).
exporting::env_lookup with_service_name(const output_env& env) {
    std::string name =
        env.store ? env.store->service_name() : load_metrics(env.metrics_path).service_name;
    return [real = exporting::process_env(), name](const std::string& key) {
        auto v = real(key);
        if (v || key != "OTEL_SERVICE_NAME") return v;
        // Read as read_otlp_settings reads it (spaces around '=', percent-encoded keys): a
        // substring search missed "service.name = x" and matched "my.service.name=x".
        if (const auto attrs = real("OTEL_RESOURCE_ATTRIBUTES")) {
            std::vector<std::string> ignored;
            for (const auto& [k, unused] :
                 exporting::parse_key_values(*attrs, "OTEL_RESOURCE_ATTRIBUTES", ignored))
                if (k == "service.name") return v;
        }
        return std::optional<std::string>(name);
    };
}

}  // namespace

#ifdef TELECAP_HAVE_GRPC
namespace {

// One `-o grpc?control=workers` output's way to the workers: its stream ids made unique
// among the outputs, and a pool's output kept to its pool.
class grpc_worker_controls final : public bridge::worker_controls {
public:
    grpc_worker_controls(std::shared_ptr<control::worker_control_relay> relay, std::string pool)
        : relay_(std::move(relay)), owner_(relay_->next_owner() << 32), pool_(std::move(pool)) {}

    void apply(std::uint64_t stream, const bridge::selection& sel, control::controls update,
               reply done) override {
        std::string pool = sel.pool;
        if (!pool_.empty()) {
            if (!pool.empty() && pool != pool_)
                return done("this output carries the events of pool \"" + pool_ +
                            "\" only, not of pool \"" + pool + "\"");
            pool = pool_;
        }
        relay_->apply(owner_ | stream, sel.worker, std::move(pool), std::move(update),
                      std::move(done));
    }
    void release(std::uint64_t stream) override { relay_->release(owner_ | stream); }

private:
    std::shared_ptr<control::worker_control_relay> relay_;
    std::uint64_t owner_;
    std::string pool_;
};

}  // namespace
#endif

std::shared_ptr<handler> make_output(const std::string& spec, output_env& env,
                                     const std::string& use,
                                     [[maybe_unused]] const std::string& pool) {
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    auto& streams = env.streams;
    try {
        if (kind == "jsonl") {
            auto h = std::make_shared<jsonl_handler>(
                arg.empty() || arg == "-" ? streams.standard(1) : streams.file(arg, use), env.wait,
                env.batch_bytes);
            if (env.name_ids_unique) h->trust_name_ids();
            h->trust_keys_ids();  // the bus carries the normalizers' events, keys unedited
            return h;
        }
    } catch (const std::exception& e) {
        throw usage_error(e.what());
    }
    if (kind == "log" && arg.empty()) {
        auto logger = spdlog::get("telecap.events");
        if (!logger) {
            logger = std::make_shared<spdlog::logger>(
                "telecap.events", std::make_shared<stream_log_sink>(streams.standard(2)));
            spdlog::register_logger(logger);
        }
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
        logger->set_level(spdlog::level::info);  // the debug view is on whatever --log-level
        return std::make_shared<log_handler>(std::move(logger), streams.standard(2));
    }
    if (kind == "null" && arg.empty()) return std::make_shared<null_handler>();
    if (kind == "unix") {
        unix_output_spec u;
        if (auto p = parse_unix_output(arg, u)) throw usage_error("output \"" + spec + "\": " + *p);
        try {
            return std::make_shared<unix_socket_handler>(u.path, u.options);
        } catch (const std::runtime_error& e) {
            throw usage_error(e.what());
        }
    }
    if (kind == "grpc" || spec.starts_with("grpc?")) {
#ifdef TELECAP_HAVE_GRPC
        bridge::grpc_output_options g;
        // "grpc?queue=N": options without an address.
        if (auto p = bridge::parse_grpc_output(kind == "grpc" ? arg : spec.substr(4), g))
            throw usage_error("output \"" + spec + "\": " + *p);
        if (g.control_workers) {
            if (!env.worker_controls)
                throw usage_error("output \"" + spec +
                                  "\": control=workers acts on the workers of telecap run; "
                                  "this command has none");
            g.workers = std::make_shared<grpc_worker_controls>(env.worker_controls, pool);
        }
        g.block = env.block;
        capture_options co;
        co.catalog_path = env.catalog_path;
        try {
            return std::make_shared<bridge::grpc_output>(std::move(g), load_catalog(co));
        } catch (const std::runtime_error& e) {
            throw usage_error(e.what());
        }
#else
        throw grpc_needed("output \"" + spec + "\": " + grpc_not_built);
#endif
    }
    if (kind == "prometheus") {
        prometheus_address at;
        if (auto p = parse_prometheus_address(arg, at))
            throw usage_error("output \"" + spec + "\": " + *p);
        auto source = families_of(env);
        try {
            auto h = std::make_shared<prometheus_handler>(at, std::move(source));
            // Port 0 asked for any free port: this line (and ctl status) is the only place
            // that says which, so it is shown at the default level (warn).
            spdlog::log(at.port == 0 ? spdlog::level::warn : spdlog::level::info,
                        "output prometheus: serving /metrics on http://{}/metrics", h->address());
            env.listeners->add("prometheus", h);
            return h;
        } catch (const std::runtime_error& e) {
            throw usage_error(e.what());
        }
    }
    // The network outputs: a bad URL or OTEL_* setting is a startup error.
    try {
        if (kind == "otlp") {
            auto source = families_of(env);
            return make_otlp_metrics_output(arg, std::move(source), with_service_name(env));
        }
        if (kind == "otlp-logs") return make_otlp_logs_output(arg, with_service_name(env));
        if (kind == "http") {
            if (arg.empty()) throw usage_error("output \"http\" needs a URL: http:URL");
            return make_http_output(arg);
        }
    } catch (const usage_error&) {
        throw;
    } catch (const std::exception& e) {
        throw usage_error("output \"" + net::redact_url(spec) + "\": " + e.what());
    }
    throw usage_error("unknown output \"" + net::redact_url(spec) +
                      "\": use jsonl, jsonl:PATH, unix:PATH, log, null, prometheus[:HOST:PORT], "
                      "otlp[:URL], otlp-logs[:URL], http:URL or grpc[:ADDR]");
}

void attach_outputs(const std::vector<std::string>& specs, handler_bus& bus, output_env& env,
                    attached_outputs* attached) {
    const std::vector<std::string> defaults{"jsonl"};
    const auto& list = specs.empty() ? defaults : specs;
#ifndef TELECAP_HAVE_GRPC
    // Before any output is made (a port bound, a file opened): the command runs again in
    // telecap-grpc, which must find everything as it was.
    for (const auto& spec : list)
        if (is_grpc_output(spec)) throw grpc_needed("output \"" + spec + "\": " + grpc_not_built);
#endif
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string id = "output." + std::to_string(i) + ":" + list[i];
        auto h = make_output(list[i], env, "output " + list[i]);
        if (attached) attached->emplace_back(id, h);
        bus.attach(id, {}, std::move(h));
    }
    if (env.store && !env.deriver_attached) {
        bus.attach("metrics", {}, std::make_shared<metrics::deriver>(env.store));
        env.deriver_attached = true;
    }
}

std::vector<std::pair<std::string, std::string>> listener_book::live() const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [output, weak] : entries_)
        if (const auto h = weak.lock())
            out.emplace_back(output, "http://" + h->address() + "/metrics");
    return out;
}

std::shared_ptr<stream_writer> open_passthrough(const std::string& spec, stream_set& streams) {
    if (spec == "stderr") return streams.standard(2);
    if (spec == "stdout") return streams.standard(1);
    if (spec == "none") return nullptr;
    try {
        return streams.file(spec, "--passthrough");
    } catch (const std::exception& e) {
        throw usage_error(std::string("pass-through: ") + e.what());
    }
}

std::unique_ptr<rejects_writer> open_rejects(const std::string& path, stream_set& streams) {
    if (path.empty()) return nullptr;
    try {
        return std::make_unique<rejects_writer>(streams.file(path, "--rejects"));
    } catch (const std::exception& e) {
        throw usage_error(std::string("rejects: ") + e.what());
    }
}

command_streams::command_streams()
    : previous_(spdlog::default_logger()), previous_lib_(telecap::logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "telecap", std::make_shared<stream_log_sink>(streams_.standard(2)));
    logger->set_pattern("telecap: %l: %v");
    logger->set_level(previous_ ? previous_->level() : spdlog::level::warn);
    spdlog::set_default_logger(logger);
    telecap::set_logger(logger);
}

command_streams::~command_streams() {
    finish(std::chrono::steady_clock::now() + std::chrono::seconds(10));
}

void command_streams::finish(std::chrono::steady_clock::time_point deadline) {
    if (finished_) return;
    finished_ = true;
    streams_.close_all(deadline);
    if (auto events = spdlog::get("telecap.events")) spdlog::drop("telecap.events");
    if (previous_) spdlog::set_default_logger(previous_);
    telecap::set_logger(previous_lib_);
}

std::string streams_json(const stream_set& streams) {
    std::string out = "{";
    for (const auto& w : streams.all()) {
        if (out.size() > 1) out += ',';
        append_json_string(out, w->name());
        const auto& c = w->counters();
        out += ":{\"written_lines\":" + std::to_string(c.written_lines.load()) +
               ",\"written_bytes\":" + std::to_string(c.written_bytes.load()) +
               ",\"dropped_lines\":" + std::to_string(c.dropped_lines.load()) +
               ",\"dropped_bytes\":" + std::to_string(c.dropped_bytes.load()) +
               ",\"write_errors\":" + std::to_string(c.write_errors.load()) +
               ",\"reopens\":" + std::to_string(c.reopens.load()) + "}";
    }
    return out + "}";
}

bool write_stats_file(const std::string& path, const capture_stats& s, std::string_view outputs,
                      std::string_view more) {
    std::string text = stats_to_json(s, outputs);
    if (!more.empty() && text.size() >= 2) text.insert(text.size() - 2, more);  // before "}\n"
    // A regular file is written whole, then renamed over the old one: a reader never sees
    // half of it. Anything else (/dev/stderr, a FIFO) is written in place.
    struct stat st {};
    const bool regular = ::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode);
    const std::string target = regular ? path + ".tmp" : path;
    unique_fd fd(
        ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (regular ? O_TRUNC : 0), 0644));
    std::string_view rest = text;
    while (fd && !rest.empty()) {
        const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    const int err = !fd ? errno : rest.empty() ? 0 : errno ? errno : EIO;
    fd.reset();
    if (err == 0 && (!regular || ::rename(target.c_str(), path.c_str()) == 0)) return true;
    if (regular) ::unlink(target.c_str());
    spdlog::error("cannot write stats to {}: {}", path, std::strerror(err ? err : errno));
    return false;
}

bool data_lost(const capture_stats& s, const handler_bus& bus, const stream_set& streams) {
    for (auto d : s.dropped)
        if (d > 0) return true;
    return bus.failures() > 0 || bus.items_lost() > 0 || streams.lost();
}

}  // namespace telecap::agent
