// capture_pipeline: nothing is lost. Accepted events leave the stream; every other byte passes
// through unchanged, in order; every line is counted.
#include "capture/pipeline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "capture/event_json.hpp"

namespace telecap {
namespace {

using namespace std::string_literals;

class collecting_events final : public event_sink {
public:
    void on_event(event& ev) override { events.push_back(ev); }
    std::vector<event> events;
};

class collecting_passthrough final : public passthrough_sink {
public:
    void write(std::string_view bytes, bool starts_line, bool ends_line) override {
        if (starts_line == in_line_) protocol_errors += "starts_line out of order;";
        in_line_ = !ends_line;
        if (starts_line) ++lines_started;
        text.append(bytes);
    }
    std::string text;
    std::string protocol_errors;
    std::size_t lines_started = 0;
    bool in_line() const { return in_line_; }

private:
    bool in_line_ = false;
};

struct reject_record {
    reject_reason reason;
    std::string detail;
    std::uint64_t line_no;
    std::size_t offset;
    std::string text;
    bool truncated;
};

class collecting_rejects final : public reject_sink {
public:
    void on_reject(const reject_info& r) override {
        rejects.push_back({r.reason, std::string(r.detail), r.line_no, r.offset,
                           std::string(r.text), r.truncated});
    }
    std::vector<reject_record> rejects;
};

worker_context test_context() {
    worker_context ctx;
    ctx.node = "n1";
    ctx.pool_name = "p";
    return ctx;
}

struct run_result {
    std::vector<event> events;
    std::string passthrough;
    std::vector<reject_record> rejects;
    capture_stats stats;
};

// Runs `input` through a pipeline, fed in chunks of `chunk` bytes (0: all at once).
run_result run(std::string_view input, std::size_t chunk = 0, pipeline_options opts = {},
               const catalog& cat = catalog::builtin()) {
    collecting_events ev;
    collecting_passthrough pass;
    collecting_rejects rej;
    run_result r;
    {
        capture_pipeline p(cat, test_context(), opts, &ev, &pass, &rej, r.stats);
        if (chunk == 0) {
            p.feed(input);
        } else {
            for (std::size_t at = 0; at < input.size(); at += chunk)
                p.feed(input.substr(at, chunk));
        }
        p.finish();
        EXPECT_FALSE(p.mid_line());
    }
    EXPECT_EQ(pass.protocol_errors, "");
    EXPECT_FALSE(pass.in_line()) << "a pass-through line was never ended";
    EXPECT_EQ(pass.lines_started, r.stats.passthrough_lines);
    r.events = std::move(ev.events);
    r.passthrough = std::move(pass.text);
    r.rejects = std::move(rej.rejects);
    return r;
}

std::string telemetry(std::string_view name, std::string_view extra = "") {
    return R"(TELEMETRY:{"event": ")" + std::string(name) +
           R"(", "measurements": {"count": 1}, "metadata": {"tool": "t")" + std::string(extra) +
           R"(}, "timestamp_ns": 7, "correlation_id": ""})";
}

// An input as pieces (each one line with its ending, or a last line without one), and whether
// the pipeline should accept it as an event.
struct piece {
    std::string bytes;
    bool accepted;
    const char* reject = nullptr;  // the expected reject reason, when rejected telemetry
};

constexpr std::size_t test_max_line = 300;

std::vector<piece> mixed_pieces() {
    const std::string big_payload(400, 'x');
    return {
        {telemetry("python.call.start") + "\n", true},
        {"plain log line\n", false},
        {telemetry("tool.execution.stop") + "\r\n", true},
        {"lone\rcarriage return\n", false},
        {"\n", false},
        {"\r\n", false},
        {"nul\0byte\0\n"s, false},
        {"bad utf8 \xff\xfe\xc0\n", false},
        {"TELEMETRY:{not json}\n", false, "invalid_json"},
        {"TELEMETRY:{\"event\": \"python.call.start\", \"metadata\": {\"k\": \"\xff\"}}\n", false,
         "invalid_utf8"},
        {"TELEMETRY:{\"event\": \"python.call.start\"\0}\r\n"s, false, "invalid_json"},
        {telemetry("no.such.event") + "\n", false, "unknown_event"},
        {R"(TELEMETRY:{"measurements": {}})"
         "\n",
         false, "bad_shape"},
        {R"(TELEMETRY:{"event": "python.call.stop", "measurements": {"count": null}})"
         "\n",
         false, "bad_measurement"},
        {R"(TELEMETRY:{"event": "python.call.stop", "measurements": {"bogus": 1}})"
         "\r\n",
         false, "unknown_measurement"},
        {"TELEMETRY:" + std::string(70, '[') + "\n", false, "bad_shape"},
        {"TELEMETRY:{\"event\": \"e\", \"x\": " + std::string(70, '[') + "\n", false, "too_deep"},
        {"TELEMETRY_ERROR: cannot write telemetry: broken pipe\n", false},
        {"TELEMETRY:\n", false, "invalid_json"},
        {telemetry("python.call.stop", R"(, "big": ")" + big_payload + "\"") + "\n", false,
         "oversize"},
        {telemetry("python.call.stop", R"(, "big": ")" + big_payload + "\"") + "\r\n", false,
         "oversize"},
        {std::string(1000, 'p') + "\n", false},
        {std::string(1000, 'q') + "\r\n", false},
        {"TELEMETRY_ERROR: " + std::string(500, 'e') + "\n", false},
        {" TELEMETRY:" + telemetry("python.call.start").substr(10) + "\n", false},  // not at start
        {"telemetry:" + telemetry("python.call.start").substr(10) + "\n", false},   // case matters
        {telemetry("python.memory.sampled") + "\n", true},
        {"last line without newline \xff", false},
    };
}

