// metrics/collectors: the streams' and the process's series, and the registry as JSON.
#include "metrics/collectors.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace telecap::metrics {
namespace {

TEST(collectors_json, keys_are_prometheus_series_and_values_numbers) {
    std::vector<sample> s{
        {"a_total", {}, kind::counter, 3},
        {"b", {{"path", "x\"y\\z\nw"}, {"pool", "p"}}, kind::gauge, 0.25},
        {"c", {}, kind::gauge, 1e300 * 1e300},  // not finite: null, never "inf"
    };
    EXPECT_EQ(to_json(s),
              R"({"a_total":3,"b{path=\"x\\\"y\\\\z\\nw\",pool=\"p\"}":0.25,"c":null})");
    EXPECT_EQ(to_json({}), "{}");
}

TEST(collectors, the_process_series_are_there_and_plausible) {
    registry r;
    add_process_collector(r);
    const auto s = r.snapshot();
    EXPECT_GE(registry::find(s, "process_cpu_seconds_total"), 0.0);
    EXPECT_GT(registry::find(s, "process_max_resident_memory_bytes"), 1024.0 * 1024.0);
    const double fds = registry::find(s, "process_open_fds");
    const int extra = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(extra, 0);
    EXPECT_EQ(registry::find(r.snapshot(), "process_open_fds"), fds + 1);
    ::close(extra);
}

TEST(collectors, a_streams_counters_are_read_live) {
    char dir[] = "/tmp/telecap-collectors.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/out.txt";
    {
        stream_set streams;
        const auto w = streams.file(path, "output");
        registry r;
        const auto id = add_stream_collector(r, streams);
        const label_set l{{"stream", path}};
        EXPECT_EQ(registry::find(r.snapshot(), "telecap_stream_written_lines_total", l), 0.0);
        ASSERT_TRUE(w->append("one\ntwo\n", 2));
        ASSERT_TRUE(w->drain(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
        const auto s = r.snapshot();
        EXPECT_EQ(registry::find(s, "telecap_stream_written_lines_total", l), 2.0);
        EXPECT_EQ(registry::find(s, "telecap_stream_written_bytes_total", l), 8.0);
        EXPECT_EQ(registry::find(s, "telecap_stream_dropped_lines_total", l), 0.0);
        EXPECT_EQ(registry::find(s, "telecap_stream_buffered_bytes", l), 0.0);
        r.remove_collector(id);
        EXPECT_EQ(registry::find(r.snapshot(), "telecap_stream_written_lines_total", l), -1.0);
    }
    ::unlink(path.c_str());
    ::rmdir(dir);
}

}  // namespace
}  // namespace telecap::metrics
