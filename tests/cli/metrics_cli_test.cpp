// telecap metrics, --metrics and -o prometheus: startup errors (exit 2, FILE:LINE) and the
// bundled default.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/subprocess.hpp"

namespace telecap::test {
namespace {

const std::string bin = TELECAP_BIN;

TEST(MetricsCli, PrintDefaultIsAValidMetricsFile) {
    const auto printed = run({bin, "metrics", "--print-default"});
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    EXPECT_NE(printed.out.find("snakepit_python_call_duration_seconds"), std::string::npos);
    const auto path = temp_path("default-metrics.yaml");
    write_file(path, printed.out);
    const auto checked = run({bin, "metrics", "--check", path});
    EXPECT_EQ(checked.exit_code, 0) << checked.err;
    EXPECT_NE(checked.out.find("metrics"), std::string::npos) << checked.out;
}

TEST(MetricsCli, ABadMetricsFileIsAStartupErrorWithItsLine) {
    const auto path = temp_path("bad-metrics.yaml");
    write_file(path, "counters:\n  - name: c\n    event: x\n    labels: [correlation_id]\n");
    for (const std::vector<std::string>& argv :
         {std::vector<std::string>{bin, "metrics", "--check", path},
          std::vector<std::string>{bin, "parse", "--metrics", path, "-o", "null"},
          std::vector<std::string>{bin, "run", "--metrics", path, "--", "/bin/true"}}) {
        const auto r = run(argv);
        EXPECT_EQ(r.exit_code, 2) << argv[1] << ": " << r.err;
        EXPECT_NE(r.err.find(path + ":4:"), std::string::npos) << argv[1] << ": " << r.err;
    }
}

TEST(MetricsCli, ABadPrometheusAddressIsAStartupError) {
    const auto r = run({bin, "parse", "-o", "prometheus:host:99999"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("port"), std::string::npos) << r.err;
}

TEST(MetricsCli, APortInUseIsAStartupError) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(s, 1), 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    const auto port = std::to_string(ntohs(a.sin_port));
    const auto r = run({bin, "parse", "-o", "prometheus:127.0.0.1:" + port});
    ::close(s);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << r.err;
}

TEST(MetricsCli, APoolCannotHaveItsOwnMetricsExporter) {
    const auto path = temp_path("pool-prom.yaml");
    write_file(path, "pools:\n  - name: p\n    command: [/bin/true]\n    outputs: [prometheus]\n");
    const auto r = run({bin, "run", "--config", path});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("top-level outputs"), std::string::npos) << r.err;
}

TEST(MetricsCli, MetricsInARunConfigIsReadAndChecked) {
    const auto metrics = temp_path("cfg-metrics.yaml");
    write_file(metrics, "gauges:\n  - name: g\n    event: x\n");  // no measurement: line 2
    const auto cfg = temp_path("cfg-with-metrics.yaml");
    write_file(cfg, "metrics: " + metrics + "\npools:\n  - name: p\n    command: [/bin/true]\n");
    const auto r = run({bin, "run", "--config", cfg});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(metrics + ":2:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace telecap::test