std::string concat(const std::vector<piece>& pieces, bool only_passed) {
    std::string out;
    for (const auto& p : pieces)
        if (!only_passed || !p.accepted) out += p.bytes;
    return out;
}

TEST(Pipeline, PassThroughIsInputMinusAcceptedLinesByteForByte) {
    const auto pieces = mixed_pieces();
    const std::string input = concat(pieces, false);
    const std::string expected = concat(pieces, true);
    pipeline_options opts;
    opts.max_line = test_max_line;
    for (std::size_t chunk : {0u, 1u, 2u, 3u, 5u, 7u, 13u, 64u, 301u, 4096u, 65536u}) {
        SCOPED_TRACE("chunk " + std::to_string(chunk));
        const auto r = run(input, chunk, opts);
        EXPECT_EQ(r.passthrough, expected);
        ASSERT_EQ(r.events.size(), 3u);
        EXPECT_EQ(r.events[0].dotted_name(), "snakepit.python.call.start");
        EXPECT_EQ(r.events[1].dotted_name(), "snakepit.python.tool.execution.stop");
        EXPECT_EQ(r.events[2].dotted_name(), "snakepit.python.memory.sampled");
        EXPECT_EQ(r.stats.bytes, input.size());
    }
}

TEST(Pipeline, CountersAddUp) {
    const auto pieces = mixed_pieces();
    const std::string input = concat(pieces, false);
    pipeline_options opts;
    opts.max_line = test_max_line;
    const auto r = run(input, 0, opts);
    const capture_stats& s = r.stats;
    EXPECT_EQ(s.lines, pieces.size());
    EXPECT_EQ(s.lines, s.events + s.passthrough_lines);
    EXPECT_EQ(s.events, 3u);
    std::size_t telemetry_lines = 3;
    std::map<std::string, std::uint64_t> expected_rejects;
    for (const auto& p : pieces)
        if (p.reject) {
            ++telemetry_lines;
            ++expected_rejects[p.reject];
        }
    EXPECT_EQ(s.telemetry_lines, telemetry_lines);
    EXPECT_EQ(s.emitter_errors, 2u);
    EXPECT_EQ(s.long_lines, 5u);  // two oversize telemetry, two plain, one TELEMETRY_ERROR
    for (std::size_t i = 0; i < s.rejected.size(); ++i) {
        const std::string reason(to_string(static_cast<reject_reason>(i)));
        EXPECT_EQ(s.rejected[i], expected_rejects[reason]) << reason;
    }
    EXPECT_EQ(s.rejected_total(), telemetry_lines - 3);
    EXPECT_EQ(s.handler_failures, 0u);
    for (auto d : s.dropped) EXPECT_EQ(d, 0u);
}

