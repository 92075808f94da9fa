// control/tap: the tap's handler (filter by scope and wire-name glob before rendering, batches,
// limit), its bounded buffer (whole batches dropped, counted, and marked where the gap is; one
// wake-up per empty-to-not-empty), the hub (open, refuse, close, counters), and the control
// server turning a connection into a stream, on a real event loop without processes.
#include "control/tap.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "capture/bus.hpp"
#include "capture/event_json.hpp"
#include "control/request.hpp"
#include "control/server.hpp"
#include "loop/event_loop.hpp"
#include "outputs/jsonl_handler.hpp"
#include "support/sockets.hpp"
#include "support/unit_helpers.hpp"

namespace telecap::control {
namespace {

using namespace std::chrono_literals;

// Two catalog entries (their addresses are the events' name_id) and their wire names.
struct entry {
    std::vector<std::string> parts;
    std::string wire;
};
const entry tool_start{{"snakepit", "python", "tool", "execution", "start"},
                       "tool.execution.start"};
const entry call_stop{{"snakepit", "python", "call", "stop"}, "python.call.stop"};

event make(const entry& e, const std::string& pool, const std::string& worker, int n = 0) {
    event ev;
    ev.name = e.parts;
    ev.name_id = &e;
    ev.measurements = {{"count", std::int64_t{n}}};
    ev.metadata = {{"worker_id", worker}, {"pool_name", pool}};
    ev.timestamp_ns = 1700000000000000000 + n;
    return ev;
}

std::string wire_of(const event& ev) {
    for (const entry* e : {&tool_start, &call_stop})
        if (ev.name == e->parts) return e->wire;
    return ev.dotted_name();
}

std::string jsonl(const event& ev) {
    std::string out;
    append_event_json(out, ev);
    return out;
}

std::string drain(tap_buffer& b, bool* ended = nullptr) {
    std::string out;
    const bool e = b.take(out);
    if (ended) *ended = e;
    return out;
}

struct tap_fixture {
    std::shared_ptr<tap_buffer> buf;
    std::shared_ptr<tap_handler> h;
    int wire_calls = 0;
};

tap_fixture make_tap(tap_request r, std::size_t max_bytes = 1 << 20) {
    tap_fixture f;
    f.buf = std::make_shared<tap_buffer>(max_bytes, r.format);
    auto* calls = &f.wire_calls;
    f.h = std::make_shared<tap_handler>(
        std::move(r), f.buf,
        [calls](const event& ev) {
            ++*calls;
            return wire_of(ev);
        },
        [](std::string& out, const event& ev) { out += "LOG " + ev.dotted_name() + "\n"; });
    return f;
}

TEST(TapHandler, FiltersByWireNameGlobAndByScope) {
    const std::vector<event> evs{make(tool_start, "a", "a-0", 1), make(call_stop, "a", "a-1", 2),
                                 make(tool_start, "b", "b-0", 3), make(call_stop, "b", "b-0", 4)};
    const auto run = [&](tap_request r) {
        auto t = make_tap(std::move(r));
        for (const auto& ev : evs) t.h->handle(ev);
        t.h->flush();
        return drain(*t.buf);
    };
    // The glob matches the wire name, not the host's name (snakepit.python.tool...).
    tap_request r;
    r.patterns = {"tool.*"};
    EXPECT_EQ(run(r), jsonl(evs[0]) + jsonl(evs[2]));
    r.patterns = {"snakepit.*"};
    EXPECT_EQ(run(r), "");
    r.patterns = {"*.stop", "tool.execution.st?rt"};
    EXPECT_EQ(run(r), jsonl(evs[0]) + jsonl(evs[1]) + jsonl(evs[2]) + jsonl(evs[3]));
    r.patterns = {};
    r.where = {scope_kind::pool, "b"};
    EXPECT_EQ(run(r), jsonl(evs[2]) + jsonl(evs[3]));
    r.where = {scope_kind::worker, "a-1"};
    EXPECT_EQ(run(r), jsonl(evs[1]));
    r.where = {scope_kind::worker, "b-0"};
    r.patterns = {"python.*"};
    EXPECT_EQ(run(r), jsonl(evs[3]));
    r.format = tap_format::log;
    EXPECT_EQ(run(r), "LOG snakepit.python.call.stop\n");
}

TEST(TapHandler, AsksTheWireNameOncePerNameAndRendersNothingThatDoesNotMatch) {
    tap_request r;
    r.patterns = {"nothing.*"};
    auto t = make_tap(r);
    for (int i = 0; i < 1000; ++i) t.h->handle(make(i % 2 ? tool_start : call_stop, "p", "w", i));
    t.h->flush();
    EXPECT_EQ(t.h->matched(), 0u);
    EXPECT_EQ(t.wire_calls, 2);  // one per name: the result is kept
    // Names without a catalog entry (unknown events kept, lifecycle events) too.
    for (int i = 0; i < 1000; ++i) {
        event ev = make(call_stop, "p", "w", i);
        ev.name_id = nullptr;
        ev.name.back() = i % 2 ? "stop" : "start";
        t.h->handle(ev);
    }
    t.h->flush();
    EXPECT_EQ(t.wire_calls, 4);
    EXPECT_EQ(drain(*t.buf), "");
    // A name_id reused for another name (a catalog reloaded at the same address) is not
    // taken for the old name.
    r.patterns = {"python.call.*"};
    auto u = make_tap(r);
    event a = make(tool_start, "p", "w");
    u.h->handle(a);
    event b = make(call_stop, "p", "w");
    b.name_id = &tool_start;
    u.h->handle(b);
    u.h->flush();
    EXPECT_EQ(drain(*u.buf), jsonl(b));
    // In a run, whose catalogs live until exit (tap_hooks::name_ids_unique), an id is the
    // name: the kept result is used without comparing names (the contract the run keeps).
    auto v = make_tap(r);
    v.h->trust_name_ids();
    v.h->handle(a);
    v.h->handle(b);
    v.h->flush();
    EXPECT_EQ(v.wire_calls, 1);
    EXPECT_EQ(drain(*v.buf), "");
}

TEST(TapHandler, BatchesUntilFlushThenHandsOverOnce) {
    auto t = make_tap({});
    int wakes = 0;
    t.buf->set_waker([&] { ++wakes; });
    for (int i = 0; i < 10; ++i) t.h->handle(make(call_stop, "p", "w", i));
    EXPECT_EQ(drain(*t.buf), "");  // nothing before the flush
    EXPECT_EQ(wakes, 0);
    t.h->flush();
    EXPECT_EQ(wakes, 1);
    std::string want;
    for (int i = 0; i < 10; ++i) want += jsonl(make(call_stop, "p", "w", i));
    EXPECT_EQ(drain(*t.buf), want);
    EXPECT_EQ(t.buf->sent(), 10u);
}

// An output before the tap on the bus that published its line for the event (as the jsonl
// output does): the tap copies that line instead of rendering the event again.
TEST(TapHandler, CopiesTheLineAnOutputBeforeItPublishedInTheSameDispatch) {
    struct publisher final : handler {
        std::string line;
        void handle(const event& ev) override {
            line = "{\"published\":" + std::to_string(ev.timestamp_ns) + "}\n";
            shared_event_json::publish(ev, line);
        }
    };
    handler_bus bus;
    auto t = make_tap({});
    ASSERT_FALSE(bus.attach("out", {}, std::make_shared<publisher>()));
    ASSERT_FALSE(bus.attach("tap", {}, t.h));
    std::string want;
    for (int i = 0; i < 3; ++i) {
        const event ev = make(call_stop, "p", "w", i);
        bus.dispatch(ev);
        want += "{\"published\":" + std::to_string(ev.timestamp_ns) + "}\n";
    }
    // Called directly, outside a dispatch: nothing is shared, the tap renders.
    t.h->handle(make(call_stop, "p", "w", 9));
    want += jsonl(make(call_stop, "p", "w", 9));
    bus.flush();
    EXPECT_EQ(drain(*t.buf), want);
}

// The jsonl output and a tap on one bus, the tap copying the output's lines: every line intact
// on both, across many of the output's hand-overs (it hands a batch over before appending, so
// the line it shares is still in place when the tap copies it).
TEST(TapHandler, BesideAJsonlOutputBothGetEveryLineIntactAcrossHandOvers) {
    test::temp_dir dir;
    auto stream = stream_writer::for_file(dir / "out.jsonl");
    ASSERT_TRUE(stream) << stream.error().message();
    handler_bus bus;
    auto t = make_tap({});
    ASSERT_FALSE(bus.attach("jsonl", {}, std::make_shared<jsonl_handler>(*stream, true, 700)));
    ASSERT_FALSE(bus.attach("tap", {}, t.h));
    std::string want;
    for (int i = 0; i < 2000; ++i) {
        event ev = make(i % 3 ? call_stop : tool_start, "p", "w-" + std::to_string(i % 7), i);
        ev.metadata.emplace_back("pad", std::string(static_cast<std::size_t>(i % 300), 'x'));
        bus.dispatch(ev);
        want += jsonl(ev);
    }
    bus.flush();
    (*stream)->close(std::chrono::steady_clock::now() + 5s);
    EXPECT_EQ(drain(*t.buf), want);
    EXPECT_EQ(test::file_text(dir.path() / "out.jsonl"), want);
}

TEST(TapHandler, LimitEndsTheStreamAfterNEvents) {
    tap_request r;
    r.limit = 3;
    auto t = make_tap(r);
    for (int i = 0; i < 10; ++i) {
        t.h->handle(make(call_stop, "p", "w", i));
        if (i == 1) t.h->flush();
    }
    t.h->flush();
    bool ended = true;
    const std::string got = drain(*t.buf, &ended);
    EXPECT_FALSE(ended);  // this take carried data
    EXPECT_EQ(got, jsonl(make(call_stop, "p", "w", 0)) + jsonl(make(call_stop, "p", "w", 1)) +
                       jsonl(make(call_stop, "p", "w", 2)));
    EXPECT_EQ(drain(*t.buf, &ended), "");
    EXPECT_TRUE(ended);
    EXPECT_EQ(t.h->matched(), 3u);
}

// A client that goes (or a telecap that stops) with events still in the buffer: they are
// lost, and counted as the tap's drops like any other.
TEST(TapBuffer, EventsStillPendingAtCloseAreCountedAsDropped) {
    tap_buffer b(1000, tap_format::jsonl);
    std::string x = "a\nb\n";
    EXPECT_EQ(b.offer(x, 2), tap_buffer::offered::taken);
    std::string out;
    EXPECT_FALSE(b.take(out));
    EXPECT_EQ(b.sent(), 2u);
    x = "c\nd\ne\n";
    EXPECT_EQ(b.offer(x, 3), tap_buffer::offered::taken);
    b.close();
    EXPECT_EQ(b.dropped(), 3u);
    EXPECT_EQ(b.sent(), 2u);
    x = "f\n";
    EXPECT_EQ(b.offer(x, 1), tap_buffer::offered::closed);
    EXPECT_EQ(b.dropped(), 3u);  // refused after close: the handler stops, nothing to count
}

passthrough_line line_of(const std::string& worker, const std::string& text) {
    passthrough_line l;
    l.worker = worker;
    l.pool = "p";
    l.stream = "stderr";
    l.text = text;
    return l;
}

TEST(TapHandler, PassThroughLinesInTheirPlacesAmongTheEventsWhenAsked) {
    tap_request r;
    r.passthrough = true;
    r.limit = 2;  // events only: the lines do not count
    auto t = make_tap(r);
    t.h->passthrough(line_of("w", "first"));
    t.h->handle(make(call_stop, "p", "w", 1));
    t.h->passthrough(line_of("w", "say \"hi\"\tthere"));
    auto cut = line_of("w", "head of a long one");
    cut.truncated = true;
    t.h->passthrough(cut);
    t.h->flush();
    t.h->passthrough(line_of("w", "after a flush"));
    t.h->handle(make(call_stop, "p", "w", 2));  // the limit
    t.h->flush();
    t.h->passthrough(line_of("w", "after the limit"));
    t.h->flush();
    const std::string head = R"({"passthrough":{"worker":"w","pool":"p","stream":"stderr","line":)";
    EXPECT_EQ(drain(*t.buf), head +
                                 R"("first"}})"
                                 "\n" +
                                 jsonl(make(call_stop, "p", "w", 1)) + head +
                                 R"("say \"hi\"\tthere"}})"
                                 "\n" +
                                 head +
                                 R"("head of a long one","truncated":true}})"
                                 "\n" +
                                 head +
                                 R"("after a flush"}})"
                                 "\n" +
                                 jsonl(make(call_stop, "p", "w", 2)));
    EXPECT_EQ(t.buf->sent(), 6u);  // what the buffer counts: events and lines

    // Without "passthrough": none; with a scope: that worker's (or pool's) only.
    auto plain = make_tap({});
    plain.h->passthrough(line_of("w", "x"));
    plain.h->flush();
    EXPECT_EQ(drain(*plain.buf), "");
    tap_request scoped;
    scoped.passthrough = true;
    scoped.where = {scope_kind::worker, "w-1"};
    auto one = make_tap(scoped);
    one.h->passthrough(line_of("w-0", "not this one"));
    one.h->passthrough(line_of("w-1", "this one"));
    one.h->flush();
    EXPECT_EQ(drain(*one.buf), R"({"passthrough":{"worker":"w-1","pool":"p","stream":"stderr",)"
                               R"("line":"this one"}})"
                               "\n");
}

