#include "agent/run_outputs.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include "agent/output_series.hpp"
#include "agent/pool_filter.hpp"
#include "metrics/deriver.hpp"

namespace telecap::agent {

namespace {

// How long a removed output may take to send what it holds, on the dispatch thread.
constexpr std::chrono::seconds removed_output_grace{2};

// The metrics file's text ("" for the bundled default, or a file that cannot be read: then
// load_metrics says why).
std::string metrics_text(const std::string& path) {
    if (path.empty()) return {};
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

run_outputs::run_outputs(handler_bus& bus, output_env& env, metrics::registry& registry)
    : bus_(bus), env_(env), registry_(registry) {}

run_outputs::~run_outputs() {
    if (series_) registry_.remove_collector(series_);
}

std::vector<run_outputs::wanted> run_outputs::wanted_outputs(const run_options& o) {
    std::vector<wanted> out;
    std::map<std::string, int> seen;
    const auto add = [&](const std::string& pool, const std::string& spec) {
        const std::string base = pool + "|" + spec;
        out.push_back({base + "#" + std::to_string(seen[base]++), spec, pool});
    };
    const std::vector<std::string> defaults{"jsonl"};
    for (const auto& spec : o.capture.outputs.empty() ? defaults : o.capture.outputs) add("", spec);
    for (const auto& pool : o.pools)
        for (const auto& spec : pool.outputs) add(pool.name, spec);
    return out;
}

std::string run_outputs::new_id(const wanted& w) {
    std::set<std::string> used;
    for (const auto& out : outputs_) used.insert(out.id);
    for (;;) {
        const std::string n = std::to_string(next_index_++);
        std::string id = w.pool.empty() ? "output." + n + ":" + w.spec
                                        : "pool." + w.pool + ".output." + n + ":" + w.spec;
        if (!used.count(id)) return id;
    }
}

std::pair<std::shared_ptr<handler>, std::shared_ptr<handler>> run_outputs::make(
    const wanted& w, const std::string& id) {
    auto h = make_output(w.spec, env_, w.pool.empty() ? "output " + w.spec : id, w.pool);
    if (w.pool.empty()) return {h, h};
    return {h, std::make_shared<pool_filter>(w.pool, h)};
}

void run_outputs::attach(const run_options& o) {
    metrics_path_ = o.capture.metrics_path;
    metrics_text_ = metrics_text(metrics_path_);
    // The ids of the first set are the ones --stats has always used: the index in its list.
    int top = 0;
    std::map<std::string, int> per_pool;
    for (const auto& w : wanted_outputs(o)) {
        const std::string id =
            w.pool.empty()
                ? "output." + std::to_string(top++) + ":" + w.spec
                : "pool." + w.pool + ".output." + std::to_string(per_pool[w.pool]++) + ":" + w.spec;
        auto [inner, attached] = make(w, id);
        outputs_.push_back({w.key, w.label(), id, inner});
        bus_.attach(id, {}, std::move(attached));
    }
    next_index_ = top;
    if (env_.store && !env_.deriver_attached) {
        bus_.attach("metrics", {}, std::make_shared<metrics::deriver>(env_.store));
        env_.deriver_attached = true;
    }
    publish_series();
}

void run_outputs::wait_for_removed() {
    if (!leaving_.valid()) return;
    // Bounded: a removed output may take removed_output_grace to send what it holds, and the
    // dispatcher finishes the batches it has taken first.
    const auto limit = removed_output_grace + std::chrono::seconds(2);
    if (leaving_.wait_for(limit) != std::future_status::ready)
        throw usage_error(
            "the outputs removed by the previous reload are still sending what they hold "
            "(for more than " +
            std::to_string(limit.count()) + " s): reload again once they are done");
    leaving_ = {};
}

run_outputs::change run_outputs::prepare(const run_options& o) {
    // A reload that comes right after one that removed outputs: those may still hold a file,
    // a socket or a port this one asks for again (re-adding an output removed a moment ago).
    wait_for_removed();
    change c;
    c.metrics_path = o.capture.metrics_path;
    c.metrics_text = metrics_text(c.metrics_path);
    c.metrics_changed = c.metrics_path != metrics_path_ || c.metrics_text != metrics_text_;
    const bool had_store = env_.store != nullptr;
    if (c.metrics_changed) {
        auto config = load_metrics(c.metrics_path);  // a bad file: refused, as at startup
        if (had_store) c.store = std::make_shared<metrics::metric_store>(std::move(config));
    }
    // A first metrics exporter makes its store from the new file.
    if (!had_store) env_.metrics_path = c.metrics_path;
    try {
        add_outputs(o, c);
    } catch (...) {
        if (!had_store && env_.store) {  // made for an output that is let go
            if (env_.store_collector) registry_.remove_collector(env_.store_collector);
            env_.store_collector = 0;
            env_.store.reset();
            env_.slot.reset();
        }
        if (!had_store) env_.metrics_path = metrics_path_;
        throw;
    }
    return c;
}

void run_outputs::add_outputs(const run_options& o, change& c) {
    const auto want = wanted_outputs(o);
    const auto find = [&](const std::string& key) {
        return std::find_if(outputs_.begin(), outputs_.end(),
                            [&](const output& out) { return out.key == key; });
    };
    for (const auto& w : want) {
        if (const auto it = find(w.key); it != outputs_.end()) {
            c.next.push_back(*it);
            continue;
        }
        const std::string id = new_id(w);
        auto [inner, attached] = make(w, id);  // throws: c and what it holds go
        c.add.emplace_back(id, attached);
        c.next.push_back({w.key, w.label(), id, inner});
        c.added_specs.push_back(w.label());
    }
    for (const auto& out : outputs_)  // in the order they were attached
        if (std::none_of(want.begin(), want.end(),
                         [&](const wanted& w) { return w.key == out.key; })) {
            c.remove.push_back(out);
            c.removed_specs.push_back(out.label);
        }
}

void run_outputs::commit(change c, dispatcher& d) {
    if (c.store) {
        if (env_.store_collector) registry_.remove_collector(env_.store_collector);
        env_.store = c.store;
        env_.store_collector = metrics::add_store_collector(registry_, env_.store);
    }
    if (c.metrics_changed) {
        metrics_path_ = c.metrics_path;
        metrics_text_ = std::move(c.metrics_text);
    }
    // The deriver is new with a new store, or with the first exporter.
    const bool deriver = env_.store && (!env_.deriver_attached || c.store);
    const bool replace = env_.deriver_attached && deriver;
    env_.deriver_attached = env_.deriver_attached || deriver;
    auto done = std::make_shared<std::promise<void>>();
    leaving_ = done->get_future().share();
    d.post([this, add = c.add, gone = c.remove, deriver, replace, store = env_.store,
            slot = env_.slot, drops = removed_drops_, done]() mutable {
        for (const auto& out : gone) bus_.detach(out.id);
        for (const auto& [id, h] : add)
            if (auto ec = bus_.attach(id, {}, h))
                spdlog::error("reload: cannot attach output {}: {}", id, ec.message());
        if (replace) bus_.detach("metrics");
        if (deriver) {
            bus_.attach("metrics", {}, std::make_shared<metrics::deriver>(store));
            slot->set(store);  // the exporters read the new store from the same batch on
        }
        // What a removed output still holds goes out now, within a bound: first what it
        // batches itself (a jsonl output hands its batch to the stream only on flush), then
        // what it sends on its own (finish). Its stream writer stays in the stream set and
        // is drained at exit; anything it cannot deliver is counted as dropped.
        for (const auto& out : gone) {
            try {
                out.inner->flush();
                out.inner->finish(std::chrono::steady_clock::now() + removed_output_grace);
            } catch (const std::exception& e) {
                spdlog::warn("reload: the removed output {} failed at its end: {}", out.label,
                             e.what());
            }
            drops->fetch_add(out.inner->events_dropped());
        }
        // Let go of them now, not when the dispatcher clears its list: a later reload may take
        // their files, sockets or ports again as soon as `done` says so.
        gone.clear();
        done->set_value();
    });
    outputs_ = std::move(c.next);
    publish_series();
}

std::vector<control::output_status> run_outputs::status() const {
    std::vector<control::output_status> out;
    out.reserve(outputs_.size());
    for (const auto& o : outputs_)
        out.push_back({o.id, o.inner->events_handed(), o.inner->events_dropped(), o.inner->errors(),
                       o.inner->last_error()});
    return out;
}

void run_outputs::publish_series() {
    if (series_) registry_.remove_collector(series_);
    attached_outputs list;
    for (const auto& out : outputs_) list.emplace_back(out.id, out.inner);
    series_ = add_output_series(registry_, list);
}

namespace {

// PATH is the file or pipe telecap's stdout is.
bool is_stdout(const std::string& path) {
    struct stat out {
    }, st{};
    return ::fstat(1, &out) == 0 && ::stat(path.c_str(), &st) == 0 && out.st_dev == st.st_dev &&
           out.st_ino == st.st_ino;
}

bool output_to_stdout(const std::string& spec) {
    if (spec == "jsonl" || spec == "jsonl:-") return true;
    return spec.starts_with("jsonl:") && is_stdout(spec.substr(6));
}

}  // namespace

bool capture_stdout_if_shared(run_options& o) {
    bool shared = o.capture.passthrough == "stdout" ||
                  (o.capture.passthrough != "stderr" && o.capture.passthrough != "none" &&
                   is_stdout(o.capture.passthrough)) ||
                  (!o.capture.rejects_path.empty() && is_stdout(o.capture.rejects_path));
    if (o.capture.outputs.empty()) shared = true;  // the default output: jsonl on stdout
    for (const auto& spec : o.capture.outputs) shared = shared || output_to_stdout(spec);
    for (const auto& pool : o.pools)
        for (const auto& spec : pool.outputs) shared = shared || output_to_stdout(spec);
    if (shared)
        for (auto& pool : o.pools) pool.capture_stdout = true;
    return shared;
}

}  // namespace telecap::agent