TEST(Pipeline, RejectRecordsHaveLineNumbersAndReasons) {
    const auto pieces = mixed_pieces();
    pipeline_options opts;
    opts.max_line = test_max_line;
    const auto r = run(concat(pieces, false), 7, opts);
    std::vector<std::pair<std::uint64_t, std::string>> expected, got;
    for (std::size_t i = 0; i < pieces.size(); ++i)
        if (pieces[i].reject) expected.emplace_back(i + 1, pieces[i].reject);
    for (const auto& rec : r.rejects) got.emplace_back(rec.line_no, to_string(rec.reason));
    EXPECT_EQ(got, expected);
    for (const auto& rec : r.rejects) {
        EXPECT_FALSE(rec.detail.empty()) << rec.line_no;
        const auto& p = pieces[rec.line_no - 1];
        if (rec.reason == reject_reason::oversize) {
            EXPECT_TRUE(rec.truncated);
            EXPECT_EQ(rec.text, p.bytes.substr(0, rec.text.size()));
            EXPECT_GT(rec.text.size(), test_max_line);
            EXPECT_LT(rec.text.size(), p.bytes.size());
        } else {
            EXPECT_FALSE(rec.truncated);
            // The line without its ending.
            std::string line = p.bytes;
            if (line.ends_with("\r\n"))
                line.resize(line.size() - 2);
            else if (line.ends_with("\n"))
                line.pop_back();
            EXPECT_EQ(rec.text, line) << rec.line_no;
        }
    }
}

TEST(Pipeline, RejectOffsetsCountFromTheStartOfTheLine) {
    const auto r = run("TELEMETRY:{\"event\": \"e\",}\n");
    ASSERT_EQ(r.rejects.size(), 1u);
    EXPECT_EQ(r.rejects[0].reason, reject_reason::invalid_json);
    EXPECT_EQ(r.rejects[0].offset, 10u + 14u);  // prefix + offset in the payload
    EXPECT_EQ(r.rejects[0].line_no, 1u);
}

TEST(Pipeline, OversizeOffsetIsMaxLine) {
    pipeline_options opts;
    opts.max_line = 64;
    const auto r = run(
        "ok\n" + telemetry("python.call.start", R"(, "pad": ")" + std::string(100, 'z') + "\"") +
            "\n",
        0, opts);
    ASSERT_EQ(r.rejects.size(), 1u);
    EXPECT_EQ(r.rejects[0].reason, reject_reason::oversize);
    EXPECT_EQ(r.rejects[0].line_no, 2u);
    EXPECT_EQ(r.rejects[0].offset, 64u);
    EXPECT_EQ(r.stats.rejected[static_cast<std::size_t>(reject_reason::oversize)], 1u);
}

// A valid telemetry line of exactly `size` bytes (padded with a metadata value).
std::string telemetry_of_size(std::size_t size) {
    const std::size_t base = telemetry("python.call.start", R"(, "pad": "")").size();
    return telemetry("python.call.start", R"(, "pad": ")" + std::string(size - base, 'x') + "\"");
}

