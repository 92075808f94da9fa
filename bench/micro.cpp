// Google Benchmark micro-benchmarks of the capture stages on the standard line shapes.
#include <benchmark/benchmark.h>

#include <string>

#include "capture/catalog.hpp"
#include "capture/event_json.hpp"
#include "capture/line_framer.hpp"
#include "capture/normalizer.hpp"
#include "capture/parser.hpp"
#include "control/tap.hpp"

namespace {

const std::string telemetry_payload =
    R"({"event": "tool.execution.stop", "measurements": {"duration": 699642631, "count": 1}, )"
    R"("metadata": {"tool": "rank", "session_id": "s9b81"}, "timestamp_ns": )"
    R"(1700000000000001000, "correlation_id": "e4b06ce6"})";

struct count_sink : telecap::line_sink {
    std::size_t lines = 0;
    void on_line(std::string_view, std::string_view) override { ++lines; }
    void on_long_begin(std::string_view) override {}
    void on_long_data(std::string_view) override {}
    void on_long_end(std::string_view) override {}
};

void bm_framer(benchmark::State& state) {
    std::string input;
    while (input.size() < (1 << 20)) input += "TELEMETRY:" + telemetry_payload + "\n";
    telecap::line_framer framer(1 << 20);
    count_sink sink;
    for (auto _ : state) {
        for (std::size_t off = 0; off < input.size(); off += 65536)
            framer.feed(std::string_view(input).substr(off, 65536), sink);
        benchmark::DoNotOptimize(sink.lines);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
}
BENCHMARK(bm_framer);

void bm_parse(benchmark::State& state) {
    telecap::event_parser parser;
    telecap::raw_event raw;
    telecap::parse_error err;
    for (auto _ : state) benchmark::DoNotOptimize(parser.parse(telemetry_payload, raw, err));
    state.SetBytesProcessed(
        static_cast<std::int64_t>(state.iterations() * telemetry_payload.size()));
}
BENCHMARK(bm_parse);

// The stages after framing, set up once per benchmark.
struct stages {
    telecap::catalog cat = telecap::catalog::builtin();
    telecap::normalizer norm{cat};
    telecap::worker_context ctx{"node", "w-0", "default", 42};
    telecap::event_parser parser;
    telecap::raw_event raw;
    telecap::parse_error err;
    telecap::event ev;

    bool run() {
        parser.parse(telemetry_payload, raw, err);
        return norm.normalize(raw, ctx, 0, ev, err);
    }
};

void bm_parse_normalize(benchmark::State& state) {
    stages st;
    for (auto _ : state) benchmark::DoNotOptimize(st.run());
}
BENCHMARK(bm_parse_normalize);

void bm_event_json(benchmark::State& state) {
    stages st;
    st.run();
    std::string out;
    for (auto _ : state) {
        out.clear();
        telecap::append_event_json(out, st.ev);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(bm_event_json);

// The writer of the jsonl output: each name's head comes from its cache, found by name_id.
void bm_event_json_writer(benchmark::State& state) {
    stages st;
    st.run();
    telecap::event_json_writer w;
    std::size_t n = 0;
    for (auto _ : state) {
        w.append(st.ev);
        if (++n % 256 == 0) w.clear();
        benchmark::DoNotOptimize(w.size());
    }
}
BENCHMARK(bm_event_json_writer);

// `ctl tap` on the bus (control/tap.hpp): what a tap costs per event, apart from the run's
// noise. A tap whose pattern matches nothing: the name's kept glob result and nothing else.
void bm_tap_no_match(benchmark::State& state) {
    stages st;
    st.run();
    telecap::control::tap_request r;
    r.patterns = {"nothing.*"};
    auto buf = std::make_shared<telecap::control::tap_buffer>(1 << 20, r.format);
    telecap::control::tap_handler h(
        r, buf, [](const telecap::event& e) { return e.dotted_name(); }, nullptr);
    for (auto _ : state) h.handle(st.ev);
    benchmark::DoNotOptimize(h.matched());
}
BENCHMARK(bm_tap_no_match);

// A tap of every event, its buffer drained as a reading client's would be (every 256 KiB
// here; each flush in a run); with `output`, beside the jsonl output, which renders and
// publishes each line in the bus's dispatch scope (shared_event_json) for the tap to copy.
// Alone, the tap filters and renders; beside the output, its cost is the difference between
// bm_jsonl_output_and_tap and bm_jsonl_output_alone.
void bus_output_and_tap(benchmark::State& state, bool output, bool tap) {
    stages st;
    st.run();
    telecap::control::tap_request r;
    auto buf = std::make_shared<telecap::control::tap_buffer>(1 << 20, r.format);
    telecap::control::tap_handler h(r, buf, nullptr, nullptr);
    telecap::event_json_writer jsonl;
    std::string taken;
    std::size_t n = 0;
    for (auto _ : state) {
        const telecap::shared_event_json::dispatch_scope scope;
        if (output) {
            if (n % 256 == 0) jsonl.clear();
            jsonl.append_shared(st.ev);
        }
        if (tap) h.handle(st.ev);
        if (++n % 1024 == 0) {
            taken.clear();
            buf->take(taken);
        }
    }
    benchmark::DoNotOptimize(buf->dropped());
}
void bm_tap_every_event(benchmark::State& state) { bus_output_and_tap(state, false, true); }
BENCHMARK(bm_tap_every_event);
void bm_jsonl_output_alone(benchmark::State& state) { bus_output_and_tap(state, true, false); }
void bm_jsonl_output_and_tap(benchmark::State& state) { bus_output_and_tap(state, true, true); }
BENCHMARK(bm_jsonl_output_alone);
BENCHMARK(bm_jsonl_output_and_tap);

}  // namespace

BENCHMARK_MAIN();
