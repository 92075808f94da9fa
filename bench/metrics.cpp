// The metrics exporters' costs: recording an event into the default metrics, and a scrape of
// 20,000 series (the store's copy, the text rendering, and a whole HTTP GET /metrics).
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <malloc.h>

#include <fstream>
#include <string>

#include "metrics/metric_config.hpp"
#include "metrics/metric_store.hpp"
#include "metrics/prometheus_text.hpp"
#include "outputs/prometheus_handler.hpp"

namespace {

using namespace telecap;

event call_stop(int i) {
    event ev;
    ev.name = {"snakepit", "python", "call", "stop"};
    ev.measurements = {{"duration", std::int64_t{1000 + i % 1000000}}, {"count", std::int64_t{1}}};
    ev.metadata = {{"tool", "search"},
                   {"node", "host1"},
                   {"worker_id", "default-0"},
                   {"pool_name", "default"},
                   {"python_pid", std::int64_t{4242}},
                   {"correlation_id", nullptr},
                   {"timestamp_ns", std::int64_t{1700000000000000000}}};
    return ev;
}

void bm_record_default(benchmark::State& state) {
    metrics::metric_store store(metrics::default_metrics_config());
    const event ev = call_stop(1);
    for (auto _ : state) store.record(ev);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_record_default);

// As the normalizer's events arrive: with a name_id (the catalog entry), and a tool that
// changes from event to event (tool.execution.stop: the tool histogram's label).
void bm_record_default_named(benchmark::State& state) {
    metrics::metric_store store(metrics::default_metrics_config());
    static const int catalog_entry = 0;
    event ev = call_stop(1);
    ev.name_id = &catalog_entry;
    for (auto _ : state) store.record(ev);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_record_default_named);

void bm_record_tool_stop_changing_tool(benchmark::State& state) {
    metrics::metric_store store(metrics::default_metrics_config());
    static const int catalog_entry = 0;
    event ev = call_stop(1);
    ev.name = {"snakepit", "python", "tool", "execution", "stop"};
    ev.name_id = &catalog_entry;
    const char* tools[] = {"search", "embed", "rank", "parse", "embed"};
    std::size_t i = 0;
    for (auto _ : state) {
        ev.metadata[0].second = std::string(tools[i++ % 5]);
        store.record(ev);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(bm_record_tool_stop_changing_tool);

// A counter with `n` series (one label, n values), as a cardinality-capped metric at its cap.
std::unique_ptr<metrics::metric_store> store_with(int n) {
    auto cfg = metrics::parse_metrics_config(
        "counters:\n  - name: requests\n    event: x\n    labels: [session_id, pool_name]\n"
        "    max_series: " +
            std::to_string(n) + "\n",
        "bench");
    auto store = std::make_unique<metrics::metric_store>(cfg);
    event ev;
    ev.name = {"x"};
    for (int i = 0; i < n; ++i) {
        ev.metadata = {{"session_id", "session-" + std::to_string(i)}, {"pool_name", "default"}};
        store->record(ev);
    }
    return store;
}

void bm_collect_20k(benchmark::State& state) {
    const auto store = store_with(20000);
    for (auto _ : state) benchmark::DoNotOptimize(store->collect());
}
BENCHMARK(bm_collect_20k)->Unit(benchmark::kMillisecond);

void bm_render_20k(benchmark::State& state) {
    const auto store = store_with(20000);
    std::size_t bytes = 0;
    for (auto _ : state) {
        std::string out;
        metrics::render(out, store->collect(), metrics::exposition::text_004);
        bytes = out.size();
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(bm_render_20k)->Unit(benchmark::kMillisecond);

// GET /metrics over loopback: the scrape as Prometheus sees it.
void bm_http_scrape_20k(benchmark::State& state) {
    std::shared_ptr<metrics::metric_store> store = store_with(20000);
    prometheus_address at;
    at.port = 0;
    prometheus_handler h(at, [store] { return store->collect(); });
    httplib::Client c("127.0.0.1", h.port());
    c.set_keep_alive(true);
    for (auto _ : state) {
        auto r = c.Get("/metrics");
        if (!r || r->status != 200) state.SkipWithError("scrape failed");
    }
}
BENCHMARK(bm_http_scrape_20k)->Unit(benchmark::kMillisecond);

// Heap the store holds per series (malloc's count of bytes in use, before and after).
void bm_memory_per_series(benchmark::State& state) {
    for (auto _ : state) {
        const auto m0 = ::mallinfo2();
        const auto before = m0.uordblks + m0.hblkhd;  // small blocks and mmapped ones
        const auto store = store_with(20000);
        const auto m1 = ::mallinfo2();
        const auto after = m1.uordblks + m1.hblkhd;
        state.counters["bytes_per_series"] = static_cast<double>(after - before) / 20000;
    }
}
BENCHMARK(bm_memory_per_series)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
