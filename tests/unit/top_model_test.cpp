// telecap top's model and text (control/top_model.hpp, control/top_text.hpp): status replies
// into snapshots, two snapshots into rates, sorting, the pool filter, fitting a width and a
// height. No sockets, no terminal.
#include "control/top_model.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/top_text.hpp"

namespace telecap::control::top {
namespace {

// A status reply as telecap writes it (docs/control.md), with the members top reads.
std::string worker_json(const std::string& id, const std::string& pool, std::uint64_t lines,
                        std::uint64_t events, const std::string& rejected = "{}", int restarts = 0,
                        const std::string& controls = "") {
    return "\"" + id + "\":{\"pool\":\"" + pool +
           "\",\"pid\":100,\"state\":\"running\",\"stopped_on_request\":false,\"restarts\":" +
           std::to_string(restarts) +
           ",\"uptime_seconds\":5.0,\"events\":" + std::to_string(events) +
           ",\"lines\":" + std::to_string(lines) +
           ",\"passthrough_lines\":0,\"rejected\":" + rejected +
           ",\"dropped\":{\"disabled\":1,\"sampled\":2,\"filtered\":0,\"rate_limited\":0}" +
           (controls.empty() ? "" : ",\"controls\":" + controls) + "}";
}

std::string reply(double uptime, const std::vector<std::string>& workers,
                  const std::string& outputs = "[]", double cpu = 1.0) {
    std::string w;
    for (const auto& x : workers) w += (w.empty() ? "" : ",") + x;
    return "{\"ok\":true,\"uptime_seconds\":" + std::to_string(uptime) +
           ",\"stopping\":false,\"pools\":[{\"name\":\"a\",\"instances\":2},{\"name\":\"b\","
           "\"instances\":1}],\"workers\":{" +
           w + "},\"listeners\":[],\"outputs\":" + outputs +
           ",\"queue_depth\":7,\"process\":{\"cpu_seconds\":" + std::to_string(cpu) +
           ",\"rss_bytes\":10485760.0}}";
}

snapshot parsed(const std::string& text) {
    snapshot s;
    const auto e = parse_status(text, s);
    EXPECT_FALSE(e) << *e;
    return s;
}

const worker_row& row_of(const view& v, const std::string& id) {
    for (const auto& r : v.workers)
        if (r.w->id == id) return r;
    ADD_FAILURE() << "no row " << id;
    return v.workers.front();
}

std::vector<std::string> ids(const view& v) {
    std::vector<std::string> out;
    for (const auto& r : v.workers) out.push_back(r.w->id);
    return out;
}

bool has(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& l : lines)
        if (l.find(text) != std::string::npos) return true;
    return false;
}

TEST(TopModel, ParsesAStatusReply) {
    const auto s = parsed(reply(
        12.5,
        {worker_json("a-0", "a", 30, 20, "{\"invalid_json\":4,\"oversize\":1}", 2,
                     R"({"enabled":true,"sampling_rate":0.1,"sampling_patterns":["x.*"],)"
                     R"("allow":[],"deny":["y","z"],"rate_limit":{"events_per_second":5.0}})")},
        R"([{"output":"output.0:jsonl","events":9,"dropped":1,"errors":2,"last_error":"disk full"}])"));
    EXPECT_DOUBLE_EQ(s.uptime_seconds, 12.5);
    ASSERT_EQ(s.pools, (std::vector<std::string>{"a", "b"}));
    ASSERT_EQ(s.workers.size(), 1u);
    const auto& w = s.workers[0];
    EXPECT_EQ(w.id, "a-0");
    EXPECT_EQ(w.pool, "a");
    EXPECT_EQ(w.state, "running");
    EXPECT_EQ(w.pid, 100);
    EXPECT_EQ(w.restarts, 2u);
    EXPECT_EQ(w.lines, 30u);
    EXPECT_EQ(w.events, 20u);
    EXPECT_EQ(w.removed, 3u);
    ASSERT_EQ(w.rejected.size(), 2u);
    EXPECT_EQ(w.rejected[0], (std::pair<std::string, std::uint64_t>{"invalid_json", 4}));
    EXPECT_EQ(w.gates, "sample 0.1(1 patterns),deny 2,limit 5/s");
    ASSERT_EQ(s.outputs.size(), 1u);
    EXPECT_EQ(s.outputs[0].id, "output.0:jsonl");
    EXPECT_EQ(s.outputs[0].events, 9u);
    EXPECT_EQ(s.outputs[0].dropped, 1u);
    EXPECT_EQ(s.outputs[0].errors, 2u);
    EXPECT_EQ(s.outputs[0].last_error, "disk full");
    EXPECT_EQ(s.queue_depth, 7u);
    EXPECT_DOUBLE_EQ(s.cpu_seconds, 1.0);
    EXPECT_DOUBLE_EQ(s.rss_bytes, 10485760.0);
}

TEST(TopModel, RefusedOrNotAReply) {
    snapshot s;
    EXPECT_EQ(parse_status(R"({"ok":false,"error":"no such thing"})", s), "no such thing");
    EXPECT_TRUE(parse_status("hello", s));
    EXPECT_TRUE(parse_status(R"({"status":1})", s));
    // An older telecap's reply, without the members top added: no outputs, CPU unknown.
    ASSERT_FALSE(parse_status(R"({"ok":true,"uptime_seconds":1,"workers":{"p-0":{"pool":"p",)"
                              R"("state":"running","events":3}}})",
                              s));
    ASSERT_EQ(s.workers.size(), 1u);
    EXPECT_EQ(s.workers[0].events, 3u);
    EXPECT_EQ(s.workers[0].gates, "on");
    EXPECT_TRUE(s.outputs.empty());
    EXPECT_LT(s.cpu_seconds, 0);
}

TEST(TopModel, RatesFromTwoSnapshots) {
    const auto before = parsed(reply(10,
                                     {worker_json("a-0", "a", 100, 50, R"({"invalid_json":2})"),
                                      worker_json("a-1", "a", 10, 10)},
                                     R"([{"output":"o","events":100}])", 1.0));
    const auto now =
        parsed(reply(12,
                     {worker_json("a-0", "a", 300, 150, R"({"invalid_json":4,"oversize":10})"),
                      worker_json("a-1", "a", 10, 10)},
                     R"([{"output":"o","events":400}])", 1.5));
    const auto v = make_view(&before, now, {});
    EXPECT_DOUBLE_EQ(v.interval_seconds, 2);
    const auto& r = row_of(v, "a-0");
    EXPECT_DOUBLE_EQ(r.lines_per_s, 100);
    EXPECT_DOUBLE_EQ(r.events_per_s, 50);
    EXPECT_DOUBLE_EQ(r.rejects_per_s, 6);
    EXPECT_EQ(r.top_reject, "oversize");  // 10 in the interval, against 2 invalid_json
    EXPECT_DOUBLE_EQ(row_of(v, "a-1").lines_per_s, 0);
    EXPECT_EQ(row_of(v, "a-1").top_reject, "");
    EXPECT_DOUBLE_EQ(v.lines_per_s, 100);
    EXPECT_DOUBLE_EQ(v.events_per_s, 50);
    EXPECT_DOUBLE_EQ(v.cpu_percent, 25);  // 0.5 s of CPU in 2 s
    ASSERT_EQ(v.outputs.size(), 1u);
    EXPECT_DOUBLE_EQ(v.outputs[0].sent_per_s, 150);
    EXPECT_EQ(v.workers_total, 2u);
    EXPECT_EQ(v.workers_running, 2u);
    EXPECT_EQ(v.gates, "2 on");
}

TEST(TopModel, ACounterThatWentDownCountsFromZero) {
    // a-0 restarted between the snapshots with fresh counters: 40 lines since, not -460.
    const auto before = parsed(reply(10, {worker_json("a-0", "a", 500, 400, R"({"oversize":9})")}));
    const auto now = parsed(reply(11, {worker_json("a-0", "a", 40, 20, R"({"oversize":3})", 1)}));
    const auto v = make_view(&before, now, {});
    EXPECT_DOUBLE_EQ(row_of(v, "a-0").lines_per_s, 40);
    EXPECT_DOUBLE_EQ(row_of(v, "a-0").events_per_s, 20);
    EXPECT_DOUBLE_EQ(row_of(v, "a-0").rejects_per_s, 3);
}

TEST(TopModel, ANewWorkerCountsFromZero) {
    const auto before = parsed(reply(10, {worker_json("a-0", "a", 5, 5)}));
    const auto now =
        parsed(reply(12, {worker_json("a-0", "a", 5, 5), worker_json("b-0", "b", 8, 6)}));
    const auto v = make_view(&before, now, {});
    EXPECT_DOUBLE_EQ(row_of(v, "b-0").lines_per_s, 4);
    EXPECT_EQ(ids(v).front(), "b-0");  // the busiest first
}

TEST(TopModel, NoRatesWithoutAnInterval) {
    const auto a = parsed(reply(10, {worker_json("a-0", "a", 5, 5)}));
    const auto b = parsed(reply(10, {worker_json("a-0", "a", 9, 9)}));
    for (const auto* before : {static_cast<const snapshot*>(nullptr), &a}) {
        const auto v = make_view(before, b, {});  // no first snapshot; the same instant twice
        EXPECT_EQ(v.interval_seconds, 0);
        EXPECT_LT(row_of(v, "a-0").lines_per_s, 0);
        EXPECT_LT(v.events_per_s, 0);
        EXPECT_LT(v.cpu_percent, 0);
        const auto text = render(v, {}, {});
        EXPECT_TRUE(has(text, "lines/s -  events/s -")) << text[1];
        EXPECT_TRUE(has(text, "first snapshot"));
    }
    // telecap restarted in between: its uptime went down; no rates rather than nonsense.
    const auto restarted = parsed(reply(1, {worker_json("a-0", "a", 1, 1)}));
    EXPECT_LT(make_view(&a, restarted, {}).workers[0].lines_per_s, 0);
}

TEST(TopModel, SortsByActivityThenNaturalName) {
    const auto before =
        parsed(reply(10, {worker_json("a-10", "a", 0, 0), worker_json("a-2", "a", 0, 0),
                          worker_json("a-1", "a", 0, 0), worker_json("b-0", "b", 0, 0)}));
    const auto now = parsed(
        reply(11, {worker_json("a-10", "a", 5, 0, "{}", 3), worker_json("a-2", "a", 5, 1, "{}", 1),
                   worker_json("a-1", "a", 1, 1), worker_json("b-0", "b", 9, 0)}));
    view_options o;
    EXPECT_EQ(ids(make_view(&before, now, o)),
              (std::vector<std::string>{"b-0", "a-2", "a-10", "a-1"}));
    o.reverse = true;
    EXPECT_EQ(ids(make_view(&before, now, o)),
              (std::vector<std::string>{"a-1", "a-2", "a-10", "b-0"}));
    o = {};
    o.sort = sort_key::name;
    EXPECT_EQ(ids(make_view(&before, now, o)),
              (std::vector<std::string>{"a-1", "a-2", "a-10", "b-0"}));
    o.sort = sort_key::restarts;
    EXPECT_EQ(ids(make_view(&before, now, o)),
              (std::vector<std::string>{"a-10", "a-2", "a-1", "b-0"}));
    o.sort = sort_key::events;
    EXPECT_EQ(ids(make_view(&before, now, o)).front(), "a-1");  // ties by name: a-1, a-2
    // s cycles through every key and back.
    sort_key k = sort_key::activity;
    for (std::size_t i = 0; i < sort_key_count; ++i) k = next(k);
    EXPECT_EQ(k, sort_key::activity);
}

TEST(TopModel, PoolFilter) {
    const auto before =
        parsed(reply(10, {worker_json("a-0", "a", 0, 0), worker_json("b-0", "b", 0, 0)}));
    const auto now =
        parsed(reply(11, {worker_json("a-0", "a", 3, 0), worker_json("b-0", "b", 7, 0)}));
    view_options o;
    o.pool = "b";
    const auto v = make_view(&before, now, o);
    EXPECT_EQ(ids(v), (std::vector<std::string>{"b-0"}));
    EXPECT_DOUBLE_EQ(v.lines_per_s, 7);  // the totals are the rows shown
    EXPECT_EQ(v.workers_total, 2u);
    const auto text = render(v, o, {});
    EXPECT_TRUE(has(text, "pool: b"));
    EXPECT_FALSE(has(text, "a-0"));
    // p cycles: every pool, a, b, every pool.
    EXPECT_EQ(next_pool(now, ""), "a");
    EXPECT_EQ(next_pool(now, "a"), "b");
    EXPECT_EQ(next_pool(now, "b"), "");
    EXPECT_EQ(next_pool(now, "gone"), "");
    o.pool = "nope";
    EXPECT_TRUE(has(render(make_view(&before, now, o), o, {}), "(no workers in pool nope)"));
}

TEST(TopText, FitsTheWidth) {
    const std::string long_id = "a-worker-with-a-very-long-name-0123456789";
    const auto before =
        parsed(reply(10, {worker_json(long_id, "a", 0, 0), worker_json("a-1", "a", 0, 0)},
                     R"([{"output":"output.0:jsonl:/var/log/x.jsonl","events":0}])"));
    const auto now = parsed(
        reply(11,
              {worker_json(long_id, "a", 9, 9, R"({"invalid_json":1})", 0, R"({"enabled":false})"),
               worker_json("a-1", "a", 1, 1)},
              R"([{"output":"output.0:jsonl:/var/log/x.jsonl","events":5,"errors":1,)"
              R"("last_error":"x.jsonl: write failed:\nNo space left on device"}])"));
    const auto v = make_view(&before, now, {});
    EXPECT_EQ(v.gates, "1 off, 1 on");  // ties by name
    // No limit: every column, whole.
    const auto wide = render(v, {}, {});
    EXPECT_TRUE(has(wide, "GATES"));
    EXPECT_TRUE(has(wide, "TOP_REJECT"));
    EXPECT_TRUE(has(wide, long_id));
    EXPECT_TRUE(has(wide, "write failed: No space left on device"));  // one line
    for (std::size_t width : {200u, 120u, 80u, 60u, 40u, 20u}) {
        text_options t;
        t.width = width;
        const auto lines = render(v, {}, t);
        for (const auto& l : lines) EXPECT_LE(l.size(), width) << "at " << width << ": " << l;
        if (width >= 40) {
            EXPECT_TRUE(has(lines, "WORKER")) << width;
            EXPECT_TRUE(has(lines, "LINES/S")) << width;
        }
    }
    text_options t;
    t.width = 80;
    const auto narrow = render(v, {}, t);
    EXPECT_FALSE(has(narrow, "GATES"));  // the least useful column goes first
    EXPECT_TRUE(has(narrow, "EVENTS/S"));
    EXPECT_FALSE(has(narrow, long_id));
    EXPECT_TRUE(has(narrow, "a-worker-with~"));  // cut, and marked
}

TEST(TopText, FitsTheHeight) {
    std::vector<std::string> b, n;
    for (int i = 0; i < 30; ++i) {
        b.push_back(worker_json("a-" + std::to_string(i), "a", 0, 0));
        n.push_back(worker_json("a-" + std::to_string(i), "a", static_cast<std::uint64_t>(i), 0));
    }
    const auto before = parsed(reply(10, b, R"([{"output":"o","events":0}])"));
    const auto now = parsed(reply(11, n, R"([{"output":"o","events":0}])"));
    text_options t;
    t.height = 15;
    t.keys = true;
    const auto lines = render(make_view(&before, now, {}), {}, t);
    ASSERT_LE(lines.size(), 15u);
    EXPECT_TRUE(has(lines, "keys: q quit"));
    EXPECT_TRUE(has(lines, "a-29"));  // the busiest
    EXPECT_FALSE(has(lines, "a-0 "));
    EXPECT_TRUE(has(lines, "more workers"));
    EXPECT_TRUE(has(lines, "OUTPUT"));  // the outputs keep their place
    EXPECT_EQ(render(make_view(&before, now, {}), {}, {}).size(), 4u + 1 + 1 + 30 + 1 + 1 + 1);
}

TEST(TopText, Formats) {
    EXPECT_EQ(format_rate(-1), "-");
    EXPECT_EQ(format_rate(0), "0");
    EXPECT_EQ(format_rate(3.46), "3.5");
    EXPECT_EQ(format_rate(120.2), "120");
    EXPECT_EQ(format_rate(123456), "123.5k");
    EXPECT_EQ(format_rate(45e6), "45.0M");
    EXPECT_EQ(format_count(99999), "99999");
    EXPECT_EQ(format_count(123456), "123k");
    EXPECT_EQ(format_count(45000000), "45.0M");
    EXPECT_EQ(format_duration(45.9), "45s");
    EXPECT_EQ(format_duration(723), "12m03s");
    EXPECT_EQ(format_duration(3 * 3600 + 4 * 60), "3h04m");
    EXPECT_EQ(format_duration(5 * 86400 + 2 * 3600), "5d02h");
}

// The run's losses as status writes them (docs/control.md): events by reason, then lines.
std::string with_losses(std::string r, std::uint64_t output, std::uint64_t tap,
                        std::uint64_t pass_lines) {
    r.pop_back();  // the closing brace
    return r +
           ",\"dropped\":{\"queue_full\":0,\"shutdown\":0,\"output\":" + std::to_string(output) +
           ",\"tap\":" + std::to_string(tap) +
           "},\"dropped_lines\":{\"passthrough\":" + std::to_string(pass_lines) +
           ",\"rejects\":0}}";
}

TEST(TopModel, ParsesTheRunsLosses) {
    const auto s = parsed(with_losses(reply(1, {}), 12, 3, 4));
    ASSERT_EQ(s.losses.size(), 6u);
    EXPECT_EQ(s.losses[0].reason, "queue_full");
    EXPECT_EQ(s.losses[2].reason, "output");
    EXPECT_EQ(s.losses[2].count, 12u);
    EXPECT_EQ(s.losses[3].reason, "tap");
    EXPECT_EQ(s.losses[4].reason, "passthrough lines");
    EXPECT_EQ(s.losses[4].count, 4u);
    EXPECT_TRUE(parsed(reply(1, {})).losses.empty());  // an older telecap says none
}

TEST(TopText, ShowsTheRunsLossesInTheSummary) {
    const auto before = parsed(with_losses(reply(10, {}), 10, 3, 0));
    const auto now = parsed(with_losses(reply(12, {}), 14, 3, 4));
    const auto lines = render(make_view(&before, now, {}), {}, {});
    // Only the reasons with losses; a rate for those that grew over the interval.
    EXPECT_TRUE(has(lines, "lost: output 14 (2.0/s), tap 3, passthrough lines 4 (2.0/s)"))
        << lines[3];
    EXPECT_FALSE(has(lines, "queue_full"));
    const auto none = parsed(with_losses(reply(12, {}), 0, 0, 0));
    EXPECT_TRUE(has(render(make_view(nullptr, none, {}), {}, {}), "lost: none"));
    EXPECT_FALSE(has(render(make_view(nullptr, parsed(reply(12, {})), {}), {}, {}), "lost:"));
}

// Whether `s` is valid UTF-8 (no sequence cut).
bool valid_utf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = c < 0x80         ? 1
                              : (c >> 5) == 6  ? 2
                              : (c >> 4) == 14 ? 3
                              : (c >> 3) == 30 ? 4
                                               : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}

