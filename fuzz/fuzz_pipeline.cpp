// libFuzzer target: framing + recognition + decoding + normalization + the output contract.
// Checks the one invariant that matters most: nothing is lost. Every input byte leaves either
// as pass-through or as part of an accepted telemetry line; every event serializes to valid
// UTF-8 JSON, and the batch writer of the jsonl output (key fragments copied by keys_id, heads by
// name_id, both trusted as telecap's outputs trust them) writes the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "capture/catalog.hpp"
#include "capture/event_json.hpp"
#include "capture/parser.hpp"
#include "capture/pipeline.hpp"
#include "capture/utf8.hpp"

namespace {

telecap::event_json_writer& batch_writer() {
    static telecap::event_json_writer* w = [] {
        auto* writer = new telecap::event_json_writer;  // kept across inputs, as across lines
        writer->trust_name_ids();                       // the catalogs below live until exit
        writer->trust_keys_ids();
        return writer;
    }();
    return *w;
}

struct collect final : telecap::event_sink, telecap::passthrough_sink {
    std::string passthrough, json;
    void on_event(telecap::event& ev) override {
        json.clear();
        telecap::append_event_json(json, ev);
        if (!telecap::valid_utf8(json)) std::abort();
        telecap::event_json_writer& w = batch_writer();
        if (w.append(ev) != json) std::abort();
        w.clear();
    }
    void write(std::string_view bytes, bool, bool) override { passthrough.append(bytes); }
};

const telecap::catalog& strict() {
    static const telecap::catalog c = telecap::catalog::builtin();
    return c;
}
const telecap::catalog& lenient() {
    static const telecap::catalog c = [] {
        auto cat = telecap::catalog::builtin();
        cat.policies().unknown_event = telecap::unknown_event_policy::keep;
        cat.policies().unknown_measurement = telecap::unknown_measurement_policy::drop;
        cat.policies().unknown_metadata = telecap::unknown_metadata_policy::drop;
        return cat;
    }();
    return c;
}

// The parser's fast reader and RapidJSON must agree on every payload (capture/parser.hpp).
bool same_value(const telecap::raw_value& a, const telecap::raw_value& b) {
    return a.kind == b.kind && a.text == b.text;
}
bool same_members(const std::vector<telecap::raw_member>& a,
                  const std::vector<telecap::raw_member>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].key != b[i].key || !same_value(a[i].value, b[i].value)) return false;
    return true;
}
void check_fast_path(std::string_view payload) {
    static telecap::event_parser fast, full(telecap::event_parser::default_max_depth, false);
    static telecap::raw_event a, b;
    telecap::parse_error ea, eb;
    const bool oa = fast.parse(payload, a, ea);
    if (oa != full.parse(payload, b, eb)) std::abort();
    if (!oa) {
        if (ea.reason != eb.reason || ea.offset != eb.offset || ea.detail != eb.detail)
            std::abort();
        return;
    }
    if (a.has_event != b.has_event || a.event_is_array != b.event_is_array || a.event != b.event ||
        a.parts != b.parts || !same_members(a.measurements, b.measurements) ||
        !same_members(a.metadata, b.metadata) || a.has_timestamp != b.has_timestamp ||
        a.timestamp != b.timestamp || a.has_correlation_id != b.has_correlation_id ||
        a.correlation_id != b.correlation_id || a.control_seq != b.control_seq)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte picks the chunk size and the catalog; the second the max line length.
    const std::size_t chunk = 1 + (data[0] & 0x3F);
    const bool keep = data[0] & 0x40;
    telecap::pipeline_options opts;
    opts.max_line = 64 + data[1];
    const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

    check_fast_path(input);

    collect sink;
    telecap::capture_stats stats;
    telecap::worker_context ctx{"node", "w-0", "pool", 7};
    telecap::capture_pipeline p(keep ? lenient() : strict(), ctx, opts, &sink, &sink, nullptr,
                                stats);
    for (std::size_t off = 0; off < input.size(); off += chunk) p.feed(input.substr(off, chunk));
    p.finish();

    if (stats.lines != stats.events + stats.passthrough_lines) std::abort();
    if (stats.events == 0 && sink.passthrough != input) std::abort();
    if (sink.passthrough.size() > input.size()) std::abort();
    return 0;
}
