// Writes OTLP/JSON bodies as telecap encodes them, one file each, for tests/otlp/check_otlp.js:
// every metric type, hostile and non-UTF-8 strings, extreme integers, non-finite doubles, null
// metadata, trace ids. Usage: otlp_dump_bodies DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "export/otlp_env.hpp"
#include "export/otlp_json.hpp"

using namespace telecap;

namespace {

void write(const std::filesystem::path& p, const std::string& body) {
    std::ofstream(p, std::ios::binary) << body;
}

std::vector<metrics::family> families() {
    const std::string hostile =
        std::string("q\"b\\s\n\t\x01 \xff\xc3(\xe2\x82 ") + "\xf0\x9f\x98\x80";
    metrics::family c{
        "telecap_events", "Events \"seen\"", "1", metrics::family_type::counter, {}, {}};
    metrics::point p;
    p.labels = {{"kind", hostile}, {"worker", "w1"}};
    p.value = 12345;
    p.start_ns = 1700000000000000000;
    metrics::point big;
    big.value = 1e20;
    c.points = {p, big};
    metrics::family g{"queue_depth", "", "", metrics::family_type::gauge, {}, {}};
    metrics::point g1;
    g1.value = -3.5;
    metrics::point g2;
    g2.value = std::numeric_limits<double>::infinity();
    metrics::point g3;
    g3.value = -7;
    g.points = {g1, g2, g3};
    metrics::family h{"call_duration_seconds",         "Call duration",     "s",
                      metrics::family_type::histogram, {0.005, 0.1, 1, 10}, {}};
    metrics::point hp;
    hp.labels = {{"fn", hostile}};
    hp.bucket_counts = {5, 0, 3, 1, 1};
    hp.count = 10;
    hp.sum = 21.5;
    h.points = {hp};
    metrics::family h0{"no_bounds", "", "", metrics::family_type::histogram, {}, {}};
    metrics::point z;
    z.bucket_counts = {4};
    z.count = 4;
    z.sum = 0;
    h0.points = {z};
    return {c, g, h, h0};
}

std::vector<event> events() {
    event a;
    a.name = {"snakepit", "python", "call", "stop"};
    a.measurements = {{"duration", std::int64_t{std::numeric_limits<std::int64_t>::min()}},
                      {"max", std::int64_t{std::numeric_limits<std::int64_t>::max()}},
                      {"ratio", 0.25},
                      {"nan", std::numeric_limits<double>::quiet_NaN()},
                      {"neg_inf", -std::numeric_limits<double>::infinity()},
                      {"note", std::string("\xff\xfe bad \"utf8\"\n")}};
    a.metadata = {{"worker", std::string("w\xc3")},
                  {"python_pid", std::int64_t{42}},
                  {"correlation_id", nullptr},
                  {"duration", std::string("metadata beside a measurement")}};
    a.timestamp_ns = 1700000000123456789;
    a.correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    event b;
    b.name = {"bare"};
    b.correlation_id = "not-a-trace-id";
    event c;
    c.name = {};
    return {a, b, c};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: otlp_dump_bodies DIR\n");
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    // The resource as the outputs make it (host.name, service.instance.id, process.pid,
    // telemetry.sdk.*), with a service name that is not UTF-8.
    const auto res =
        exporting::read_otlp_settings(exporting::otlp_signal::metrics, "",
                                      [](const std::string& name) -> std::optional<std::string> {
                                          if (name == "OTEL_SERVICE_NAME") return "svc \xff";
                                          return std::nullopt;
                                      })
            .resource;
    write(dir / "metrics.json", exporting::encode_metrics_request(
                                    families(), res, 1700000001000000000, 1700000000000000000));
    write(dir / "metrics_empty.json", exporting::encode_metrics_request({}, {}, 1, 1));
    std::vector<std::string> records;
    for (const auto& ev : events()) {
        records.emplace_back();
        exporting::append_log_record(records.back(), ev, 1700000002000000000);
    }
    write(dir / "logs.json", exporting::encode_logs_request(records, res));
    write(dir / "logs_empty.json", exporting::encode_logs_request({}, res));
    return 0;
}