TEST(TapHandler, PassThroughLinesInTheLogFormatAndTheirGapsMarked) {
    tap_request r;
    r.passthrough = true;
    r.format = tap_format::log;
    tap_fixture t;
    t.buf = std::make_shared<tap_buffer>(1 << 20, r.format, r.passthrough);
    t.h = std::make_shared<tap_handler>(
        r, t.buf, wire_of,
        [](std::string& out, const event& ev) { out += "LOG " + ev.dotted_name() + "\n"; },
        [](std::string& out, const passthrough_line& l) { out += "LINE " + l.text + "\n"; });
    t.h->handle(make(call_stop, "p", "w"));
    auto l = line_of("w", "x");
    l.dropped_before = 3;  // lines the run could not carry before this one
    t.h->passthrough(l);
    t.h->flush();
    // The marker of a tap with pass-through lines does not call them events.
    EXPECT_EQ(drain(*t.buf),
              "LOG snakepit.python.call.stop\n# 3 events or lines dropped\nLINE x\n");
    EXPECT_EQ(t.buf->dropped(), 3u);
}

// What the server took but could not write before the client went (or telecap stopped) is
// lost: counted as dropped, not sent; a drop marker among it is not an event.
TEST(TapBuffer, BytesTakenButNeverWrittenCountAsDroppedNotSent) {
    tap_buffer b(1000, tap_format::jsonl);
    std::string x = "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
    EXPECT_EQ(b.offer(x, 3), tap_buffer::offered::taken);
    std::string out;
    EXPECT_FALSE(b.take(out));
    EXPECT_EQ(b.sent(), 3u);
    // Written: the first line and half the second; the rest, and a marker, never went out.
    b.unsent(out.substr(12) + "{\"telecap_tap\":{\"dropped\":1}}\n");
    EXPECT_EQ(b.sent(), 1u);
    EXPECT_EQ(b.dropped(), 2u);
}

