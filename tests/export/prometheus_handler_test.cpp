// -o prometheus: a real HTTP server on an ephemeral port, scraped with an HTTP client.
#include "outputs/prometheus_handler.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace telecap {
namespace {

metrics::family one_counter(double v) {
    metrics::family f;
    f.name = "things";
    f.description = "Things.";
    f.type = metrics::family_type::counter;
    metrics::point p;
    p.value = v;
    f.points.push_back(p);
    return f;
}

prometheus_address any_port() {
    prometheus_address a;
    a.port = 0;
    return a;
}

TEST(PrometheusHandlerTest, ServesTheSourceAtEveryScrape) {
    std::atomic<int> calls{0};
    prometheus_handler h(any_port(),
                         [&] { return std::vector<metrics::family>{one_counter(++calls)}; });
    ASSERT_GT(h.port(), 0);
    httplib::Client c("127.0.0.1", h.port());
    auto r1 = c.Get("/metrics");
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->status, 200);
    EXPECT_EQ(r1->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r1->body,
              "# HELP things_total Things.\n# TYPE things_total counter\nthings_total 1\n");
    auto r2 = c.Get("/metrics");
    ASSERT_TRUE(r2);
    EXPECT_NE(r2->body.find("things_total 2\n"), std::string::npos);
    EXPECT_EQ(h.scrapes(), 2u);
}

TEST(PrometheusHandlerTest, OpenMetricsWhenAsked) {
    prometheus_handler h(any_port(), [] { return std::vector<metrics::family>{one_counter(1)}; });
    httplib::Client c("127.0.0.1", h.port());
    auto r = c.Get("/metrics", {{"Accept", "application/openmetrics-text; version=1.0.0"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Type"),
              "application/openmetrics-text; version=1.0.0; charset=utf-8");
    EXPECT_EQ(r->body, "# HELP things Things.\n# TYPE things counter\nthings_total 1\n# EOF\n");
}

TEST(PrometheusHandlerTest, OtherPathsAreNotFound) {
    prometheus_handler h(any_port(), [] { return std::vector<metrics::family>{}; });
    httplib::Client c("127.0.0.1", h.port());
    auto r = c.Get("/nope");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_NE(h.counters_json().find("\"not_found\":1"), std::string::npos) << h.counters_json();
}

TEST(PrometheusHandlerTest, AFailedScrapeIsAnError) {
    // The families' source throws (a metric store gone wrong): the scrape is answered 500, and
    // the failure is the output's error for ctl status and top.
    std::atomic<int> calls{0};
    prometheus_handler h(any_port(), [&]() -> std::vector<metrics::family> {
        if (++calls > 1) throw std::runtime_error("no families today");
        return {one_counter(1)};
    });
    EXPECT_EQ(h.errors(), 0u);
    EXPECT_EQ(h.last_error(), "");
    httplib::Client c("127.0.0.1", h.port());
    auto ok = c.Get("/metrics");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    auto failed = c.Get("/metrics");
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->status, 500);
    // Counted before the reply was written.
    EXPECT_EQ(h.errors(), 1u);
    EXPECT_EQ(h.last_error(), "/metrics: answered 500: no families today");
}

TEST(PrometheusHandlerTest, APortInUseIsAnErrorNamingIt) {
    prometheus_handler first(any_port(), [] { return std::vector<metrics::family>{}; });
    prometheus_address same;
    same.port = first.port();
    try {
        prometheus_handler second(same, [] { return std::vector<metrics::family>{}; });
        FAIL() << "a second server bound the same port";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())),
                  std::string::npos)
            << e.what();
    }
}

TEST(PrometheusHandlerTest, StopsPromptlyWithAScraperConnected) {
    auto h = std::make_unique<prometheus_handler>(
        any_port(), [] { return std::vector<metrics::family>{one_counter(1)}; });
    httplib::Client c("127.0.0.1", h->port());
    c.set_keep_alive(true);
    ASSERT_TRUE(c.Get("/metrics"));
    const auto t0 = std::chrono::steady_clock::now();
    h.reset();  // a kept-alive connection must not hold the server up
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(PrometheusHandlerTest, AddressParsing) {
    prometheus_address a;
    EXPECT_FALSE(parse_prometheus_address("", a));
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9464);
    EXPECT_FALSE(parse_prometheus_address("0.0.0.0:9100", a));
    EXPECT_EQ(a.host, "0.0.0.0");
    EXPECT_EQ(a.port, 9100);
    EXPECT_FALSE(parse_prometheus_address("[::1]:9200", a));
    EXPECT_EQ(a.host, "::1");
    EXPECT_EQ(a.port, 9200);
    EXPECT_FALSE(parse_prometheus_address("9300", a));
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9300);
    EXPECT_TRUE(parse_prometheus_address("host:", a));
    EXPECT_TRUE(parse_prometheus_address("host:70000", a));
    EXPECT_TRUE(parse_prometheus_address(":9100", a));
    EXPECT_TRUE(parse_prometheus_address("::1:9100", a));
    EXPECT_TRUE(parse_prometheus_address("[::1]9100", a));
}

}  // namespace
}  // namespace telecap