TEST(TopText, DisplayWidthCountsColumnsNotBytes) {
    EXPECT_EQ(display_width("abc"), 3u);
    EXPECT_EQ(display_width("caf\u00e9"), 4u);         // é: 2 bytes, 1 column
    EXPECT_EQ(display_width("\u7f51\u7edc"), 4u);      // 网络: 6 bytes, 2 wide characters
    EXPECT_EQ(display_width("e\u0301"), 1u);           // e and a combining acute
    EXPECT_EQ(display_width("\uff21"), 2u);            // a fullwidth A
    EXPECT_EQ(display_width("\xf0\x9f\x98\x80"), 2u);  // an emoji
    EXPECT_EQ(display_width("a\xff"
                            "b"),
              3u);  // a byte that is not UTF-8: 1
}

TEST(TopText, NonAsciiNamesKeepTheColumnsAligned) {
    const std::string wide_id = "\u7f51\u7edc\u7f51\u7edc\u7f51\u7edc\u7f51\u7edc\u7f51\u7edc-0";
    const std::vector<std::string> ids = {"caf\u00e9-1", wide_id, "plain-2"};
    std::vector<std::string> b, n;
    for (const auto& id : ids) {
        b.push_back(worker_json(id, "\u6570\u636e", 0, 0));
        n.push_back(worker_json(id, "\u6570\u636e", 5, 5));
    }
    // A JSON-escaped CJK text, é, and a byte that is not UTF-8 (RapidJSON keeps it).
    const std::string out = R"([{"output":"o","events":1,"errors":1,)"
                            R"("last_error":"\u78c1\u76d8\u5df2\u6ee1 \u00e9criture )" +
                            std::string("\xff") + R"("}])";
    const auto before = parsed(reply(10, b, out));
    const auto now = parsed(reply(11, n, out));
    const auto v = make_view(&before, now, {});
    const auto header_at = [](const std::vector<std::string>& lines, const std::string& word) {
        for (const auto& l : lines)
            if (l.rfind("WORKER ", 0) == 0) return display_width(l.substr(0, l.find(word)));
        return std::size_t{0};
    };
    for (std::size_t width : {0u, 120u, 70u, 50u}) {
        text_options t;
        t.width = width;
        const auto lines = render(v, {}, t);
        // STATE's cells start where its header does, in columns, whatever the names' bytes.
        const std::size_t state = header_at(lines, "STATE");
        ASSERT_GT(state, 0u) << width;
        std::size_t rows = 0;
        bool table = false;
        for (const auto& l : lines) {
            EXPECT_TRUE(valid_utf8(l)) << width << ": " << l;
            if (width) {
                EXPECT_LE(display_width(l), width) << l;
            }
            table = l.rfind("WORKER ", 0) == 0 || (table && !l.empty());
            if (const auto at = l.find(" running"); table && at != std::string::npos) {
                EXPECT_EQ(display_width(l.substr(0, at + 1)), state) << width << ": " << l;
                ++rows;
            }
        }
        EXPECT_EQ(rows, 3u) << width;
    }
    // Cut between two wide characters, and marked.
    text_options t;
    t.width = 50;
    const auto narrow = render(v, {}, t);
    EXPECT_FALSE(has(narrow, wide_id));
    EXPECT_TRUE(has(narrow, "\u7f51\u7edc~") || has(narrow, "\u7edc\u7f51~") ||
                has(narrow, "\u7f51~") || has(narrow, "\u7edc~"));
    // The byte that is not UTF-8 in the last error is shown as '?'.
    EXPECT_TRUE(has(render(v, {}, {}), "\u00e9criture ?"));
}

}  // namespace
}  // namespace telecap::control::top