// The limit reached by the hand-over a pass-through line makes: the line does not follow the
// last event, and nothing is taken after the stream's end.
TEST(TapHandler, NothingFollowsTheLimitNotEvenAPassThroughLine) {
    tap_request r;
    r.limit = 2;
    r.passthrough = true;
    auto t = make_tap(r);
    t.h->handle(make(call_stop, "p", "w", 0));
    t.h->handle(make(call_stop, "p", "w", 1));
    passthrough_line l;
    l.worker = "w";
    l.pool = "p";
    l.stream = "stderr";
    l.text = "after the limit";
    t.h->passthrough(l);
    t.h->flush();
    bool ended = false;
    EXPECT_EQ(drain(*t.buf, &ended),
              jsonl(make(call_stop, "p", "w", 0)) + jsonl(make(call_stop, "p", "w", 1)));
    std::string more = "late\n";
    EXPECT_EQ(t.buf->offer(more, 1), tap_buffer::offered::closed);
}

TEST(TapBuffer, DropsWholeBatchesCountsThemAndMarksWhereTheGapIs) {
    for (const auto f : {tap_format::jsonl, tap_format::log}) {
        tap_buffer b(100, f);
        std::string batch(60, 'a');
        batch.back() = '\n';
        std::string x = batch;
        EXPECT_EQ(b.offer(x, 3), tap_buffer::offered::taken);
        x = batch;
        EXPECT_EQ(b.offer(x, 2), tap_buffer::offered::dropped);  // 120 > 100
        x = batch;
        EXPECT_EQ(b.offer(x, 4), tap_buffer::offered::dropped);
        EXPECT_EQ(b.dropped(), 6u);
        // The gap is after what was taken before it.
        EXPECT_EQ(drain(b), batch + drop_marker(f, 6));
        x = batch;
        EXPECT_EQ(b.offer(x, 1), tap_buffer::offered::taken);
        x = batch;
        EXPECT_EQ(b.offer(x, 5), tap_buffer::offered::dropped);
        x = std::string("b\n");
        EXPECT_EQ(b.offer(x, 1), tap_buffer::offered::taken);  // fits: after the marker
        EXPECT_EQ(drain(b), batch + drop_marker(f, 5) + "b\n");
        EXPECT_EQ(b.sent(), 5u);
        EXPECT_EQ(b.dropped(), 11u);
        // A batch larger than the bound goes alone when the buffer is empty.
        std::string big(500, 'c');
        EXPECT_EQ(b.offer(big, 7), tap_buffer::offered::taken);
        EXPECT_EQ(drain(b).size(), 500u);
    }
    EXPECT_EQ(drop_marker(tap_format::jsonl, 12), "{\"telecap_tap\":{\"dropped\":12}}\n");
    EXPECT_EQ(drop_marker(tap_format::log, 12), "# 12 events dropped\n");
    EXPECT_EQ(drop_marker(tap_format::log, 12, true), "# 12 events or lines dropped\n");
    EXPECT_EQ(drop_marker(tap_format::jsonl, 12, true), "{\"telecap_tap\":{\"dropped\":12}}\n");
}

