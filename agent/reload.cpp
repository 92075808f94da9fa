#include "agent/reload.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>

#include "capture/event_json.hpp"
#include "control/request.hpp"

namespace telecap::agent {

namespace {

void append_names(std::string& out, const char* key, const std::vector<std::string>& names,
                  bool first = false) {
    out += first ? "\"" : ",\"";
    out += key;
    out += "\":";
    append_json_string_array(out, names);
}

}  // namespace

void resolve_catalog_paths(run_options& o) {
    for (auto& pool : o.pools)
        if (pool.catalog_path.empty()) pool.catalog_path = o.capture.catalog_path;
}

namespace {

// Calls f(key, a's value, b's value) for each setting a reload cannot change.
template <typename A, typename B, typename F>
void for_each_fixed_setting(A& a, B& b, F f) {
    f("prefix", a.capture.prefix, b.capture.prefix);
    f("max_line", a.capture.max_line, b.capture.max_line);
    f("node", a.capture.node, b.capture.node);
    f("passthrough", a.capture.passthrough, b.capture.passthrough);
    f("rejects", a.capture.rejects_path, b.capture.rejects_path);
    f("stats", a.capture.stats_path, b.capture.stats_path);
    f("unknown_events", a.capture.unknown_events, b.capture.unknown_events);
    f("queue", a.queue, b.queue);
    f("queue_bytes", a.queue_bytes, b.queue_bytes);
    f("line_budget", a.line_budget, b.line_budget);
    f("overflow", a.overflow, b.overflow);
    f("burst_hold", a.burst_hold, b.burst_hold);
    f("dispatch", a.dispatch, b.dispatch);
}

}  // namespace

std::vector<std::string> settings_not_reloaded(const run_options& a, const run_options& b) {
    std::vector<std::string> out;
    for_each_fixed_setting(a, b, [&](const char* key, const auto& x, const auto& y) {
        if (x != y) out.emplace_back(key);
    });
    return out;
}

reloader::reloader(std::function<run_options()> reread, run_options running, run_outputs& outputs,
                   dispatcher& events, metrics::registry& registry)
    : reread_(std::move(reread)),
      running_(std::move(running)),
      outputs_(outputs),
      events_(events),
      ok_(registry.get_counter("telecap_reloads_total", {{"result", "ok"}})),
      failed_(registry.get_counter("telecap_reloads_total", {{"result", "failed"}})) {}

std::string reloader::operator()(supervisor& sup) {
    const auto fail = [&](const std::string& why) {
        failed_.inc();
        spdlog::error("reload refused, nothing changed: {}", why);
        return control::error_reply("reload refused, nothing changed: " + why);
    };
    if (sup.stopping()) return fail("telecap is stopping");
    // Everything that can fail comes first: the config, the catalogs, the new outputs.
    run_options next;
    supervisor_reload r;
    run_outputs::change outs;
    std::map<std::string, std::shared_ptr<const catalog>> loaded;
    try {
        next = reread_();
        resolve_catalog_paths(next);
        capture_stdout_if_shared(next);
        for (const auto& pool : next.pools) {
            auto& cat = loaded[pool.catalog_path];
            if (!cat) {
                capture_options co = next.capture;
                co.catalog_path = pool.catalog_path;
                cat = std::make_shared<const catalog>(load_catalog(co));
            }
            r.catalogs.push_back(cat);
        }
        // Kept until exit, committed or not: a catalog freed by a later reload could give its
        // entries' addresses to another's, and caches keyed by an event's name_id (the taps')
        // trust that an id is never reused. A few catalogs per reload, bounded by reloads.
        static std::mutex kept_mu;
        static std::vector<std::shared_ptr<const catalog>> kept;
        {
            std::lock_guard lock(kept_mu);
            for (const auto& [path, cat] : loaded) kept.push_back(cat);
        }
        outs = outputs_.prepare(next);
    } catch (const grpc_needed& e) {
        // The bridge lives in telecap-grpc, which this process did not start as.
        return fail(std::string(e.what()) +
                    "; this telecap started without the gRPC bridge: restart it to add one");
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    r.pools = next.pools;
    r.controls = next.controls;
    r.grace = next.grace;
    r.stop_signal = next.stop_signal;
    r.label = next.label;
    reload_result pools;
    if (auto p = sup.reload(std::move(r), &pools)) return fail(*p);
    const auto added = std::move(outs.added_specs);  // commit() needs neither
    const auto removed = std::move(outs.removed_specs);
    const bool metrics = outs.metrics_changed;
    outputs_.commit(std::move(outs), events_);
    // Only a reload that took effect names its catalogs' events (the taps' wire names).
    if (on_catalog)
        for (const auto& [path, cat] : loaded) on_catalog(*cat);

    const auto kept = settings_not_reloaded(running_, next);
    for (const auto& key : kept)
        spdlog::warn("reload: \"{}\" changed: it takes effect when telecap is started again", key);
    // What runs now: the new config, but the settings a reload cannot change as they were.
    for_each_fixed_setting(next, running_,
                           [](const char*, auto& now, const auto& was) { now = was; });
    running_ = std::move(next);
    ok_.inc();

    std::string m = ",\"pools\":{";
    append_names(m, "added", pools.added, true);
    append_names(m, "removed", pools.removed);
    append_names(m, "changed", pools.changed);
    append_names(m, "resized", pools.resized);
    append_names(m, "unchanged", pools.unchanged);
    m += "},\"outputs\":{";
    append_names(m, "added", added, true);
    append_names(m, "removed", removed);
    m += "},\"metrics\":";
    m += metrics ? "\"reloaded\"" : "\"unchanged\"";
    append_names(m, "not_applied", kept);
    return control::ok_reply(m);
}

}  // namespace telecap::agent