TEST(Pipeline, ATelemetryLineOfExactlyMaxLineIsAccepted) {
    const std::size_t max_line = 200;
    const std::string line = telemetry_of_size(max_line);
    ASSERT_EQ(line.size(), max_line);
    pipeline_options opts;
    opts.max_line = max_line;
    for (const char* eol : {"\n", "\r\n", ""}) {
        const auto r = run(line + eol, 0, opts);
        EXPECT_EQ(r.stats.events, 1u) << testing::PrintToString(std::string(eol));
        EXPECT_EQ(r.passthrough, "");
    }
    const auto longer = run(line + "y\n", 0, opts);
    EXPECT_EQ(longer.stats.events, 0u);
}

TEST(Pipeline, ATelemetryLineOfExactlyMaxLineWithCrLfSplitBeforeTheLf) {
    // The consequence of LineFramer.LineOfMaxLineWithCrLfSplitBetweenCrAndLf: a read that ends
    // between "\r" and "\n" turns an acceptable event into an oversize reject.
    const std::size_t max_line = 200;
    const std::string line = telemetry_of_size(max_line);
    ASSERT_EQ(line.size(), max_line);
    pipeline_options opts;
    opts.max_line = max_line;
    const auto r = run(line + "\r\n", max_line + 1, opts);  // chunks: line + "\r", then "\n"
    EXPECT_EQ(r.passthrough.size() + r.stats.events * (max_line + 2), max_line + 2);
    EXPECT_EQ(r.passthrough, "");
}

TEST(Pipeline, LastTelemetryLineWithoutNewlineIsAnEvent) {
    const std::string input = "log\n" + telemetry("python.call.stop");
    for (std::size_t chunk : {0u, 1u, 10u}) {
        const auto r = run(input, chunk);
        EXPECT_EQ(r.stats.events, 1u);
        EXPECT_EQ(r.passthrough, "log\n");
        EXPECT_EQ(r.stats.lines, 2u);
    }
}

TEST(Pipeline, LastLineWithoutNewlineGetsNoNewline) {
    const auto r = run("a\nb");
    EXPECT_EQ(r.passthrough, "a\nb");
    EXPECT_EQ(r.stats.lines, 2u);
    const auto cr = run("a\r");
    EXPECT_EQ(cr.passthrough, "a\r");
}

TEST(Pipeline, EmptyInput) {
    const auto r = run("");
    EXPECT_EQ(r.passthrough, "");
    EXPECT_EQ(r.stats.lines, 0u);
    EXPECT_EQ(r.stats.bytes, 0u);
}

TEST(Pipeline, AcceptedEventIsNormalized) {
    const auto r = run(telemetry("tool.execution.start") + "\n");
    ASSERT_EQ(r.events.size(), 1u);
    std::string json;
    append_event_json(json, r.events[0]);
    EXPECT_EQ(json,
              R"({"event":["snakepit","python","tool","execution","start"],)"
              R"("measurements":{"count":1},"metadata":{"tool":"t","node":"n1","pool_name":"p",)"
              R"("correlation_id":null,"timestamp_ns":7},"timestamp_ns":7,"correlation_id":null})"
              "\n");
}

