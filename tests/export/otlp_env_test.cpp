// OTEL_* settings through a table of variables: endpoint precedence (command line, signal,
// base, default), headers, timeouts, service name, protocol, disabled.
#include "export/otlp_env.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <stdexcept>

#include "telecap/version.hpp"

namespace telecap::exporting {
namespace {

using namespace std::chrono_literals;

env_lookup table(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

otlp_settings metrics(std::map<std::string, std::string> vars, std::string_view cli = {}) {
    return read_otlp_settings(otlp_signal::metrics, cli, table(std::move(vars)));
}
otlp_settings logs(std::map<std::string, std::string> vars, std::string_view cli = {}) {
    return read_otlp_settings(otlp_signal::logs, cli, table(std::move(vars)));
}

TEST(otlp_env, defaults) {
    const auto s = metrics({});
    EXPECT_FALSE(s.disabled);
    EXPECT_EQ(s.endpoint.str(), "http://localhost:4318/v1/metrics");
    EXPECT_EQ(logs({}).endpoint.str(), "http://localhost:4318/v1/logs");
    EXPECT_EQ(s.timeout, 10000ms);
    EXPECT_EQ(s.export_interval, 60000ms);
    EXPECT_TRUE(s.headers.empty());
    ASSERT_EQ(s.resource.size(), 7u);
    EXPECT_EQ(s.resource[0], (std::pair<std::string, std::string>{"service.name", "telecap"}));
    EXPECT_TRUE(s.warnings.empty());
    EXPECT_FALSE(s.gzip);
    EXPECT_EQ(s.export_timeout, 30000ms);
}

std::map<std::string, std::string> attrs_of(const otlp_settings& s) {
    return {s.resource.begin(), s.resource.end()};
}

TEST(otlp_env, identity_of_this_telecap) {
    const auto a = attrs_of(metrics({}));
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    EXPECT_EQ(a.at("host.name"), host);
    EXPECT_EQ(a.at("process.pid"), std::to_string(::getpid()));
    EXPECT_EQ(a.at("telemetry.sdk.name"), "telecap");
    EXPECT_EQ(a.at("telemetry.sdk.language"), "cpp");
    EXPECT_EQ(a.at("telemetry.sdk.version"), version_string);
    const std::string id = a.at("service.instance.id");
    EXPECT_TRUE(std::regex_match(
        id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
        << id;
    EXPECT_EQ(attrs_of(logs({})).at("service.instance.id"), id) << "one id per process";
    // Set by the attributes: theirs, once.
    const auto s = metrics({{"OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=i-7,host.name=h1"}});
    EXPECT_EQ(attrs_of(s).at("service.instance.id"), "i-7");
    EXPECT_EQ(attrs_of(s).at("host.name"), "h1");
    EXPECT_EQ(s.resource.size(), 7u) << "no key twice";
}

TEST(otlp_env, compression) {
    EXPECT_TRUE(metrics({{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"}}).gzip);
    EXPECT_TRUE(logs({{"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "GZIP"}}).gzip);
    EXPECT_FALSE(logs({{"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"}}).gzip);
    EXPECT_FALSE(metrics({{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                          {"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none"}})
                     .gzip)
        << "the signal's wins";
    EXPECT_THROW(metrics({{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}}), std::runtime_error);
}

TEST(otlp_env, tls_files) {
    const std::string dir = ::testing::TempDir();
    const std::string cert = dir + "/otlp_env_cert.pem", key = dir + "/otlp_env_key.pem";
    for (const auto& p : {cert, key}) std::ofstream(p) << "x";
    auto s = metrics({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"},
                      {"OTEL_EXPORTER_OTLP_CERTIFICATE", cert},
                      {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert},
                      {"OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", key}});
    EXPECT_EQ(s.ca_file, cert);
    EXPECT_EQ(s.client_cert, cert);
    EXPECT_EQ(s.client_key, key);
    EXPECT_TRUE(s.warnings.empty());
    try {
        metrics({{"OTEL_EXPORTER_OTLP_CERTIFICATE", dir + "/none.pem"}});
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("OTEL_EXPORTER_OTLP_CERTIFICATE=\"" + dir +
                                             "/none.pem\": cannot read it"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(metrics({{"OTEL_EXPORTER_OTLP_CLIENT_KEY", key}}), std::runtime_error)
        << "a key without its certificate";
    EXPECT_EQ(metrics({{"OTEL_EXPORTER_OTLP_CERTIFICATE", cert}}).warnings.size(), 1u)
        << "TLS files for an http endpoint";
}

TEST(otlp_env, metric_export_timeout_bounds_each_attempt) {
    auto s = metrics({{"OTEL_METRIC_EXPORT_TIMEOUT", "1500"}});
    EXPECT_EQ(s.export_timeout, 1500ms);
    EXPECT_EQ(s.timeout, 1500ms);
    s = metrics({{"OTEL_METRIC_EXPORT_TIMEOUT", "60000"}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "800"}});
    EXPECT_EQ(s.timeout, 800ms);
    EXPECT_THROW(metrics({{"OTEL_METRIC_EXPORT_TIMEOUT", "x"}}), std::runtime_error);
}

TEST(otlp_env, unhonoured_variables_are_named) {
    const std::vector<std::string> names{"PATH",
                                         "OTEL_EXPORTER_OTLP_INSECURE",
                                         "OTEL_EXPORTER_OTLP_COMPRESSION",
                                         "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
                                         "OTEL_TRACES_SAMPLER",
                                         "OTEL_METRIC_EXPORT_TIMEOUT",
                                         "OTEL_SERVICE_NAME",
                                         "OTEL_EXPORTER_OTLP_METRICS_INSECURE"};
    const std::vector<std::string> want{"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_TRACES_SAMPLER",
                                        "OTEL_EXPORTER_OTLP_METRICS_INSECURE"};
    EXPECT_EQ(unhonoured_otel_variables(names), want);
}

TEST(otlp_env, endpoint_precedence) {
    const std::map<std::string, std::string> base{
        {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"}};
    EXPECT_EQ(metrics(base).endpoint.str(), "http://c:4318/v1/metrics");
    EXPECT_EQ(logs(base).endpoint.str(), "http://c:4318/v1/logs");
    EXPECT_EQ(metrics({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c/otlp"}}).endpoint.str(),
              "https://c:443/otlp/v1/metrics");
    auto both = base;
    both["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = "http://m:9/custom";
    EXPECT_EQ(metrics(both).endpoint.str(), "http://m:9/custom") << "signal endpoint used as is";
    EXPECT_EQ(logs(both).endpoint.str(), "http://c:4318/v1/logs");
    EXPECT_EQ(metrics(both, "http://cli:1").endpoint.str(), "http://cli:1/v1/metrics")
        << "the command line wins";
    EXPECT_EQ(metrics(both, "http://cli:1/v1/metrics").endpoint.str(), "http://cli:1/v1/metrics");
    EXPECT_EQ(logs({}, "http://[::1]:2/base/").endpoint.str(), "http://[::1]:2/base/v1/logs");
}

TEST(otlp_env, bad_urls_are_errors_naming_the_source) {
    try {
        metrics({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}});
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("OTEL_EXPORTER_OTLP_ENDPOINT"), std::string::npos);
    }
    EXPECT_THROW(metrics({}, "nope"), std::runtime_error);
}

TEST(otlp_env, headers_are_percent_decoded_and_the_signal_wins) {
    const auto s = logs({{"OTEL_EXPORTER_OTLP_HEADERS",
                          "api-key=a%20b%2Cc, x-tenant = t1 ,broken,=novalue,odd=%zz"},
                         {"OTEL_EXPORTER_OTLP_LOGS_HEADERS", "X-Tenant=t2"}});
    const net::http_headers want{{"api-key", "a b,c"}, {"x-tenant", "t2"}, {"odd", "%zz"}};
    EXPECT_EQ(s.headers, want);
    EXPECT_EQ(s.warnings.size(), 2u) << "broken and =novalue";
}

// A header the request cannot carry is a startup error naming the variable: a CR or LF
// (percent-decoded, or a secret with a trailing newline) would end the header early and
// inject the rest into the request; a name that is not an HTTP token is no header at all.
TEST(otlp_env, headers_that_would_break_the_request_are_errors) {
    for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
             {"OTEL_EXPORTER_OTLP_HEADERS", "x-a=b%0D%0AX-Injected: yes"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer t%0A"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "x-a=b\ncontinued"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "x-a=b%00c"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "bad name=v"},
             {"OTEL_EXPORTER_OTLP_HEADERS", "x:y=v"},
             {"OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-a=%0Dv"},
         }) {
        try {
            logs({{var, value}});
            ADD_FAILURE() << var << "=" << value << " was accepted";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(var), std::string::npos) << e.what();
        }
    }
    // Spaces and tabs inside a value are fine (obs-text and UTF-8 too).
    EXPECT_NO_THROW(logs({{"OTEL_EXPORTER_OTLP_HEADERS", "x-a=b c\td,x-u=caf\xC3\xA9"}}));
}

TEST(otlp_env, timeouts_and_interval) {
    auto s =
        metrics({{"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"}, {"OTEL_METRIC_EXPORT_INTERVAL", "1000"}});
    EXPECT_EQ(s.timeout, 2500ms);
    EXPECT_EQ(s.export_interval, 1000ms);
    s = metrics(
        {{"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"}, {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"}});
    EXPECT_EQ(s.timeout, 700ms);
    EXPECT_THROW(metrics({{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"}}), std::runtime_error);
    EXPECT_THROW(metrics({{"OTEL_METRIC_EXPORT_INTERVAL", "0"}}), std::runtime_error);
    EXPECT_EQ(metrics({{"OTEL_EXPORTER_OTLP_TIMEOUT", ""}}).timeout, 10000ms) << "empty = unset";
}

TEST(otlp_env, service_name_wins_over_resource_attributes) {
    auto s = metrics(
        {{"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=from%20attrs"}});
    const string_attributes want{{"service.name", "from attrs"},
                                 {"deployment.environment", "prod"}};
    EXPECT_EQ(string_attributes(s.resource.begin(), s.resource.begin() + 2), want);
    s = metrics({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=a,k=v"}, {"OTEL_SERVICE_NAME", "svc"}});
    const string_attributes want2{{"service.name", "svc"}, {"k", "v"}};
    EXPECT_EQ(string_attributes(s.resource.begin(), s.resource.begin() + 2), want2);
}

TEST(otlp_env, protocol) {
    EXPECT_TRUE(metrics({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}).warnings.empty());
    EXPECT_EQ(metrics({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"}}).warnings.size(), 1u);
    try {
        metrics({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}});
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("grpc: not supported"), std::string::npos);
    }
    EXPECT_THROW(logs({{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "carrier-pigeon"},
                       {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}),
                 std::runtime_error)
        << "the signal's protocol wins";
    EXPECT_EQ(
        metrics({{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"}}).warnings.size(),
        1u);
}

TEST(otlp_env, sdk_disabled) {
    EXPECT_TRUE(
        metrics({{"OTEL_SDK_DISABLED", "TRUE"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}).disabled)
        << "nothing else is read";
    EXPECT_FALSE(metrics({{"OTEL_SDK_DISABLED", "false"}}).disabled);
    const auto s = metrics({{"OTEL_SDK_DISABLED", "yes"}});
    EXPECT_FALSE(s.disabled);
    EXPECT_EQ(s.warnings.size(), 1u);
}

}  // namespace
}  // namespace telecap::exporting
