// normalizer: the parity rules of the gRPC path (reference README, issue 2 item 5), as a table.
#include "capture/normalizer.hpp"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "capture/catalog.hpp"
#include "capture/parser.hpp"

namespace telecap {
namespace {

// A compact, exact description of an event, independent of the output contract code:
//   name | m: key=i:1 key=d:0.5 key=s:text | md: key=s:text key=i:5 key=null | ts=N | cid=X
std::string describe_double(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

std::string describe(const event& ev) {
    std::string s = ev.dotted_name() + " | m:";
    for (const auto& [k, v] : ev.measurements) {
        s += " " + k + "=";
        if (const auto* i = std::get_if<std::int64_t>(&v))
            s += "i:" + std::to_string(*i);
        else if (const auto* d = std::get_if<double>(&v))
            s += "d:" + describe_double(*d);
        else
            s += "s:" + std::get<std::string>(v);
    }
    s += " | md:";
    for (const auto& [k, v] : ev.metadata) {
        s += " " + k + "=";
        if (const auto* str = std::get_if<std::string>(&v))
            s += "s:" + *str;
        else if (const auto* i = std::get_if<std::int64_t>(&v))
            s += "i:" + std::to_string(*i);
        else
            s += "null";
    }
    s += " | ts=" + std::to_string(ev.timestamp_ns);
    s += " | cid=" + (ev.correlation_id ? *ev.correlation_id : std::string("null"));
    return s;
}

worker_context full_context() {
    worker_context ctx;
    ctx.node = "n1";
    ctx.worker_id = "w-1";
    ctx.pool_name = "p";
    ctx.pid = 4242;
    return ctx;
}

constexpr std::int64_t receive_time = 99;

// Parses and normalizes `payload`: the describe() text, or "reject:<reason>".
std::string run(std::string_view payload, const catalog& cat,
                const worker_context& ctx = full_context()) {
    event_parser parser;
    raw_event raw;
    parse_error err;
    if (!parser.parse(payload, raw, err))
        return "parse-error:" + std::string(to_string(err.reason)) + " (" + err.detail + ")";
    normalizer n(cat);
    event ev;
    if (!n.normalize(raw, ctx, receive_time, ev, err))
        return "reject:" + std::string(to_string(err.reason));
    return describe(ev);
}

// A payload as Python's json.dumps writes it, with timestamp 7 and no correlation id.
std::string line(std::string_view name, std::string_view measurements = "",
                 std::string_view metadata = "") {
    return R"({"event": ")" + std::string(name) + R"(", "measurements": {)" +
           std::string(measurements) + R"(}, "metadata": {)" + std::string(metadata) +
           R"(}, "timestamp_ns": 7, "correlation_id": ""})";
}

// The host's enrichment for full_context(), timestamp 7, no correlation id.
constexpr std::string_view host =
    " node=s:n1 worker_id=s:w-1 pool_name=s:p python_pid=i:4242 correlation_id=null "
    "timestamp_ns=i:7";

// The expected description for a line() payload.
std::string expect(std::string_view name, std::string_view measurements = "",
                   std::string_view metadata = "") {
    return std::string(name) + " | m:" + std::string(measurements) +
           " | md:" + std::string(metadata) + std::string(host) + " | ts=7 | cid=null";
}

struct parity_row {
    const char* rule;
    std::string payload;
    std::string expected;
};

std::ostream& operator<<(std::ostream& os, const parity_row& r) { return os << r.rule; }

class ParityTable : public testing::TestWithParam<parity_row> {};

TEST_P(ParityTable, Rule) {
    static const catalog cat = catalog::builtin();
    const auto& row = GetParam();
    const std::string got = run(row.payload, cat);
    EXPECT_EQ(got, row.expected) << "rule: " << row.rule << "\npayload: " << row.payload;
}

const char* const C = R"("count": 1)";  // a measurement every wire event accepts

// clang-format off
const parity_row parity_rows[] = {
    // 1. Naming: the 11 wire names of the built-in catalog and their event parts.
    {"wire python.call.start", line("python.call.start", C), expect("snakepit.python.call.start", " count=i:1")},
    {"wire python.call.stop", line("python.call.stop", C), expect("snakepit.python.call.stop", " count=i:1")},
    {"wire python.call.exception", line("python.call.exception", C), expect("snakepit.python.call.exception", " count=i:1")},
    {"wire python.memory.sampled", line("python.memory.sampled", C), expect("snakepit.python.memory.sampled", " count=i:1")},
    {"wire python.cpu.sampled", line("python.cpu.sampled", C), expect("snakepit.python.cpu.sampled", " count=i:1")},
    {"wire python.gc.completed", line("python.gc.completed", C), expect("snakepit.python.gc.completed", " count=i:1")},
    {"wire python.error.occurred", line("python.error.occurred", C), expect("snakepit.python.error.occurred", " count=i:1")},
    {"wire tool.execution.start", line("tool.execution.start", C), expect("snakepit.python.tool.execution.start", " count=i:1")},
    {"wire tool.execution.stop", line("tool.execution.stop", C), expect("snakepit.python.tool.execution.stop", " count=i:1")},
    {"wire tool.execution.exception", line("tool.execution.exception", C), expect("snakepit.python.tool.execution.exception", " count=i:1")},
    {"wire tool.result_size", line("tool.result_size", C), expect("snakepit.python.tool.result_size", " count=i:1")},
    {"event as array of parts", R"({"event": ["tool", "execution", "start"], "timestamp_ns": 7})",
     expect("snakepit.python.tool.execution.start")},
    {"event array parts are joined with dots", R"({"event": ["tool.execution", "start"], "timestamp_ns": 7})",
     expect("snakepit.python.tool.execution.start")},
    {"no measurements and no metadata", R"({"event": "python.call.start", "timestamp_ns": 7})",
     expect("snakepit.python.call.start")},
    {"unknown event rejected", line("my.custom.event", C), "reject:unknown_event"},
    {"full name is not a wire name", line("snakepit.python.call.start", C), "reject:unknown_event"},
    {"names are case-sensitive", line("Python.call.start", C), "reject:unknown_event"},
    {"a prefix of a wire name is unknown", line("python.call", C), "reject:unknown_event"},
    {"empty event name", line("", C), "reject:bad_shape"},
    {"empty event array", R"({"event": [], "timestamp_ns": 7})", "reject:bad_shape"},

    // 2. Measurements: known keys only; int64, double or string.
    {"unknown measurement key rejects the event", line("python.call.stop", R"("count": 1, "bogus": 2)"), "reject:unknown_measurement"},
    {"unknown measurement key rejects even when its value is bad", line("python.call.stop", R"("bogus": null)"), "reject:unknown_measurement"},
    {"measurement int -> int64", line("python.call.stop", R"("duration": 1500)"), expect("snakepit.python.call.stop", " duration=i:1500")},
    {"measurement negative int", line("python.call.stop", R"("duration": -3)"), expect("snakepit.python.call.stop", " duration=i:-3")},
    {"measurement int64 max", line("python.call.stop", R"("duration": 9223372036854775807)"), expect("snakepit.python.call.stop", " duration=i:9223372036854775807")},
    {"measurement int64 min", line("python.call.stop", R"("duration": -9223372036854775808)"), expect("snakepit.python.call.stop", " duration=i:-9223372036854775808")},
    {"measurement int beyond int64 max", line("python.call.stop", R"("duration": 9223372036854775808)"), "reject:bad_measurement"},
    {"measurement int beyond int64 min", line("python.call.stop", R"("duration": -9223372036854775809)"), "reject:bad_measurement"},
    {"measurement huge int", line("python.call.stop", R"("duration": 123456789012345678901234567890)"), "reject:bad_measurement"},
    {"measurement float -> double", line("python.call.stop", R"("duration": 1.5)"), expect("snakepit.python.call.stop", " duration=d:1.5")},
    {"measurement float with integral value stays double", line("python.call.stop", R"("duration": 2.0)"), expect("snakepit.python.call.stop", " duration=d:2")},
    {"measurement exponent -> double", line("python.call.stop", R"("duration": 1e+16)"), expect("snakepit.python.call.stop", " duration=d:1e+16")},
    {"measurement capital exponent -> double", line("python.call.stop", R"("duration": 1E5)"), expect("snakepit.python.call.stop", " duration=d:1e+05")},
    {"measurement -0.0", line("python.call.stop", R"("duration": -0.0)"), expect("snakepit.python.call.stop", " duration=d:-0")},
    {"measurement 1e400: beyond the double range is invalid_json (documented limit)", line("python.call.stop", R"("duration": 1e400)"), "parse-error:invalid_json (number too big to be stored in double)"},
    {"measurement 8 digits then a fraction", line("python.call.stop", R"("duration": 12345678.25)"), expect("snakepit.python.call.stop", " duration=d:12345678.25")},
    {"measurement 16 digits, negative", line("python.call.stop", R"("duration": -1234567890123456)"), expect("snakepit.python.call.stop", " duration=i:-1234567890123456")},
    {"measurement 1e-400 underflows to 0", line("python.call.stop", R"("duration": 1e-400)"), expect("snakepit.python.call.stop", " duration=d:0")},
    {"measurement true -> 1", line("python.call.stop", R"("count": true)"), expect("snakepit.python.call.stop", " count=i:1")},
    {"measurement false -> 0", line("python.call.stop", R"("count": false)"), expect("snakepit.python.call.stop", " count=i:0")},
    {"measurement string stays string", line("python.call.stop", R"("duration": "fast")"), expect("snakepit.python.call.stop", " duration=s:fast")},
    {"measurement numeric string stays string", line("python.call.stop", R"("duration": "12")"), expect("snakepit.python.call.stop", " duration=s:12")},
    {"measurement null rejects", line("python.call.stop", R"("duration": null)"), "reject:bad_measurement"},
    {"measurement array rejects", line("python.call.stop", R"("duration": [1, 2])"), "reject:bad_measurement"},
    {"measurement object rejects", line("python.call.stop", R"("duration": {"a": 1})"), "reject:bad_measurement"},
    {"measurement empty array rejects", line("python.call.stop", R"("duration": [])"), "reject:bad_measurement"},
    {"measurement NaN -> double", line("python.call.stop", R"("duration": NaN)"), expect("snakepit.python.call.stop", " duration=d:nan")},
    {"measurement Infinity -> double", line("python.call.stop", R"("duration": Infinity)"), expect("snakepit.python.call.stop", " duration=d:inf")},
    {"measurement -Infinity -> double", line("python.call.stop", R"("duration": -Infinity)"), expect("snakepit.python.call.stop", " duration=d:-inf")},
    {"measurements keep input order", line("python.call.stop", R"("duration": 5, "count": 1, "bytes": 2.5)"),
     expect("snakepit.python.call.stop", " duration=i:5 count=i:1 bytes=d:2.5")},
    {"duplicate measurement key: last wins", line("python.call.stop", R"("count": 1, "duration": 3, "count": 2)"),
     expect("snakepit.python.call.stop", " count=i:2 duration=i:3")},
    {"duplicate measurement key: last wins across types", line("python.call.stop", R"("count": 1, "count": "x")"),
     expect("snakepit.python.call.stop", " count=s:x")},

    // 3. Metadata: str() of each value; unknown keys kept.
    {"metadata string as-is", line("python.call.stop", "", R"("tool": "search")"), expect("snakepit.python.call.stop", "", " tool=s:search")},
    {"metadata empty string", line("python.call.stop", "", R"("tool": "")"), expect("snakepit.python.call.stop", "", " tool=s:")},
    {"metadata unicode string decoded", line("python.call.stop", "", R"("tool": "caf\u00e9")"), expect("snakepit.python.call.stop", "", " tool=s:caf\xC3\xA9")},
    {"metadata int as its JSON text", line("python.call.stop", "", R"("exit_code": 3)"), expect("snakepit.python.call.stop", "", " exit_code=s:3")},
    {"metadata negative int", line("python.call.stop", "", R"("exit_code": -1)"), expect("snakepit.python.call.stop", "", " exit_code=s:-1")},
    {"metadata float as its JSON text", line("python.call.stop", "", R"("size": 1.5)"), expect("snakepit.python.call.stop", "", " size=s:1.5")},
    {"metadata exponent float as its JSON text", line("python.call.stop", "", R"("size": 1e+16)"), expect("snakepit.python.call.stop", "", " size=s:1e+16")},
    {"metadata big int beyond int64 as its text", line("python.call.stop", "", R"("size": 123456789012345678901234567890)"), expect("snakepit.python.call.stop", "", " size=s:123456789012345678901234567890")},
    {"metadata true -> True", line("python.call.stop", "", R"("planned": true)"), expect("snakepit.python.call.stop", "", " planned=s:True")},
    {"metadata false -> False", line("python.call.stop", "", R"("planned": false)"), expect("snakepit.python.call.stop", "", " planned=s:False")},
    {"metadata null -> None", line("python.call.stop", "", R"("result": null)"), expect("snakepit.python.call.stop", "", " result=s:None")},
    {"metadata NaN -> nan", line("python.call.stop", "", R"("size": NaN)"), expect("snakepit.python.call.stop", "", " size=s:nan")},
    {"metadata Infinity -> inf", line("python.call.stop", "", R"("size": Infinity)"), expect("snakepit.python.call.stop", "", " size=s:inf")},
    {"metadata -Infinity -> -inf", line("python.call.stop", "", R"("size": -Infinity)"), expect("snakepit.python.call.stop", "", " size=s:-inf")},
    {"metadata nested array -> compact JSON", line("python.call.stop", "", R"("shape": [2, 3])"), expect("snakepit.python.call.stop", "", " shape=s:[2,3]")},
    {"metadata nested object -> compact JSON", line("python.call.stop", "", R"("kind": {"a": [1, {"b": null}], "c": "d"})"),
     expect("snakepit.python.call.stop", "", R"( kind=s:{"a":[1,{"b":null}],"c":"d"})")},
    {"metadata unknown key kept", line("python.call.stop", "", R"("my_key": "v")"), expect("snakepit.python.call.stop", "", " my_key=s:v")},
    {"metadata keeps input order", line("python.call.stop", "", R"("tool": "t", "zz": 1, "aa": true)"),
     expect("snakepit.python.call.stop", "", " tool=s:t zz=s:1 aa=s:True")},
    {"duplicate metadata key: last wins", line("python.call.stop", "", R"("tool": "a", "mode": "m", "tool": "b")"),
     expect("snakepit.python.call.stop", "", " tool=s:b mode=s:m")},

    // 3b. Enrichment: the host's keys, in order, the host winning on a clash.
    {"host wins over worker node/pool_name/python_pid/worker_id",
     line("python.call.stop", "", R"("node": "evil", "tool": "t", "pool_name": "x", "python_pid": 1, "worker_id": "w-9")"),
     expect("snakepit.python.call.stop", "", " tool=s:t")},
    {"host wins over worker correlation_id and timestamp_ns metadata",
     line("python.call.stop", "", R"("correlation_id": "c", "timestamp_ns": 1)"), expect("snakepit.python.call.stop")},
    {"correlation id carried", R"({"event": "python.call.stop", "timestamp_ns": 7, "correlation_id": "abc-1"})",
     "snakepit.python.call.stop | m: | md: node=s:n1 worker_id=s:w-1 pool_name=s:p python_pid=i:4242 correlation_id=s:abc-1 timestamp_ns=i:7 | ts=7 | cid=abc-1"},
    {"correlation id \"\" becomes null", R"({"event": "python.call.stop", "timestamp_ns": 7, "correlation_id": ""})",
     expect("snakepit.python.call.stop")},
    {"correlation id missing is null", R"({"event": "python.call.stop", "timestamp_ns": 7})", expect("snakepit.python.call.stop")},

    // Timestamp.
    {"timestamp missing -> receive time", R"({"event": "python.call.stop"})",
     "snakepit.python.call.stop | m: | md: node=s:n1 worker_id=s:w-1 pool_name=s:p python_pid=i:4242 correlation_id=null timestamp_ns=i:99 | ts=99 | cid=null"},
    {"timestamp null -> receive time", R"({"event": "python.call.stop", "timestamp_ns": null})",
     "snakepit.python.call.stop | m: | md: node=s:n1 worker_id=s:w-1 pool_name=s:p python_pid=i:4242 correlation_id=null timestamp_ns=i:99 | ts=99 | cid=null"},
    {"timestamp large int", R"({"event": "python.call.stop", "timestamp_ns": 1700000000123456789})",
     "snakepit.python.call.stop | m: | md: node=s:n1 worker_id=s:w-1 pool_name=s:p python_pid=i:4242 correlation_id=null timestamp_ns=i:1700000000123456789 | ts=1700000000123456789 | cid=null"},
    {"timestamp float -> bad_shape", R"({"event": "python.call.stop", "timestamp_ns": 1.5})", "reject:bad_shape"},
    {"timestamp integral float -> bad_shape", R"({"event": "python.call.stop", "timestamp_ns": 1.0})", "reject:bad_shape"},
    {"timestamp exponent -> bad_shape", R"({"event": "python.call.stop", "timestamp_ns": 1e18})", "reject:bad_shape"},
    {"timestamp NaN -> bad_shape", R"({"event": "python.call.stop", "timestamp_ns": NaN})", "reject:bad_shape"},
    {"timestamp beyond int64 -> bad_shape", R"({"event": "python.call.stop", "timestamp_ns": 9223372036854775808})", "reject:bad_shape"},
    {"timestamp string -> bad_shape", R"({"event": "python.call.stop", "timestamp_ns": "7"})", "parse-error:bad_shape (timestamp_ns must be an integer)"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Normalizer, ParityTable, testing::ValuesIn(parity_rows),
                         [](const testing::TestParamInfo<parity_row>& info) {
                             std::string name = std::to_string(info.index) + "_";
                             for (const char* p = info.param.rule; *p; ++p)
                                 name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
                             return name;
                         });

TEST(Normalizer, BuiltinCatalogHasExactlyTheElevenWireNamesOfTheTable) {
    const catalog cat = catalog::builtin();
    EXPECT_EQ(cat.event_count(), 11u);
    std::size_t wire_rows = 0;
    for (const auto& row : parity_rows)
        if (std::string_view(row.rule).starts_with("wire ")) ++wire_rows;
    EXPECT_EQ(wire_rows, 11u);
}

TEST(Normalizer, UnknownEventKeptUnderPrefixWithPolicyKeep) {
    catalog cat = catalog::builtin();
    cat.policies().unknown_event = unknown_event_policy::keep;
    EXPECT_EQ(run(line("my.custom.event", C), cat),
              expect("snakepit.python.my.custom.event", " count=i:1"));
    // Known events are still mapped through the catalog.
    EXPECT_EQ(run(line("tool.execution.start", C), cat),
              expect("snakepit.python.tool.execution.start", " count=i:1"));
    // Array form.
    EXPECT_EQ(run(R"({"event": ["x", "y"], "timestamp_ns": 7})", cat),
              expect("snakepit.python.x.y"));
    // Empty parts are still malformed.
    EXPECT_EQ(run(line("a..b"), cat), "reject:bad_shape");
    EXPECT_EQ(run(line(".a"), cat), "reject:bad_shape");
    EXPECT_EQ(run(line("a."), cat), "reject:bad_shape");
    EXPECT_EQ(run(R"({"event": ["a", ""], "timestamp_ns": 7})", cat), "reject:bad_shape");
    // A custom prefix, and an empty one.
    cat.policies().unknown_event_prefix = {"acme"};
    EXPECT_EQ(run(line("job.done"), cat), expect("acme.job.done"));
    cat.policies().unknown_event_prefix = {};
    EXPECT_EQ(run(line("job.done"), cat), expect("job.done"));
}

TEST(Normalizer, UnknownEventKeptStillChecksMeasurements) {
    catalog cat = catalog::builtin();
    cat.policies().unknown_event = unknown_event_policy::keep;
    EXPECT_EQ(run(line("my.event", R"("bogus": 1)"), cat), "reject:unknown_measurement");
    EXPECT_EQ(run(line("my.event", R"("count": null)"), cat), "reject:bad_measurement");
}

TEST(Normalizer, UnknownMeasurementDroppedWithPolicyDrop) {
    catalog cat = catalog::builtin();
    cat.policies().unknown_measurement = unknown_measurement_policy::drop;
    EXPECT_EQ(run(line("python.call.stop", R"("bogus": 1, "count": 2, "other": null)"), cat),
              expect("snakepit.python.call.stop", " count=i:2"));
    // A known key with a bad value still rejects.
    EXPECT_EQ(run(line("python.call.stop", R"("bogus": 1, "count": [1])"), cat),
              "reject:bad_measurement");
}

TEST(Normalizer, UnknownMetadataDroppedWithPolicyDropKnownKept) {
    catalog cat = catalog::builtin();
    cat.policies().unknown_metadata = unknown_metadata_policy::drop;
    EXPECT_EQ(run(line("python.call.stop", "",
                       R"("secret": "s3cr3t", "tool": "t", "password": 1, "error_type": "E")"),
                  cat),
              expect("snakepit.python.call.stop", "", " tool=s:t error_type=s:E"));
    // The host's keys are still added.
    EXPECT_EQ(run(line("python.call.stop", "", R"("secret": "x")"), cat),
              expect("snakepit.python.call.stop"));
}

TEST(Normalizer, WorkerIdAndPidAbsentWhenTheContextHasNone) {
    const catalog cat = catalog::builtin();
    worker_context ctx;
    ctx.node = "host-a";  // pool_name defaults to "default"
    EXPECT_EQ(run(line("python.call.stop"), cat, ctx),
              "snakepit.python.call.stop | m: | md: node=s:host-a pool_name=s:default "
              "correlation_id=null timestamp_ns=i:7 | ts=7 | cid=null");
}

TEST(Normalizer, WorkerValuesKeptWhenTheHostHasNone) {
    // No clash: the host knows no worker_id or pid, so the worker's own strings stay.
    const catalog cat = catalog::builtin();
    worker_context ctx;
    ctx.node = "host-a";
    EXPECT_EQ(
        run(line("python.call.stop", "", R"("python_pid": 77, "worker_id": "w-3", "node": "x")"),
            cat, ctx),
        "snakepit.python.call.stop | m: | md: python_pid=s:77 worker_id=s:w-3 "
        "node=s:host-a pool_name=s:default correlation_id=null timestamp_ns=i:7 | ts=7 | "
        "cid=null");
}

TEST(Normalizer, EnrichmentTypes) {
    const catalog cat = catalog::builtin();
    event_parser parser;
    raw_event raw;
    parse_error err;
    ASSERT_TRUE(parser.parse(R"({"event": "python.call.stop", "timestamp_ns": 5, )"
                             R"("correlation_id": "c1"})",
                             raw, err));
    normalizer n(cat);
    event ev;
    ASSERT_TRUE(n.normalize(raw, full_context(), 0, ev, err));
    ASSERT_NE(ev.meta("python_pid"), nullptr);
    EXPECT_EQ(std::get<std::int64_t>(*ev.meta("python_pid")), 4242);
    EXPECT_EQ(std::get<std::int64_t>(*ev.meta("timestamp_ns")), 5);
    EXPECT_EQ(std::get<std::string>(*ev.meta("correlation_id")), "c1");
    EXPECT_EQ(std::get<std::string>(*ev.meta("node")), "n1");
    EXPECT_EQ(ev.name, (std::vector<std::string>{"snakepit", "python", "call", "stop"}));
    EXPECT_EQ(ev.timestamp_ns, 5);
    ASSERT_TRUE(ev.correlation_id.has_value());
    EXPECT_EQ(*ev.correlation_id, "c1");
}

TEST(Normalizer, ReusedEventIsFullyOverwritten) {
    const catalog cat = catalog::builtin();
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event ev;
    ASSERT_TRUE(parser.parse(R"({"event": "python.call.stop", "measurements": {"count": 1}, )"
                             R"("metadata": {"tool": "t"}, "correlation_id": "c"})",
                             raw, err));
    ASSERT_TRUE(n.normalize(raw, full_context(), 1, ev, err));
    ASSERT_TRUE(parser.parse(R"({"event": ["python", "call", "start"]})", raw, err));
    ASSERT_TRUE(n.normalize(raw, full_context(), 2, ev, err));
    EXPECT_EQ(describe(ev),
              "snakepit.python.call.start | m: | md: node=s:n1 worker_id=s:w-1 pool_name=s:p "
              "python_pid=i:4242 correlation_id=null timestamp_ns=i:2 | ts=2 | cid=null");
}

TEST(Normalizer, MetadataStringOfEachScalarKind) {
    EXPECT_EQ(metadata_string({raw_kind::string, "x y"}), "x y");
    EXPECT_EQ(metadata_string({raw_kind::number, "42"}), "42");
    EXPECT_EQ(metadata_string({raw_kind::number, "0.1"}), "0.1");
    EXPECT_EQ(metadata_string({raw_kind::true_, {}}), "True");
    EXPECT_EQ(metadata_string({raw_kind::false_, {}}), "False");
    EXPECT_EQ(metadata_string({raw_kind::null, {}}), "None");
    EXPECT_EQ(metadata_string({raw_kind::number, "NaN"}), "nan");
    EXPECT_EQ(metadata_string({raw_kind::number, "Infinity"}), "inf");
    EXPECT_EQ(metadata_string({raw_kind::number, "-Infinity"}), "-inf");
    EXPECT_EQ(metadata_string({raw_kind::nested, "[1,2]"}), "[1,2]");
}

TEST(Normalizer, RejectDetailNamesTheProblem) {
    const catalog cat = catalog::builtin();
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event ev;
    ASSERT_TRUE(parser.parse(R"({"event": "no.such.event"})", raw, err));
    EXPECT_FALSE(n.normalize(raw, full_context(), 0, ev, err));
    EXPECT_EQ(err.reason, reject_reason::unknown_event);
    EXPECT_NE(err.detail.find("no.such.event"), std::string::npos) << err.detail;
    ASSERT_TRUE(
        parser.parse(R"({"event": "python.call.stop", "measurements": {"zap": 1}})", raw, err));
    EXPECT_FALSE(n.normalize(raw, full_context(), 0, ev, err));
    EXPECT_EQ(err.reason, reject_reason::unknown_measurement);
    EXPECT_NE(err.detail.find("zap"), std::string::npos) << err.detail;
}

// The pipeline's path: one reused event per event type. Whatever the order of types, each
// result must equal a fresh normalization of the same line.
TEST(Normalizer, SlotsGiveTheSameEventsAsFreshNormalization) {
    catalog cat = catalog::builtin();
    cat.policies().unknown_event = unknown_event_policy::keep;
    const std::vector<std::string> lines = {
        R"({"event": "tool.execution.start", "measurements": {"count": 1, "system_time": 7}, )"
        R"("metadata": {"tool": "rank", "session_id": "s1"}, "timestamp_ns": 10, )"
        R"("correlation_id": "c1"})",
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, "timestamp_ns": 11})",
        R"({"event": "tool.execution.start", "measurements": {"system_time": 8, "count": 2}, )"
        R"("metadata": {"session_id": "a much longer session id than before", "x": [1, 2]}, )"
        R"("timestamp_ns": 12, "correlation_id": ""})",
        R"({"event": "my.own.thing", "measurements": {"count": 3}, "timestamp_ns": 13})",
        R"({"event": "tool.execution.start", "measurements": {"count": 1, "count": 4}, )"
        R"("metadata": {"node": "spoofed", "tool": "t", "tool": "u"}, "timestamp_ns": 14})",
        R"({"event": "other.unknown", "timestamp_ns": 15, "correlation_id": "c2"})",
        R"({"event": "python.call.stop", "measurements": {"duration": 0.5, "count": true}, )"
        R"("metadata": {"tool": null}, "timestamp_ns": 16})",
    };
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event_slots slots(cat);
    for (int round = 0; round < 2; ++round) {
        for (const auto& line : lines) {
            SCOPED_TRACE(line);
            ASSERT_TRUE(parser.parse(line, raw, err)) << err.detail;
            event* ev = n.normalize(raw, full_context(), receive_time, slots, err);
            ASSERT_NE(ev, nullptr) << err.detail;
            EXPECT_EQ(describe(*ev), run(line, cat));
        }
    }
}

TEST(Normalizer, SlotEventTakenAwayByTheSinkIsRebuilt) {
    const catalog cat = catalog::builtin();
    const std::string line =
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, )"
        R"("metadata": {"tool": "t"}, "timestamp_ns": 11, "correlation_id": "c"})";
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event_slots slots(cat);
    ASSERT_TRUE(parser.parse(line, raw, err));
    event* first = n.normalize(raw, full_context(), 0, slots, err);
    ASSERT_NE(first, nullptr);
    const event taken = std::move(*first);  // what the run supervisor does
    event* second = n.normalize(raw, full_context(), 0, slots, err);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(describe(*second), describe(taken));
    EXPECT_EQ(describe(*second), run(line, cat));
}

TEST(Normalizer, SlotEventsFollowAChangedContext) {
    // A restarted worker gets a new pid: the reused event must carry the new one.
    const catalog cat = catalog::builtin();
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event_slots slots(cat);
    worker_context ctx = full_context();
    ASSERT_TRUE(parser.parse(R"({"event": "python.call.stop", "timestamp_ns": 1})", raw, err));
    ASSERT_NE(n.normalize(raw, ctx, 0, slots, err), nullptr);
    ctx.pid = 7;
    ctx.node = "another-node-with-a-long-name";
    ctx.worker_id.reset();
    const event* ev = n.normalize(raw, ctx, 0, slots, err);
    ASSERT_NE(ev, nullptr);
    EXPECT_EQ(describe(*ev),
              "snakepit.python.call.stop | m: | md: node=s:another-node-with-a-long-name "
              "pool_name=s:p python_pid=i:7 correlation_id=null timestamp_ns=i:1 | ts=1 | "
              "cid=null");
}

// A slot filled for a catalog entry is trusted for that entry alone: its name parts and the
// measurement keys in place are skipped only when the event has the very same entry. After a
// reload, the same slot (the same type index) under another catalog is checked in full: its
// name is the new catalog's, and a key the new catalog does not allow is refused even though
// the slot holds it in place.
TEST(Normalizer, ASlotIsTrustedOnlyForTheCatalogEntryThatFilledIt) {
    struct one_slot final : event_slot_source {
        event ev;
        event& slot(std::size_t) override { return ev; }
    } slots;
    const auto make = [](const char* parts, const char* keys) {
        return catalog::from_json(std::string(R"({"wire_events": {"a.b": {"event": )") + parts +
                                      R"(}}, "measurement_keys": )" + keys +
                                      R"(, "metadata_keys": ["tool"]})",
                                  "test.json");
    };
    const catalog first = make(R"(["x", "a", "b"])", R"(["duration", "count"])");
    const catalog reloaded = make(R"(["y", "a", "b"])", R"(["count"])");
    event_parser parser;
    raw_event raw;
    parse_error err;
    ASSERT_TRUE(
        parser.parse(R"({"event": "a.b", "measurements": {"duration": 5, "count": 1}})", raw, err));
    normalizer before(first);
    for (int i = 0; i < 2; ++i) {  // the second time from a warm slot
        const event* ev = before.normalize(raw, full_context(), 0, slots, err);
        ASSERT_NE(ev, nullptr) << err.detail;
        EXPECT_EQ(ev->name, (std::vector<std::string>{"x", "a", "b"}));
        EXPECT_EQ(ev->measurements.size(), 2u);
    }
    normalizer after(reloaded);
    EXPECT_EQ(after.normalize(raw, full_context(), 0, slots, err), nullptr);
    EXPECT_EQ(err.reason, reject_reason::unknown_measurement) << err.detail;
    ASSERT_TRUE(parser.parse(R"({"event": "a.b", "measurements": {"count": 1}})", raw, err));
    const event* ev = after.normalize(raw, full_context(), 0, slots, err);
    ASSERT_NE(ev, nullptr) << err.detail;
    EXPECT_EQ(ev->name, (std::vector<std::string>{"y", "a", "b"}));
    // Back to the first catalog's entry with a key it allows but the slot no longer holds.
    ASSERT_TRUE(parser.parse(R"({"event": "a.b", "measurements": {"duration": 2}})", raw, err));
    ev = before.normalize(raw, full_context(), 0, slots, err);
    ASSERT_NE(ev, nullptr) << err.detail;
    EXPECT_EQ(ev->name, (std::vector<std::string>{"x", "a", "b"}));
}

// A value that changes but keeps its length is copied over the old one in place (word moves
// for up to 16 bytes): every length, every byte different, in the metadata and the
// correlation id, must come out whole.
TEST(Normalizer, SameLengthValuesReplaceTheOldOnesWhole) {
    const catalog cat = catalog::builtin();
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event_slots slots(cat);
    for (std::size_t len = 1; len <= 20; ++len) {
        for (const char c : {'a', 'b'}) {
            std::string v;
            for (std::size_t i = 0; i < len; ++i) v += static_cast<char>(c + i % 20);
            const std::string line = R"({"event": "python.call.stop", "metadata": {"tool": ")" + v +
                                     R"("}, "correlation_id": ")" + v + R"("})";
            ASSERT_TRUE(parser.parse(line, raw, err)) << err.detail;
            const event* ev = n.normalize(raw, full_context(), receive_time, slots, err);
            ASSERT_NE(ev, nullptr) << err.detail;
            ASSERT_EQ(describe(*ev), run(line, cat)) << line;
            ASSERT_EQ(ev->correlation_id, v);
        }
    }
}

