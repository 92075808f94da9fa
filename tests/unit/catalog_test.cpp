// catalog: the built-in Snakepit catalog, loading from JSON, and the round trip.
#include "capture/catalog.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace telecap {
namespace {

const char* const wire_names[] = {
    "python.call.start",        "python.call.stop",     "python.call.exception",
    "python.memory.sampled",    "python.cpu.sampled",   "python.gc.completed",
    "python.error.occurred",    "tool.execution.start", "tool.execution.stop",
    "tool.execution.exception", "tool.result_size"};

const char* const measurement_keys[] = {"duration",
                                        "duration_ms",
                                        "bytes",
                                        "system_time",
                                        "queue_depth",
                                        "queue_time",
                                        "available_workers",
                                        "busy_workers",
                                        "total_workers",
                                        "worker_count",
                                        "lifetime",
                                        "total_commands",
                                        "command_count",
                                        "downtime",
                                        "restart_count",
                                        "retry_count",
                                        "request_size",
                                        "response_size",
                                        "message_size",
                                        "sequence_number",
                                        "message_count",
                                        "network_time",
                                        "uptime",
                                        "call_count",
                                        "affinity_duration",
                                        "commands_with_affinity",
                                        "rss_bytes",
                                        "vms_bytes",
                                        "cpu_percent",
                                        "collected",
                                        "generation",
                                        "latency_ms",
                                        "count",
                                        "python_pid"};

const char* const metadata_keys[] = {"node",
                                     "pool_name",
                                     "worker_id",
                                     "session_id",
                                     "command",
                                     "correlation_id",
                                     "worker_pid",
                                     "python_port",
                                     "python_pid",
                                     "mode",
                                     "reason",
                                     "planned",
                                     "previous_pid",
                                     "new_pid",
                                     "retry_count",
                                     "timeout_ms",
                                     "result",
                                     "error_type",
                                     "error_category",
                                     "error_message",
                                     "traceback",
                                     "rpc_method",
                                     "grpc_status",
                                     "stream_id",
                                     "direction",
                                     "is_final",
                                     "tool",
                                     "library",
                                     "function",
                                     "python_type",
                                     "model",
                                     "operation",
                                     "timestamp_ns",
                                     "worker_module",
                                     "adapter_module",
                                     "size",
                                     "failure_reason",
                                     "kind",
                                     "device",
                                     "dtype",
                                     "shape",
                                     "exit_code",
                                     "payload_version",
                                     "call_type",
                                     "idempotent",
                                     "retry"};

TEST(Catalog, BuiltinHasElevenWireEvents) {
    const catalog c = catalog::builtin();
    EXPECT_EQ(c.event_count(), 11u);
    EXPECT_EQ(std::size(wire_names), 11u);
    for (const char* w : wire_names) {
        const auto* e = c.find_event(w);
        ASSERT_NE(e, nullptr) << w;
        // python.X maps to snakepit.python.X, tool.X to snakepit.python.tool.X.
        std::string dotted;
        for (const auto& p : e->parts) dotted += (dotted.empty() ? "" : ".") + p;
        const std::string wire(w);
        EXPECT_EQ(dotted,
                  wire.starts_with("python.") ? "snakepit." + wire : "snakepit.python." + wire);
        EXPECT_FALSE(e->expected_measurements.empty()) << w;
    }
    EXPECT_EQ(c.find_event("python.call"), nullptr);
    EXPECT_EQ(c.find_event(""), nullptr);
    const auto* stop = c.find_event("tool.execution.stop");
    ASSERT_NE(stop, nullptr);
    EXPECT_EQ(stop->expected_measurements, (std::vector<std::string>{"duration", "count"}));
}

TEST(Catalog, BuiltinHas34MeasurementKeys) {
    const catalog c = catalog::builtin();
    EXPECT_EQ(std::size(measurement_keys), 34u);
    for (const char* k : measurement_keys) EXPECT_TRUE(c.known_measurement(k)) << k;
    EXPECT_FALSE(c.known_measurement("bogus"));
    EXPECT_FALSE(c.known_measurement("Duration"));
    EXPECT_FALSE(c.known_measurement("tool"));  // a metadata key only
}

TEST(Catalog, BuiltinHas46MetadataKeys) {
    const catalog c = catalog::builtin();
    EXPECT_EQ(std::size(metadata_keys), 46u);
    for (const char* k : metadata_keys) EXPECT_TRUE(c.known_metadata(k)) << k;
    EXPECT_FALSE(c.known_metadata("bogus"));
    EXPECT_FALSE(c.known_metadata("duration"));  // a measurement key only
}

TEST(Catalog, BuiltinKeyCountsFromItsJson) {
    // The exact counts: no more keys than the lists above.
    const std::string json = catalog::builtin().to_json();
    const auto count_in = [&](const char* key) {
        const auto start = json.find(std::string("\"") + key + "\"");
        const auto open = json.find('[', start);
        const auto close = json.find(']', open);
        std::size_t n = 0;
        for (auto i = open; i < close; ++i) n += json[i] == '"';
        return n / 2;
    };
    EXPECT_EQ(count_in("measurement_keys"), 34u);
    EXPECT_EQ(count_in("metadata_keys"), 46u);
}

TEST(Catalog, BuiltinPoolEvents) {
    const catalog c = catalog::builtin();
    const auto* spawned = c.pool_event("worker_spawned");
    ASSERT_NE(spawned, nullptr);
    EXPECT_EQ(*spawned, (std::vector<std::string>{"snakepit", "pool", "worker", "spawned"}));
    for (const auto& [name, last] : std::vector<std::pair<std::string, std::string>>{
             {"worker_terminated", "terminated"},
             {"worker_restarted", "restarted"},
             {"worker_spawn_failed", "spawn_failed"}}) {
        const auto* e = c.pool_event(name);
        ASSERT_NE(e, nullptr) << name;
        EXPECT_EQ(*e, (std::vector<std::string>{"snakepit", "pool", "worker", last}));
    }
    EXPECT_EQ(c.pool_event("no_such"), nullptr);
}

TEST(Catalog, BuiltinDefaultsAreTheGrpcRules) {
    const catalog c = catalog::builtin();
    EXPECT_EQ(c.policies().unknown_event, unknown_event_policy::reject);
    EXPECT_EQ(c.policies().unknown_measurement, unknown_measurement_policy::reject);
    EXPECT_EQ(c.policies().unknown_metadata, unknown_metadata_policy::keep);
}

// The error message of from_json(json, "my.json"), or "" if it loads.
std::string load_error(const std::string& json) {
    try {
        (void)catalog::from_json(json, "my.json");
        return "";
    } catch (const catalog_error& e) {
        return e.what();
    }
}

constexpr const char* minimal_tail = R"("measurement_keys": ["count"], "metadata_keys": ["tool"])";

std::string with_events(const std::string& events, const std::string& extra = "") {
    return "{\"wire_events\": " + events + ", " + minimal_tail + extra + "}";
}

TEST(Catalog, MinimalCatalogLoads) {
    const catalog c =
        catalog::from_json(with_events(R"({"a.b": {"event": ["x", "a", "b"]}})"), "my.json");
    EXPECT_EQ(c.event_count(), 1u);
    ASSERT_NE(c.find_event("a.b"), nullptr);
    EXPECT_EQ(c.find_event("a.b")->parts, (std::vector<std::string>{"x", "a", "b"}));
    EXPECT_TRUE(c.known_measurement("count"));
    EXPECT_TRUE(c.known_metadata("tool"));
    EXPECT_FALSE(c.known_metadata("node"));
    EXPECT_EQ(c.pool_event("worker_spawned"), nullptr);
}

TEST(Catalog, BadJsonNamesSourceAndOffset) {
    const std::string e = load_error(R"({"wire_events": {,}})");
    EXPECT_EQ(e.rfind("my.json: offset 17: ", 0), 0u) << e;
    const std::string empty = load_error("");
    EXPECT_EQ(empty.rfind("my.json: offset 0: ", 0), 0u) << empty;
}

TEST(Catalog, RootNotObject) {
    const std::string e = load_error("[]");
    EXPECT_EQ(e.rfind("my.json: ", 0), 0u) << e;
    EXPECT_NE(e.find("object"), std::string::npos) << e;
}

TEST(Catalog, MissingWireEvents) {
    const std::string e = load_error(std::string("{") + minimal_tail + "}");
    EXPECT_EQ(e.rfind("my.json: wire_events: ", 0), 0u) << e;
    const std::string not_obj = load_error(with_events("[]"));
    EXPECT_EQ(not_obj.rfind("my.json: wire_events: ", 0), 0u) << not_obj;
}

TEST(Catalog, MissingKeyLists) {
    std::string e = load_error(R"({"wire_events": {}, "metadata_keys": []})");
    EXPECT_EQ(e.rfind("my.json: measurement_keys: ", 0), 0u) << e;
    e = load_error(R"({"wire_events": {}, "measurement_keys": []})");
    EXPECT_EQ(e.rfind("my.json: metadata_keys: ", 0), 0u) << e;
    e = load_error(R"({"wire_events": {}, "measurement_keys": "count", "metadata_keys": []})");
    EXPECT_EQ(e.rfind("my.json: measurement_keys: ", 0), 0u) << e;
    e = load_error(R"({"wire_events": {}, "measurement_keys": [], "metadata_keys": [1]})");
    EXPECT_EQ(e.rfind("my.json: metadata_keys: ", 0), 0u) << e;
}

TEST(Catalog, EventNotAnArrayOfStrings) {
    for (const char* events : {R"({"a.b": {"event": "x.a.b"}})", R"({"a.b": {"event": [1]}})",
                               R"({"a.b": {"event": ["x", null]}})", R"({"a.b": {"event": []}})",
                               R"({"a.b": {"event": ["x", ""]}})"}) {
        const std::string e = load_error(with_events(events));
        EXPECT_EQ(e.rfind("my.json: wire_events.a.b.event: ", 0), 0u) << events << " -> " << e;
    }
    std::string e = load_error(with_events(R"({"a.b": {}})"));
    EXPECT_EQ(e.rfind("my.json: wire_events.a.b.event: ", 0), 0u) << e;
    e = load_error(with_events(R"({"a.b": ["x"]})"));
    EXPECT_EQ(e.rfind("my.json: wire_events.a.b: ", 0), 0u) << e;
    e = load_error(with_events(R"({"a.b": {"event": ["x"], "expected_measurements": "count"}})"));
    EXPECT_EQ(e.rfind("my.json: wire_events.a.b.expected_measurements: ", 0), 0u) << e;
}

TEST(Catalog, DuplicateWireName) {
    const std::string e =
        load_error(with_events(R"({"a.b": {"event": ["x"]}, "a.b": {"event": ["y"]}})"));
    EXPECT_EQ(e.rfind("my.json: wire_events.a.b: ", 0), 0u) << e;
    EXPECT_NE(e.find("duplicate"), std::string::npos) << e;
}

TEST(Catalog, BadPolicyValue) {
    const auto policy = [](const std::string& body) {
        return load_error(with_events("{}", ", \"policies\": {" + body + "}"));
    };
    std::string e = policy(R"("unknown_event": "ignore")");
    EXPECT_EQ(e.rfind("my.json: policies.unknown_event: ", 0), 0u) << e;
    EXPECT_NE(e.find("ignore"), std::string::npos) << e;
    e = policy(R"("unknown_measurement": "keep")");
    EXPECT_EQ(e.rfind("my.json: policies.unknown_measurement: ", 0), 0u) << e;
    e = policy(R"("unknown_metadata": "reject")");
    EXPECT_EQ(e.rfind("my.json: policies.unknown_metadata: ", 0), 0u) << e;
    e = policy(R"("unknown_event": 1)");
    EXPECT_EQ(e.rfind("my.json: policies.unknown_event: ", 0), 0u) << e;
    e = policy(R"("unknown_event_prefix": "snakepit")");
    EXPECT_EQ(e.rfind("my.json: policies.unknown_event_prefix: ", 0), 0u) << e;
    e = load_error(with_events("{}", R"(, "policies": [])"));
    EXPECT_EQ(e.rfind("my.json: policies: ", 0), 0u) << e;
}

TEST(Catalog, UnknownPolicy) {
    const std::string e =
        load_error(with_events("{}", R"(, "policies": {"unknown_evnt": "keep"})"));
    EXPECT_EQ(e.rfind("my.json: policies.unknown_evnt: ", 0), 0u) << e;
    EXPECT_NE(e.find("unknown policy"), std::string::npos) << e;
}

TEST(Catalog, PoliciesLoad) {
    const catalog c = catalog::from_json(
        with_events("{}", R"(, "policies": {"unknown_event": "keep", "unknown_event_prefix": )"
                          R"(["acme", "w"], "unknown_measurement": "drop", )"
                          R"("unknown_metadata": "drop"})"),
        "my.json");
    EXPECT_EQ(c.policies().unknown_event, unknown_event_policy::keep);
    EXPECT_EQ(c.policies().unknown_event_prefix, (std::vector<std::string>{"acme", "w"}));
    EXPECT_EQ(c.policies().unknown_measurement, unknown_measurement_policy::drop);
    EXPECT_EQ(c.policies().unknown_metadata, unknown_metadata_policy::drop);
}

TEST(Catalog, BadPoolEvents) {
    std::string e = load_error(with_events("{}", R"(, "pool_events": [])"));
    EXPECT_EQ(e.rfind("my.json: pool_events: ", 0), 0u) << e;
    e = load_error(with_events("{}", R"(, "pool_events": {"x": "a.b"})"));
    EXPECT_EQ(e.rfind("my.json: pool_events.x: ", 0), 0u) << e;
}

void expect_same_lookups(const catalog& a, const catalog& b) {
    EXPECT_EQ(a.event_count(), b.event_count());
    for (const char* w : wire_names) {
        const auto* ea = a.find_event(w);
        const auto* eb = b.find_event(w);
        ASSERT_EQ(ea == nullptr, eb == nullptr) << w;
        if (!ea) continue;
        EXPECT_EQ(ea->parts, eb->parts) << w;
        EXPECT_EQ(ea->expected_measurements, eb->expected_measurements) << w;
    }
    for (const char* k : measurement_keys)
        EXPECT_EQ(a.known_measurement(k), b.known_measurement(k));
    for (const char* k : metadata_keys) EXPECT_EQ(a.known_metadata(k), b.known_metadata(k));
    for (const char* p : {"initialized", "worker_spawned", "worker_ready", "worker_restarted",
                          "queue_timeout", "status"}) {
        const auto* pa = a.pool_event(p);
        const auto* pb = b.pool_event(p);
        ASSERT_EQ(pa == nullptr, pb == nullptr) << p;
        if (pa) {
            EXPECT_EQ(*pa, *pb) << p;
        }
    }
    EXPECT_EQ(a.policies().unknown_event, b.policies().unknown_event);
    EXPECT_EQ(a.policies().unknown_event_prefix, b.policies().unknown_event_prefix);
    EXPECT_EQ(a.policies().unknown_measurement, b.policies().unknown_measurement);
    EXPECT_EQ(a.policies().unknown_metadata, b.policies().unknown_metadata);
}

TEST(Catalog, ToJsonRoundTrips) {
    const catalog a = catalog::builtin();
    const std::string json = a.to_json();
    const catalog b = catalog::from_json(json, "round trip");
    expect_same_lookups(a, b);
    EXPECT_EQ(b.to_json(), json);  // a fixed point
}

TEST(Catalog, ToJsonRoundTripsPolicies) {
    catalog a = catalog::builtin();
    a.policies().unknown_event = unknown_event_policy::keep;
    a.policies().unknown_event_prefix = {"acme"};
    a.policies().unknown_measurement = unknown_measurement_policy::drop;
    a.policies().unknown_metadata = unknown_metadata_policy::drop;
    const catalog b = catalog::from_json(a.to_json(), "round trip");
    expect_same_lookups(a, b);
}

TEST(Catalog, FromFile) {
    char path[] = "/tmp/telecap-catalog-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        std::ofstream out(path);
        out << with_events(R"({"a.b": {"event": ["x"]}})");
    }
    const catalog c = catalog::from_file(path);
    EXPECT_NE(c.find_event("a.b"), nullptr);
    {
        std::ofstream out(path);
        out << "{oops";
    }
    try {
        (void)catalog::from_file(path);
        ADD_FAILURE() << "bad catalog file loaded";
    } catch (const catalog_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(std::string(path) + ": offset 1: ", 0), 0u)
            << e.what();
    }
    std::remove(path);
    try {
        (void)catalog::from_file(path);
        ADD_FAILURE() << "missing catalog file loaded";
    } catch (const catalog_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << e.what();
    }
}

}  // namespace
}  // namespace telecap