TEST(TapBuffer, WakesOnlyWhenItGoesFromEmptyToNotEmpty) {
    tap_buffer b(1 << 20, tap_format::jsonl);
    int wakes = 0;
    b.set_waker([&] { ++wakes; });
    std::string x;
    for (int i = 0; i < 5; ++i) {
        x = "l\n";
        b.offer(x, 1);
    }
    EXPECT_EQ(wakes, 1);
    EXPECT_EQ(drain(b), "l\nl\nl\nl\nl\n");
    x = "l\n";
    b.offer(x, 1);  // the consumer has not found it empty since: it takes again on its own
    EXPECT_EQ(wakes, 1);
    EXPECT_EQ(drain(b), "l\n");
    EXPECT_EQ(drain(b), "");  // found empty
    x = "l\n";
    b.offer(x, 1);
    EXPECT_EQ(wakes, 2);
    b.close();
    x = "l\n";
    EXPECT_EQ(b.offer(x, 1), tap_buffer::offered::closed);
    EXPECT_EQ(wakes, 2);
}

TEST(TapRequest, ParsesAndRefusesWithAReason) {
    tap_request r;
    ASSERT_FALSE(parse_tap_request(R"({"cmd":"tap","passthrough":true})", r));
    EXPECT_TRUE(r.passthrough);
    ASSERT_FALSE(parse_tap_request(R"({"cmd":"tap"})", r));
    EXPECT_FALSE(r.passthrough);
    ASSERT_FALSE(parse_tap_request(
        R"({"cmd":"tap","format":"log","limit":5,"patterns":["tool.*"],"pool":"p"})", r));
    EXPECT_EQ(r.format, tap_format::log);
    EXPECT_EQ(r.limit, 5u);
    EXPECT_EQ(r.patterns, std::vector<std::string>{"tool.*"});
    EXPECT_EQ(r.where.kind, scope_kind::pool);
    const std::pair<const char*, const char*> bad[] = {
        {R"({"cmd":"tap","format":"xml"})", "\"format\""},
        {R"({"cmd":"tap","limit":-1})", "\"limit\""},
        {R"({"cmd":"tap","patterns":["a.[b"]})", "unclosed"},
        {R"({"cmd":"tap","pool":"a","worker":"b"})", "not both"},
        {R"({"cmd":"tap","rate":1})", "unknown field \"rate\""},
        {R"({"cmd":"tap","passthrough":1})", "true or false"},
    };
    for (const auto& [line, why] : bad) {
        const auto e = parse_tap_request(line, r);
        ASSERT_TRUE(e) << line;
        EXPECT_NE(e->find(why), std::string::npos) << line << " -> " << *e;
    }
}

TEST(TapHub, OpensTapsOnTheBusClosesThemAndKeepsTheirCounters) {
    std::map<std::string, std::shared_ptr<handler>> bus;
    tap_hooks h;
    h.attach = [&](const std::string& id, std::shared_ptr<handler> t) { bus[id] = t; };
    h.detach = [&](const std::string& id) { bus.erase(id); };
    h.wire_name = wire_of;
    h.max_taps = 2;
    tap_hub hub(h);
    EXPECT_FALSE(hub.open(R"({"cmd":"status"})"));  // not a tap: the protocol answers it
    const auto bad = hub.open(R"({"cmd":"tap","format":"x"})");
    ASSERT_TRUE(bad);
    EXPECT_FALSE(bad->source);
    EXPECT_NE(bad->reply.find("\"ok\":false"), std::string::npos);

    auto one = hub.open(R"({"cmd":"tap"})");
    ASSERT_TRUE(one && one->source);
    EXPECT_EQ(one->reply, R"({"ok":true,"tap":1})");
    auto two = hub.open(R"({"cmd":"tap","patterns":["none"]})");
    ASSERT_TRUE(two && two->source);
    const auto third = hub.open(R"({"cmd":"tap"})");
    ASSERT_TRUE(third);
    EXPECT_FALSE(third->source);
    EXPECT_NE(third->reply.find("too many taps"), std::string::npos);
    ASSERT_EQ(bus.size(), 2u);
    EXPECT_EQ(hub.opened(), 2u);

    bus.at("tap.1")->handle(make(call_stop, "p", "w"));
    bus.at("tap.1")->flush();
    bus.at("tap.2")->handle(make(call_stop, "p", "w"));
    bus.at("tap.2")->flush();
    std::string out;
    one->source->take(out);
    EXPECT_EQ(out, jsonl(make(call_stop, "p", "w")));
    ASSERT_EQ(hub.open_taps().size(), 2u);
    EXPECT_EQ(hub.open_taps()[0].sent, 1u);

    one->source->close();  // the client went: detached, its counts kept in the totals
    EXPECT_EQ(bus.count("tap.1"), 0u);
    EXPECT_EQ(hub.open_taps().size(), 1u);
    EXPECT_EQ(hub.sent_total(), 1u);
    EXPECT_TRUE(hub.open(R"({"cmd":"tap"})")->source);  // room again
}

TEST(TapHub, PassThroughLinesAreCarriedWhileATapAsksForThem) {
    std::map<std::string, std::shared_ptr<handler>> bus;
    std::vector<bool> told;
    tap_hooks h;
    h.attach = [&](const std::string& id, std::shared_ptr<handler> t) { bus[id] = t; };
    h.detach = [&](const std::string& id) { bus.erase(id); };
    h.want_passthrough = [&](bool on) { told.push_back(on); };
    tap_hub hub(h);
    auto events = hub.open(R"({"cmd":"tap"})");
    EXPECT_TRUE(told.empty());  // a tap of events only asks for nothing
    auto one = hub.open(R"({"cmd":"tap","passthrough":true})");
    auto two = hub.open(R"({"cmd":"tap","passthrough":true})");
    EXPECT_EQ(told, std::vector<bool>{true});  // once, when the first asks
    one->source->close();
    EXPECT_EQ(told, std::vector<bool>{true});
    two->source->close();
    EXPECT_EQ(told, (std::vector<bool>{true, false}));  // when the last goes
    events->source->close();
    EXPECT_EQ(told.size(), 2u);
}

TEST(TapHub, LinesAreAskedForBeforeTheTapIsAttached) {
    // So the intake sends the events it read without their lines before the tap is on the
    // bus: its first batch carries its lines.
    std::vector<std::string> calls;
    tap_hooks h;
    h.attach = [&](const std::string&, std::shared_ptr<handler>) { calls.push_back("attach"); };
    h.detach = [&](const std::string&) { calls.push_back("detach"); };
    h.want_passthrough = [&](bool on) { calls.push_back(on ? "lines on" : "lines off"); };
    tap_hub hub(h);
    auto tap = hub.open(R"({"cmd":"tap","passthrough":true})");
    EXPECT_EQ(calls, (std::vector<std::string>{"lines on", "attach"}));
    tap->source->close();
}

// The control server side: a stream on a real loop.
class TapServerTest : public ::testing::Test {
protected:
    // Hooks that attach the taps to a map standing for the bus.
    static tap_hooks hooks_over(std::map<std::string, std::shared_ptr<handler>>& bus) {
        tap_hooks h;
        h.attach = [&bus](const std::string& id, std::shared_ptr<handler> t) { bus[id] = t; };
        h.detach = [&bus](const std::string& id) { bus.erase(id); };
        h.wire_name = wire_of;
        return h;
    }

    test::temp_dir dir_;
    std::string path_ = dir_ / "ctl.sock";

    unique_fd connect_client() {
        unique_fd fd(test::unix_connect(path_));
        EXPECT_GE(fd.get(), 0) << "cannot connect to " << path_;
        return fd;
    }
    static void send_line(int fd, const std::string& s) {
        const std::string line = s + "\n";
        ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(line.size()));
    }
    // Turns the loop until `got` (what the client read) satisfies pred, or EOF.
    static bool read_until(event_loop& loop, int fd, std::string& got,
                           const std::function<bool(const std::string&)>& pred,
                           bool* eof = nullptr) {
        const auto end = test::deadline_in();
        while (std::chrono::steady_clock::now() < end) {
            loop.run_once(5ms);
            char buf[64 * 1024];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
                got.append(buf, static_cast<std::size_t>(n));
            if (pred(got)) return true;
            if (n == 0) {
                if (eof) *eof = true;
                return pred(got);
            }
        }
        return false;
    }
};