// keys_id names the keys (event.hpp): equal for equal key sequences wherever they were
// normalized, different for different ones, kept while only values change, and never left on
// an event whose keys a rejection changed.
TEST(Normalizer, KeysIdNamesTheKeySequenceWhereverItWasNormalized) {
    const catalog cat = catalog::builtin();
    event_parser parser;
    raw_event raw;
    parse_error err;
    normalizer n(cat);
    event_slots slots(cat), other_slots(cat);
    const auto normalize = [&](const std::string& line, event_slots& into) -> event* {
        EXPECT_TRUE(parser.parse(line, raw, err)) << err.detail;
        return n.normalize(raw, full_context(), receive_time, into, err);
    };
    const std::string a1 =
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, "metadata": {"tool": "t"}})";
    const std::string a2 =
        R"({"event": "python.call.stop", "measurements": {"duration": 6}, "metadata": {"tool": "u"}})";
    const std::string b =  // the same keys but one
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, "metadata": {"mode": "t"}})";
    const std::string c =  // one more
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, )"
        R"("metadata": {"tool": "t", "mode": "x"}})";
    event* ev = normalize(a1, slots);
    ASSERT_NE(ev, nullptr);
    const std::uint64_t a = ev->keys_id;
    EXPECT_NE(a, 0u);
    EXPECT_EQ(normalize(a2, slots)->keys_id, a) << "values changed, keys kept";
    EXPECT_EQ(normalize(a2, other_slots)->keys_id, a) << "another slot, the same keys";
    event fresh;
    ASSERT_TRUE(n.normalize(raw, full_context(), receive_time, fresh, err));
    EXPECT_EQ(fresh.keys_id, a) << "an event of the caller's, the same keys";
    const std::uint64_t b_id = normalize(b, slots)->keys_id;
    EXPECT_NE(b_id, 0u);
    EXPECT_NE(b_id, a) << "a key written over in place";
    const std::uint64_t c_id = normalize(c, slots)->keys_id;
    EXPECT_NE(c_id, a);
    EXPECT_NE(c_id, b_id);
    EXPECT_EQ(normalize(a1, slots)->keys_id, a) << "a key cut off: back to the first keys";
    // Another context: its host keys (no worker_id, no python_pid) make other keys.
    worker_context bare;
    bare.node = "n1";
    ASSERT_TRUE(parser.parse(a1, raw, err));
    event* bare_ev = n.normalize(raw, bare, receive_time, slots, err);
    ASSERT_NE(bare_ev, nullptr);
    EXPECT_NE(bare_ev->keys_id, a);
    EXPECT_NE(bare_ev->keys_id, 0u);

    // Rejected half way through its measurements: the slot's keys have changed, and whatever
    // keys it is filled with next, its id must be theirs.
    ASSERT_NE(normalize(a1, slots), nullptr);
    const std::string bad =
        R"({"event": "python.call.stop", "measurements": {"count": 1, "duration": [1]}, )"
        R"("metadata": {"tool": "t"}})";
    ASSERT_TRUE(parser.parse(bad, raw, err));
    event& slot = slots.slot(cat.event_index(*cat.find_event("python.call.stop")));
    EXPECT_EQ(n.normalize(raw, full_context(), receive_time, slots, err), nullptr);
    EXPECT_EQ(slot.keys_id, 0u);
    const std::string count_only =
        R"({"event": "python.call.stop", "measurements": {"count": 2}, "metadata": {"tool": "t"}})";
    event* after = normalize(count_only, slots);
    ASSERT_NE(after, nullptr);
    EXPECT_NE(after->keys_id, a);
    event reference;
    ASSERT_TRUE(n.normalize(raw, full_context(), receive_time, reference, err));
    EXPECT_EQ(after->keys_id, reference.keys_id);
}

// With its table full the normalizer writes the same events, gives them no id (none), and asks
// the table again only when an event's keys change, not line after line.
TEST(Normalizer, AFullKeyTableChangesNothingButTheIdAndIsNotAskedPerLine) {
    const catalog cat = catalog::builtin();
    key_shapes full(0, 0);
    normalizer n(cat, full);
    event_parser parser;
    raw_event raw;
    parse_error err;
    event_slots slots(cat);
    const std::string a =
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, "metadata": {"tool": "t"}})";
    const std::string b =
        R"({"event": "python.call.stop", "measurements": {"duration": 5}, "metadata": {"mode": "t"}})";
    for (const std::string* line : {&a, &a, &a, &b, &b, &a}) {
        ASSERT_TRUE(parser.parse(*line, raw, err));
        const event* ev = n.normalize(raw, full_context(), receive_time, slots, err);
        ASSERT_NE(ev, nullptr);
        EXPECT_EQ(describe(*ev), run(*line, cat));
        EXPECT_EQ(ev->keys_id, key_shapes::none);
    }
    EXPECT_EQ(full.asked(), 3u) << "once for a, once for b, once for a again";
}

}  // namespace
}  // namespace telecap