TEST(Pipeline, MissingTimestampUsesTheReceiveTime) {
    const auto now = [] {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    const auto before = now();
    const auto r = run(R"(TELEMETRY:{"event": "python.call.start"})"
                       "\n");
    const auto after = now();
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_GE(r.events[0].timestamp_ns, before);
    EXPECT_LE(r.events[0].timestamp_ns, after);
}

TEST(Pipeline, CustomPrefix) {
    pipeline_options opts;
    opts.prefix = "@@T:";
    const std::string mine = "@@T:" + telemetry("python.call.start").substr(10) + "\n";
    const std::string other = telemetry("python.call.start") + "\n";
    const std::string input =
        mine + other + "@@T_ERROR: oops\n" + "TELEMETRY_ERROR: not mine\n" + "@@T:{bad\n";
    const auto r = run(input, 0, opts);
    EXPECT_EQ(r.stats.events, 1u);
    EXPECT_EQ(r.passthrough,
              other + "@@T_ERROR: oops\n" + "TELEMETRY_ERROR: not mine\n" + "@@T:{bad\n");
    EXPECT_EQ(r.stats.telemetry_lines, 2u);
    EXPECT_EQ(r.stats.emitter_errors, 1u);
    ASSERT_EQ(r.rejects.size(), 1u);
    EXPECT_EQ(r.rejects[0].line_no, 5u);
    EXPECT_EQ(r.rejects[0].offset, 4u + 1u);  // "{b": a name expected at payload offset 1
}

TEST(Pipeline, NullSinksStillCount) {
    capture_stats stats;
    const catalog cat = catalog::builtin();
    capture_pipeline p(cat, test_context(), {}, nullptr, nullptr, nullptr, stats);
    p.feed(telemetry("python.call.start") + "\nplain\nTELEMETRY:{\n");
    p.finish();
    EXPECT_EQ(stats.events, 1u);
    EXPECT_EQ(stats.passthrough_lines, 2u);
    EXPECT_EQ(stats.rejected_for(reject_reason::invalid_json), 1u);
}

TEST(Pipeline, MidLineTracksPartialInput) {
    capture_stats stats;
    const catalog cat = catalog::builtin();
    pipeline_options opts;
    opts.max_line = 64;
    collecting_passthrough pass;
    capture_pipeline p(cat, test_context(), opts, nullptr, &pass, nullptr, stats);
    EXPECT_FALSE(p.mid_line());
    p.feed("abc");
    EXPECT_TRUE(p.mid_line());
    p.feed("\n");
    EXPECT_FALSE(p.mid_line());
    p.feed(std::string(100, 'l'));  // a long line in progress
    EXPECT_TRUE(p.mid_line());
    p.feed("\n");
    EXPECT_FALSE(p.mid_line());
    p.finish();
    EXPECT_EQ(pass.text, "abc\n" + std::string(100, 'l') + "\n");
}

TEST(Pipeline, StatsAccumulate) {
    capture_stats a, b;
    a.lines = 2;
    a.rejected_for(reject_reason::oversize) = 1;
    a.dropped_for(drop_reason::queue_full) = 3;
    b.lines = 5;
    b.events = 1;
    b.rejected_for(reject_reason::oversize) = 2;
    b.handler_failures = 4;
    a += b;
    EXPECT_EQ(a.lines, 7u);
    EXPECT_EQ(a.events, 1u);
    EXPECT_EQ(a.rejected_for(reject_reason::oversize), 3u);
    EXPECT_EQ(a.dropped_for(drop_reason::queue_full), 3u);
    EXPECT_EQ(a.handler_failures, 4u);
    EXPECT_EQ(a.rejected_total(), 3u);
}

TEST(Pipeline, StatsJsonNamesEveryCounter) {
    capture_stats s;
    s.bytes = 1;
    s.lines = 2;
    s.telemetry_lines = 3;
    s.events = 4;
    s.passthrough_lines = 5;
    s.emitter_errors = 6;
    s.long_lines = 7;
    s.rejected_for(reject_reason::bad_measurement) = 8;
    s.dropped_for(drop_reason::shutdown) = 9;
    s.handler_failures = 10;
    s.long_lines_split = 11;
    s.partial_lines = 12;
    EXPECT_EQ(stats_to_json(s),
              R"({"bytes":1,"lines":2,"telemetry_lines":3,"events":4,"passthrough_lines":5,)"
              R"("emitter_errors":6,"long_lines":7,"long_lines_split":11,"partial_lines":12,)"
              R"("rejected":{"invalid_json":0,"bad_shape":0,)"
              R"("invalid_utf8":0,"oversize":0,"too_deep":0,"unknown_event":0,)"
              R"("unknown_measurement":0,"bad_measurement":8},"dropped":{"queue_full":0,)"
              R"("shutdown":9,"output":0},"handler_failures":10})"
              "\n");
}

}  // namespace
}  // namespace telecap