TEST_F(TapServerTest, ARequestTurnsTheConnectionIntoAStreamFedFromAnotherThread) {
    event_loop loop;
    std::map<std::string, std::shared_ptr<handler>> bus;
    tap_hooks h = hooks_over(bus);
    tap_hub hub(h);
    server_options o;
    o.idle_limit = 50ms;  // a stream is not idle, whatever the limit
    o.stall_limit = 50ms;
    o.open_stream = [&](std::string_view line) { return hub.open(line); };
    server s(
        loop, path_, [](std::string_view) { return ok_reply(",\"plain\":1"); }, o);
    auto fd = connect_client();
    send_line(fd.get(), R"({"cmd":"status"})");  // a plain request first: answered as before
    std::string got;
    ASSERT_TRUE(read_until(loop, fd.get(), got,
                           [](const std::string& g) { return g.find('\n') != std::string::npos; }));
    EXPECT_EQ(got, "{\"ok\":true,\"plain\":1}\n");
    got.clear();
    send_line(fd.get(), R"({"cmd":"tap","limit":300})");
    ASSERT_TRUE(read_until(loop, fd.get(), got,
                           [](const std::string& g) { return g.find('\n') != std::string::npos; }));
    EXPECT_EQ(got, "{\"ok\":true,\"tap\":1}\n");
    EXPECT_EQ(s.streams(), 1u);
    ASSERT_EQ(bus.count("tap.1"), 1u);
    got.clear();
    // The bus on another thread (--dispatch thread), batch by batch.
    std::shared_ptr<handler> tap = bus.at("tap.1");
    std::thread producer([tap] {
        for (int i = 0; i < 300; ++i) {
            tap->handle(make(call_stop, "p", "w", i));
            if (i % 7 == 0) tap->flush();
        }
        tap->flush();
    });
    bool eof = false;
    // The limit ends the stream: everything, then the close.
    EXPECT_TRUE(read_until(
        loop, fd.get(), got, [&](const std::string&) { return eof; }, &eof));
    producer.join();
    std::string want;
    for (int i = 0; i < 300; ++i) want += jsonl(make(call_stop, "p", "w", i));
    EXPECT_EQ(got, want);
    EXPECT_TRUE(test::eventually([&] {
        loop.run_once(1ms);
        return bus.empty() && s.streams() == 0;
    }));
    EXPECT_EQ(hub.sent_total(), 300u);
}

TEST_F(TapServerTest, AClientThatNeverReadsLosesEventsAndIsNeverWaitedFor) {
    event_loop loop;
    std::map<std::string, std::shared_ptr<handler>> bus;
    tap_hooks h = hooks_over(bus);
    h.buffer_bytes = 64 * 1024;
    tap_hub hub(h);
    server_options o;
    o.stall_limit = 20ms;
    o.open_stream = [&](std::string_view line) { return hub.open(line); };
    server s(
        loop, path_, [](std::string_view) { return ok_reply(); }, o);
    auto fd = connect_client();
    send_line(fd.get(), R"({"cmd":"tap"})");
    std::string got;
    ASSERT_TRUE(read_until(loop, fd.get(), got,
                           [](const std::string& g) { return g.find('\n') != std::string::npos; }));
    // From now on the client reads nothing; the producer offers far more than the socket
    // and the buffer hold, turning the loop between batches as a run would.
    auto tap = bus.at("tap.1");
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200000; ++i) {
        tap->handle(make(call_stop, "p", "w", i));
        if (i % 64 == 63) {
            tap->flush();
            loop.run_once(0ms);
        }
    }
    tap->flush();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, test::patience);  // never waited for the client
    const auto taps = hub.open_taps();
    ASSERT_EQ(taps.size(), 1u);
    EXPECT_GT(taps[0].dropped, 100000u);
    EXPECT_LE(taps[0].sent + taps[0].dropped, 200000u);  // the rest waits in the buffer
    EXPECT_EQ(hub.dropped_total(), taps[0].dropped);
    // Still connected well past the stall limit: a tap is not cut off for reading slowly.
    for (int i = 0; i < 20; ++i) loop.run_once(5ms);
    EXPECT_EQ(s.streams(), 1u);
    // When it reads at last: what the socket held, then a marker where the gap is.
    got.clear();
    ASSERT_TRUE(read_until(loop, fd.get(), got, [](const std::string& g) {
        return g.find("{\"telecap_tap\":{\"dropped\":") != std::string::npos;
    }));
    // The hang-up closes the tap and detaches its handler.
    fd.reset();
    EXPECT_TRUE(test::eventually([&] {
        loop.run_once(1ms);
        return bus.empty() && s.streams() == 0;
    }));
}

}  // namespace
}  // namespace telecap::control
