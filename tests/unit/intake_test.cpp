// intake: a worker's bytes in; events (through the gate, in batches, in order), pass-through
// and counters out; back-pressure and overflow; without fork (pipes the test writes, or feed).
// event_batch: copies into recycled storage, no heap allocation once warm.
#include "intake/intake.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "capture/catalog.hpp"
#include "support/unit_helpers.hpp"

// Heap allocations counted on this thread while `counting` is set (not under sanitizers, which
// replace operator new themselves).
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define TELECAP_COUNT_ALLOCATIONS 1
// The replacement operators below pair malloc and free; inlined into the standard allocator,
// GCC sees `free` on what `operator new` returned and warns, though the pairing is right.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
}  // namespace
void* operator new(std::size_t n) {
    if (counting) ++allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace telecap {
namespace {

using namespace std::chrono_literals;

const std::string start_line =
    R"(TELEMETRY:{"event":"tool.execution.start","measurements":{"count":1,"system_time":42},)"
    R"("metadata":{"tool":"a-rather-long-tool-name-here","session_id":"session-0123456789"},)"
    R"("timestamp_ns":1700000000000000000,"correlation_id":"7ed4d57b-aaaa-bbbb-cccc-dddddddddddd"})"
    "\n";
const std::string stop_line =
    R"(TELEMETRY:{"event":"tool.execution.stop","measurements":{"duration":817077202},)"
    R"("metadata":{"tool":"parse"},"timestamp_ns":1700000000000001000})"
    "\n";

event make(std::vector<std::string> name, std::size_t width, bool corr) {
    event ev;
    ev.name = std::move(name);
    for (std::size_t i = 0; i < width; ++i) {
        ev.measurements.emplace_back(
            "measurement_key_" + std::to_string(i),
            i % 2 ? measurement_value{std::int64_t(i)} : measurement_value{std::string(40, 'm')});
        ev.metadata.emplace_back(
            "metadata_key_number_" + std::to_string(i),
            i % 2 ? metadata_value{std::string(30, 'v')} : metadata_value{std::int64_t(i)});
    }
    if (corr) ev.correlation_id = std::string(36, 'c');
    ev.timestamp_ns = static_cast<std::int64_t>(width);
    return ev;
}

bool same(const event& a, const event& b) {
    return a.name == b.name && a.measurements == b.measurements && a.metadata == b.metadata &&
           a.correlation_id == b.correlation_id && a.timestamp_ns == b.timestamp_ns;
}

TEST(EventBatch, KeepsOrderAcrossTypesAndPushes) {
    event_batch b;
    const std::vector<event> kinds = {make({"a"}, 1, true), make({"b", "c"}, 3, false)};
    b.slot(5) = kinds[0];
    b.commit();
    b.push(kinds[1]);
    b.slot(std::string_view::npos) = kinds[1];
    b.commit();
    b.slot(5) = kinds[1];
    b.commit();
    ASSERT_EQ(b.size(), 4u);
    EXPECT_TRUE(same(b[0], kinds[0]));
    EXPECT_TRUE(same(b[1], kinds[1]));
    EXPECT_TRUE(same(b[2], kinds[1]));
    EXPECT_TRUE(same(b[3], kinds[1]));
    EXPECT_GT(b.bytes(), 0u);
}

TEST(EventBatch, ASlotIsReusedForItsTypeAfterClearAndUntilCommitted) {
    event_batch b;
    const event wide = make({"snakepit", "a", "long-name-part-over-sso"}, 4, true);
    event& first = b.slot(2);
    first = wide;
    // Not committed (the gate said no): the next event of that type gets the same slot.
    EXPECT_EQ(&b.slot(2), &first);
    b.commit();
    EXPECT_NE(&b.slot(2), &first);  // committed: a new one
    b.clear();
    EXPECT_TRUE(b.empty());
    // After clear, the type's first slot again, with the last event of that type in it: the
    // normalizer compares its name parts and keys instead of copying them.
    EXPECT_TRUE(same(b.slot(2), wide));
}

// A bus that records the events' timestamps and names, in order.
struct recorder {
    std::mutex mu;
    std::vector<std::string> names;
    std::vector<std::int64_t> stamps;
    void attach(handler_bus& bus) {
        bus.attach("rec", {}, [this](const event& ev) {
            std::lock_guard lock(mu);
            names.push_back(ev.dotted_name());
            stamps.push_back(ev.timestamp_ns);
        });
    }
    std::size_t size() {
        std::lock_guard lock(mu);
        return names.size();
    }
};

struct drop_stops final : event_gate {
    int asked = 0;
    bool admit(const event& ev) override {
        ++asked;
        return ev.name.back() != "stop";
    }
};

// Intake options with the defaults but for what a test sets.
intake_options with(void (*set)(intake_options&)) {
    intake_options o;
    set(o);
    return o;
}

dispatcher_options small_queue(std::size_t events) {
    dispatcher_options d;
    d.queue = events;
    return d;
}

struct fixture {
    catalog cat = catalog::builtin();
    handler_bus bus;
    recorder rec;
    event_loop loop;
    std::unique_ptr<dispatcher> events;
    capture_stats stats;
    fixture(dispatcher_options d = {}) {
        rec.attach(bus);
        events = std::make_unique<dispatcher>(bus, d);
    }
    stream_spec spec(event_gate* gate = nullptr) {
        stream_spec s;
        s.owner = this;
        s.cat = &cat;
        s.ctx.worker_id = "w-0";
        s.stats = &stats;
        s.gate = gate;
        return s;
    }
    void done(intake& in) {
        in.finish(1s);
        ASSERT_TRUE(events->finish(test::deadline_in()));
    }
};

TEST(Intake, FedBytesBecomeEventsThroughTheGateInOrder) {
    fixture f;
    drop_stops gate;
    intake in(f.loop, *f.events, {});
    void* s = in.add_unwatched(f.spec(&gate));
    std::string bytes;
    for (int i = 0; i < 10; ++i) bytes += start_line + stop_line + "plain line\n";
    // Fed in odd pieces: framing across feeds.
    for (std::size_t at = 0; at < bytes.size(); at += 37)
        in.feed(s, std::string_view(bytes).substr(at, 37));
    in.end_turn();
    f.done(in);
    EXPECT_EQ(f.stats.lines, 30u);
    EXPECT_EQ(f.stats.events, 20u);
    EXPECT_EQ(f.stats.passthrough_lines, 10u);
    EXPECT_EQ(gate.asked, 20);
    ASSERT_EQ(f.rec.size(), 10u);
    for (const auto& n : f.rec.names) EXPECT_EQ(n, "snakepit.python.tool.execution.start");
}

TEST(Intake, OneDispatcherWakeupPerTurnNotPerEvent) {
    fixture f;
    intake in(f.loop, *f.events, with([](intake_options& o) { o.batch_events = 1000; }));
    void* s = in.add_unwatched(f.spec());
    for (int turn = 0; turn < 20; ++turn) {
        for (int i = 0; i < 50; ++i) in.feed(s, start_line);
        in.end_turn();
        // The dispatch thread has handled the turn's batch before the next one comes.
        ASSERT_TRUE(test::eventually([&] { return f.rec.size() == std::size_t(50 * (turn + 1)); }));
    }
    f.done(in);
    EXPECT_EQ(f.events->dispatched(), 1000u);
    EXPECT_LE(f.events->wakeups(), 21u);  // one per turn (+ finish)
}

TEST(Intake, FullBatchesLeaveBeforeTheTurnEnds) {
    fixture f;
    intake in(f.loop, *f.events, with([](intake_options& o) { o.batch_events = 10; }));
    void* s = in.add_unwatched(f.spec());
    for (int i = 0; i < 25; ++i) in.feed(s, start_line);
    ASSERT_TRUE(test::eventually([&] { return f.rec.size() == 20u; }));
    in.end_turn();
    ASSERT_TRUE(test::eventually([&] { return f.rec.size() == 25u; }));
    f.done(in);
}

TEST(Intake, ReadsAPipeAndEndsAnUnterminatedLastLineAtEof) {
    fixture f;
    intake in(f.loop, *f.events, with([](intake_options& o) { o.read_linger = 0us; }));
    auto p = test::make_pipe();
    in.add(std::move(p.read), f.spec());
    const std::string bytes = start_line + start_line + stop_line.substr(0, stop_line.size() - 1);
    ASSERT_EQ(::write(p.write.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    p.write.reset();
    while (in.reading(&f)) {
        f.loop.run_once(std::chrono::milliseconds(1000));
        in.end_turn();
    }
    f.done(in);
    EXPECT_EQ(f.stats.events, 3u);  // the last one had no newline
    EXPECT_EQ(f.rec.size(), 3u);
    EXPECT_EQ(in.streams(), 0u);
}

TEST(Intake, DropNewestCountsWhatTheQueueRefuses) {
    fixture f(small_queue(5));
    test::gate hold;
    f.bus.attach("hold", {}, [&](const event&) { hold.wait(); });
    intake in(f.loop, *f.events, with([](intake_options& o) { o.batch_events = 5; }));
    void* s = in.add_unwatched(f.spec());
    for (int i = 0; i < 5; ++i) in.feed(s, start_line);  // one batch: queued, handler stuck
    ASSERT_TRUE(hold.wait_arrived(1));
    for (int i = 0; i < 7; ++i) in.feed(s, start_line);  // refused: the queue is full
    in.end_turn();
    hold.open();
    f.done(in);
    EXPECT_EQ(in.own().dropped[static_cast<std::size_t>(drop_reason::queue_full)], 7u);
    EXPECT_EQ(f.rec.size(), 5u);
}

TEST(Intake, BlockModeHoldsBatchesInOrderAndPausesReading) {
    fixture f(small_queue(4));
    test::gate hold;
    f.bus.attach("hold", {}, [&](const event&) { hold.wait(); });
    intake in(f.loop, *f.events, with([](intake_options& o) {
                  o.overflow = overflow_policy::block;
                  o.batch_events = 4;
              }));
    auto p = test::make_pipe();
    in.add(std::move(p.read), f.spec());
    void* s = in.add_unwatched(f.spec());
    for (int i = 0; i < 4; ++i) in.feed(s, start_line);
    ASSERT_TRUE(hold.wait_arrived(1));
    for (int i = 0; i < 10; ++i) in.feed(s, start_line);
    in.end_turn();
    EXPECT_TRUE(in.paused());
    EXPECT_EQ(in.pauses(), 1u);
    hold.open();
    // The room callback comes through the loop: it submits the held batches and resumes.
    ASSERT_TRUE(test::eventually([&] {
        f.loop.run_once(std::chrono::milliseconds(10));
        in.end_turn();
        return !in.paused();
    }));
    f.done(in);
    EXPECT_EQ(f.rec.size(), 14u);
    EXPECT_EQ(in.own().dropped[static_cast<std::size_t>(drop_reason::queue_full)], 0u);
}

TEST(Intake, EscapeDropsWhatBlockModeHeld) {
    fixture f(small_queue(2));
    test::gate hold;
    f.bus.attach("hold", {}, [&](const event&) { hold.wait(); });
    intake in(f.loop, *f.events, with([](intake_options& o) {
                  o.overflow = overflow_policy::block;
                  o.batch_events = 2;
              }));
    void* s = in.add_unwatched(f.spec());
    for (int i = 0; i < 2; ++i) in.feed(s, start_line);
    ASSERT_TRUE(hold.wait_arrived(1));
    for (int i = 0; i < 6; ++i) in.feed(s, start_line);
    in.end_turn();
    in.escape();  // the grace period is over: no more waiting
    EXPECT_FALSE(in.paused());
    EXPECT_EQ(in.own().dropped[static_cast<std::size_t>(drop_reason::shutdown)], 6u);
    hold.open();
    f.done(in);
    EXPECT_EQ(f.rec.size(), 2u);
}

#ifdef TELECAP_COUNT_ALLOCATIONS
// 100,000 lines through `in` once warm, each turn's batch back before the next (as in steady
// state: recycled batches, not new ones): at most 0.01 heap allocations per line on this thread.
void expect_no_allocation_per_line(fixture& f, intake& in) {
    void* s = in.add_unwatched(f.spec());
    std::string chunk;
    for (int i = 0; i < 100; ++i) chunk += (i % 3 ? start_line : stop_line) + "log line\n";
    const auto turn = [&] {
        in.feed(s, chunk);
        in.end_turn();
    };
    for (int i = 0; i < 50; ++i) turn();
    ASSERT_TRUE(test::eventually([&] { return f.events->depth() == 0; }));
    counting = true;
    allocations = 0;
    // A one-off (a batch warmed late on a loaded machine) stays within the bound.
    for (int i = 0; i < 1000; ++i) {
        turn();
        while (f.events->depth() != 0) std::this_thread::yield();
    }
    counting = false;
    EXPECT_LE(allocations, 1000u * 100u / 100u) << "at most 0.01 per line";
    f.done(in);
}

TEST(Intake, NoHeapAllocationPerLineOnceWarm) {
    fixture f;
    intake in(f.loop, *f.events, with([](intake_options& o) { o.batch_events = 256; }));
    expect_no_allocation_per_line(f, in);
}
#endif

}  // namespace
}  // namespace telecap

namespace telecap {
namespace {

TEST(Intake, APartialBatchKeepsFillingWhileTheDispatcherHasABacklog) {
    fixture f;
    test::gate hold;
    f.bus.attach("hold", {}, [&](const event&) { hold.wait(); });
    intake in(f.loop, *f.events, with([](intake_options& o) { o.batch_events = 4; }));
    void* s = in.add_unwatched(f.spec());
    for (int i = 0; i < 4; ++i) in.feed(s, start_line);  // taken; the handler is stuck in it
    ASSERT_TRUE(hold.wait_arrived(1));
    for (int i = 0; i < 4; ++i) in.feed(s, start_line);  // full: queued, not taken (backlog)
    ASSERT_TRUE(f.events->backlogged());
    in.feed(s, start_line);
    in.end_turn();  // a partial batch behind a backlog: kept, not submitted
    EXPECT_EQ(f.events->depth(), 8u);
    in.feed(s, start_line);
    in.end_turn();
    EXPECT_EQ(f.events->depth(), 8u);
    hold.open();
    // The dispatcher takes its backlog and says so through the loop: the batch (2 events) goes.
    ASSERT_TRUE(test::eventually([&] {
        f.loop.run_once(std::chrono::milliseconds(10));
        return f.rec.size() == 10u;
    }));
    f.done(in);
    EXPECT_EQ(f.events->dispatched(), 10u);
}

TEST(Intake, ALongLineWhoseOutputIsBehindPausesReadingEvenWhenDropping) {
    fixture f;
    auto pipe = test::make_pipe();
    test::fill(pipe.write.get());  // nobody reads yet: the writer's thread is stuck
    stream_writer_options wo;
    wo.soft_limit = 4096;
    wo.linger = std::chrono::microseconds(0);
    std::thread reader;
    {
        auto out = stream_writer::for_fd(pipe.write.get(), "pass", wo);
        passthrough_mux mux(out);
        intake_options o;
        o.pipeline.max_line = 1024;  // longer lines stream in parts
        intake in(f.loop, *f.events, o, {out.get()});
        stream_spec spec = f.spec();
        spec.pass = &mux;
        void* s = in.add_unwatched(spec);
        const std::string piece(16 * 1024, 'x');
        for (int i = 0; i < 4; ++i) in.feed(s, piece);  // 64 KiB of one line, no newline yet
        in.end_turn();
        EXPECT_TRUE(in.paused()) << "drop-newest, but a line's parts cannot be dropped";
        // The reader comes back: the writer catches up and reading resumes (through the loop).
        reader = std::thread([fd = pipe.read.get()] { test::read_to_eof(fd); });
        ASSERT_TRUE(test::eventually([&] {
            f.loop.run_once(std::chrono::milliseconds(10));
            return !in.paused();
        }));
        in.feed(s, "\n");
        in.close_all();
        f.done(in);
        out->close(test::deadline_in());
    }
    pipe.write.reset();  // the writer's own descriptor went with it: the reader sees the end
    reader.join();
    EXPECT_EQ(f.stats.long_lines, 1u);
}

}  // namespace
}  // namespace telecap

namespace telecap {
namespace {

dispatcher_options on_loop() {
    dispatcher_options d;
    d.mode = dispatch_mode::caller;
    return d;
}

TEST(Intake, WithTheHandlersOnTheLoopATurnsEventsAreHandledAndFlushedInTheTurn) {
    fixture f(on_loop());
    auto out = std::make_shared<test::behind_output>();
    ASSERT_FALSE(f.bus.attach("out", {}, out));
    intake in(f.loop, *f.events, {});
    void* s = in.add_unwatched(f.spec());
    for (int i = 0; i < 100; ++i) in.feed(s, start_line);
    EXPECT_EQ(out->events, 64u) << "a full batch (64 events) is handled as it fills";
    EXPECT_EQ(out->flushes, 0);
    for (int turn = 1; turn <= 3; ++turn) {
        if (turn > 1)
            for (int i = 0; i < 100; ++i) in.feed(s, start_line);
        in.end_turn();
        EXPECT_EQ(out->events, std::size_t(100 * turn)) << "the rest at the turn's end";
        EXPECT_EQ(out->flushes, turn) << "one flush per turn, not per batch";
    }
    f.done(in);
    EXPECT_EQ(f.events->dispatched(), 300u);
}

TEST(Intake, WithTheHandlersOnTheLoopBlockModePausesWhileAnOutputIsBehind) {
    fixture f(on_loop());
    auto out = std::make_shared<test::behind_output>();
    ASSERT_FALSE(f.bus.attach("out", {}, out));
    intake in(f.loop, *f.events,
              with([](intake_options& o) { o.overflow = overflow_policy::block; }));
    auto p = test::make_pipe();
    in.add(std::move(p.read), f.spec());
    void* s = in.add_unwatched(f.spec());
    out->behind = true;
    in.feed(s, start_line);
    in.end_turn();
    EXPECT_TRUE(in.paused()) << "the output is behind: stop reading, never wait in the loop";
    EXPECT_EQ(out->events, 1u);
    out->behind = false;
    // The intake looks again on its own (a timer on the loop) and resumes.
    ASSERT_TRUE(test::eventually([&] {
        f.loop.run_once(std::chrono::milliseconds(10));
        return !in.paused();
    }));
    f.done(in);
}

// An output that is behind from its first event on, while `shut`.
struct behind_once_given final : handler {
    std::size_t events = 0;
    bool shut = true;
    void handle(const event&) override { ++events; }
    bool congested() const override { return shut && events > 0; }
};

// A pipe widened to hold 256 KiB of start lines, written; `lines` says how many.
test::pipe_fds full_pipe(std::size_t& lines) {
    auto p = test::make_pipe();
    EXPECT_GE(::fcntl(p.write.get(), F_SETPIPE_SZ, 1 << 20), 256 * 1024);
    std::string bytes;
    for (lines = 0; bytes.size() < 256 * 1024; ++lines) bytes += start_line;
    EXPECT_EQ(::write(p.write.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    return p;
}

const auto block_no_linger = [](intake_options& o) {
    o.overflow = overflow_policy::block;
    o.read_linger = 0us;
};
// A hold longer than any test waits: a slow (sanitized, loaded) run never spends it.
const auto drop_newest_long_hold = [](intake_options& o) {
    o.read_linger = 0us;
    o.burst_hold = 10s;
};
// What one 64 KiB read brings, at most.
const std::size_t start_lines_per_read = 64 * 1024 / start_line.size() + 1;

// An output about to drop from its first event on, while `shut` (a gRPC stream whose queue
// is half full).
struct dropping_once_given final : handler {
    std::size_t events = 0;
    bool shut = true;
    void handle(const event&) override { ++events; }
    bool about_to_drop() const override { return shut && events > 0; }
};

// The handlers on the loop, one output `Out` (behind_once_given or dropping_once_given)
// alone on the bus, and a worker's pipe: full_pipe's 256 KiB in 1 MiB, or what `write` puts
// in a pipe of its own.
template <typename Out>
struct piped {
    fixture f{on_loop()};
    std::shared_ptr<Out> out = std::make_shared<Out>();
    std::optional<intake> in;
    test::pipe_fds p;
    std::size_t lines = 0;
    explicit piped(void (*opts)(intake_options&)) {
        f.bus.detach("rec");
        EXPECT_FALSE(f.bus.attach("out", {}, out));
        in.emplace(f.loop, *f.events, with(opts));
    }
    // The worker wrote the full pipe (and exited, its pipe then ending at EOF).
    void start(bool exited = false) {
        p = full_pipe(lines);
        if (exited) p.write.reset();
        watch();
    }
    void watch() { in->add(std::move(p.read), f.spec()); }
    // One loop turn, then its end.
    void turn() {
        f.loop.run_once(std::chrono::milliseconds(1000));
        in->end_turn();
    }
    // Turns until `done` says so.
    bool until(const std::function<bool()>& done) {
        return test::eventually([&] {
            f.loop.run_once(std::chrono::milliseconds(10));
            in->end_turn();
            return done();
        });
    }
    // Caught up, then behind again (a new congestion) with one more line in the pipe.
    void congest_again() {
        out->shut = false;
        in->end_turn();
        out->shut = true;
        EXPECT_EQ(::write(p.write.get(), start_line.data(), start_line.size()),
                  static_cast<ssize_t>(start_line.size()));
    }
    void done() { f.done(*in); }
};

TEST(Intake, WithTheHandlersOnTheLoopBlockModeStopsATurnsReadsOnceAnOutputIsBehind) {
    // The turn's reads stop after the read that made the output behind, not after a whole
    // turn of them (8 reads of 64 KiB): what it is given past its mark is one read (a gRPC
    // stream holds just one more queue).
    piped<behind_once_given> t(block_no_linger);
    t.start();
    t.turn();
    EXPECT_GT(t.out->events, 0u);
    EXPECT_LE(t.out->events, start_lines_per_read)
        << "read on past the read that made the output behind";
    EXPECT_TRUE(t.in->paused());
    EXPECT_EQ(t.in->burst_holds(), 0u) << "block mode's pause is not a burst hold";
    t.done();
}

TEST(Intake, InBlockModeAnExitedWorkersPipeIsDrainedOnlyAsFarAsTheOutputsHaveRoom) {
    piped<behind_once_given> t(block_no_linger);
    t.start(true);
    t.in->drain(&t.f, true);
    EXPECT_LE(t.out->events, start_lines_per_read) << "drained past the output's room";
    EXPECT_TRUE(t.in->reading(&t.f)) << "the rest is still to be read";
    t.out->shut = false;  // room again: the rest is read as usual, to EOF
    ASSERT_TRUE(t.until([&] { return !t.in->reading(&t.f); }));
    t.done();
    EXPECT_EQ(t.out->events, t.lines);
}

TEST(Intake, WithoutAPipeToHoldInDropNewestDoesNotPauseForAnOutput) {
    fixture f(on_loop());
    auto out = std::make_shared<test::behind_output>();
    ASSERT_FALSE(f.bus.attach("out", {}, out));
    intake in(f.loop, *f.events, {});
    void* s = in.add_unwatched(f.spec());  // fed bytes (a gRPC worker's events): no pipe
    out->behind = true;
    out->dropping = true;
    in.feed(s, start_line);
    in.end_turn();
    EXPECT_FALSE(in.paused()) << "drop-newest: the output drops and counts what it cannot keep";
    EXPECT_EQ(in.burst_holds(), 0u);
    f.done(in);
}

TEST(Intake, DropNewestHoldsABurstInThePipeWhileAnOutputIsAboutToDrop) {
    // A burst that an output would drop waits in the worker's pipe instead (it has room: the
    // worker's writes go on), and is read once the output has caught up.
    piped<dropping_once_given> t(drop_newest_long_hold);
    t.start();
    t.turn();
    EXPECT_LE(t.out->events, start_lines_per_read) << "read on past the read that made it behind";
    EXPECT_TRUE(t.in->paused());
    EXPECT_EQ(t.in->burst_holds(), 1u);
    t.out->shut = false;  // caught up: the hold ends, the rest is read
    ASSERT_TRUE(t.until([&] { return t.out->events == t.lines; }));
    EXPECT_FALSE(t.in->paused());
    EXPECT_EQ(t.in->burst_hold_overruns(), 0u);
    t.done();
}

TEST(Intake, DropNewestDoesNotHoldForAnOutputThatIsOnlyBehind) {
    // A jsonl output past its soft limit is behind (block mode pauses for it) but has 15 MiB
    // more to buffer before it drops: a hold would only add latency.
    piped<behind_once_given> t(drop_newest_long_hold);
    t.start();
    ASSERT_TRUE(t.until([&] { return t.out->events == t.lines; }));
    EXPECT_EQ(t.in->burst_holds(), 0u);
    t.done();
}

TEST(Intake, DropNewestReadsOnOnceTheBurstHoldIsSpentAndHoldsOncePerCongestion) {
    piped<dropping_once_given> t([](intake_options& o) {
        o.read_linger = 0us;
        o.burst_hold = 20ms;
    });
    t.start();
    t.turn();
    EXPECT_EQ(t.in->burst_holds(), 1u);
    // The output stays about to drop: after its 20 ms the hold ends and everything is read
    // (what the output cannot keep is its to drop), with no second hold meanwhile.
    ASSERT_TRUE(t.until([&] { return t.out->events == t.lines; }));
    EXPECT_FALSE(t.in->paused());
    EXPECT_EQ(t.in->burst_holds(), 1u);
    EXPECT_EQ(t.in->burst_hold_overruns(), 1u);
    t.congest_again();  // a new congestion gets a new hold
    ASSERT_TRUE(t.until([&] { return t.in->burst_holds() == 2u; }));
    t.done();
}

TEST(Intake, DropNewestHoldsOnlyInAPipeLessThanHalfFullSoTheWorkerNeverWaits) {
    piped<dropping_once_given> t(drop_newest_long_hold);
    t.p = test::make_pipe();
    // A pipe of 256 KiB, written full: the worker's next write would wait.
    ASSERT_EQ(::fcntl(t.p.write.get(), F_SETPIPE_SZ, 256 * 1024), 256 * 1024);
    std::string bytes;
    for (; bytes.size() + start_line.size() <= 256 * 1024; ++t.lines) bytes += start_line;
    ASSERT_EQ(::write(t.p.write.get(), bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    t.watch();
    t.turn();
    // The output was about to drop with the pipe more than half full: no hold for this
    // congestion (the worker must not wait), everything read.
    EXPECT_EQ(t.out->events, t.lines);
    EXPECT_EQ(t.in->burst_holds(), 0u);
    t.congest_again();  // now with the pipe nearly empty: held
    ASSERT_TRUE(t.until([&] { return t.in->burst_holds() == 1u; }));
    EXPECT_TRUE(t.in->paused());
    t.done();
}

TEST(Intake, DropNewestAnExitedWorkersPipeIsDrainedOnlyUntilABurstIsHeld) {
    // As in block mode: the rest of the burst is read after the exit's event, once the output
    // caught up, instead of being pushed past its room at the exit.
    piped<dropping_once_given> t(drop_newest_long_hold);
    t.start(true);
    t.in->drain(&t.f, true);
    EXPECT_LE(t.out->events, start_lines_per_read) << "drained past the held burst";
    EXPECT_TRUE(t.in->reading(&t.f)) << "the rest is still to be read";
    EXPECT_EQ(t.in->burst_holds(), 1u);
    t.out->shut = false;
    ASSERT_TRUE(t.until([&] { return !t.in->reading(&t.f); }));
    t.done();
    EXPECT_EQ(t.out->events, t.lines);
}

#ifdef TELECAP_COUNT_ALLOCATIONS
TEST(Intake, WithTheHandlersOnTheLoopNoHeapAllocationPerLineOnceWarm) {
    fixture f(on_loop());
    f.bus.detach("rec");  // it keeps names (allocating), and would now run on this thread
    ASSERT_FALSE(f.bus.attach("out", {}, std::make_shared<test::behind_output>()));
    intake in(f.loop, *f.events, {});
    expect_no_allocation_per_line(f, in);
}
#endif

}  // namespace
}  // namespace telecap

namespace telecap {
namespace {

// Events and pass-through lines as one sequence, in the order the bus gave them.
struct sequence final : handler {
    std::vector<std::string> seen;
    void handle(const event& ev) override { seen.push_back("event " + ev.name.back()); }
    void passthrough(const passthrough_line& l) override {
        seen.push_back("line " + l.worker + "/" + l.pool + "/" + std::string(l.stream) + " " +
                       l.text + (l.truncated ? " [cut]" : ""));
    }
};

TEST(Intake, AskingForTapLinesSendsTheEventsReadBeforeAhead) {
    // The batch being filled holds events whose lines went to pass-through alone: it goes
    // before any line is carried, so a tap attached next never sees them without their lines.
    fixture f(on_loop());
    auto seq = std::make_shared<sequence>();
    ASSERT_FALSE(f.bus.attach("seq", {}, seq));
    intake in(f.loop, *f.events, {});
    void* s = in.add_unwatched(f.spec());
    in.feed(s, "not carried\n" + start_line);
    EXPECT_TRUE(seq->seen.empty()) << "the turn is not over: still in the batch";
    in.tap_passthrough(true);
    EXPECT_EQ(seq->seen, std::vector<std::string>{"event start"});
    in.feed(s, "carried\n" + start_line);
    in.end_turn();
    EXPECT_EQ(seq->seen, (std::vector<std::string>{"event start", "line w-0/default/stderr carried",
                                                   "event start"}));
    f.done(in);
}

TEST(Intake, TappedPassThroughLinesRideInTheirPlacesOnlyWhileAsked) {
    for (const auto mode : {dispatch_mode::caller, dispatch_mode::thread}) {
        SCOPED_TRACE(mode == dispatch_mode::caller ? "caller" : "thread");
        catalog cat = catalog::builtin();
        handler_bus bus;
        auto seq = std::make_shared<sequence>();
        ASSERT_FALSE(bus.attach("seq", {}, seq));
        dispatcher_options d;
        d.mode = mode;
        dispatcher events(bus, d);
        event_loop loop;
        capture_stats stats;
        intake_options o;
        o.pipeline.max_line = 1024;  // longer lines come in pieces
        intake in(loop, events, o);
        stream_spec spec;
        spec.owner = &stats;
        spec.cat = &cat;
        spec.ctx.worker_id = "w-0";
        spec.ctx.pool_name = "p";
        spec.stats = &stats;
        spec.stream_name = "stdout";
        void* s = in.add_unwatched(spec);
        in.feed(s, "before the tap\n" + start_line);
        in.end_turn();
        in.tap_passthrough(true);
        const std::string longer(intake::tap_line_max + 100, 'x');
        in.feed(s, "one\r\n" + start_line + "two\n" + stop_line + longer + "\n");
        in.end_turn();
        in.tap_passthrough(false);
        in.feed(s, "after the tap\n" + start_line);
        in.end_turn();
        in.finish(1s);
        ASSERT_TRUE(events.finish(test::deadline_in()));
        EXPECT_EQ(seq->seen,
                  (std::vector<std::string>{
                      "event start", "line w-0/p/stdout one", "event start",
                      "line w-0/p/stdout two", "event stop",
                      "line w-0/p/stdout " + longer.substr(0, intake::tap_line_max) + " [cut]",
                      "event start"}))
            << "a long line's pieces are joined, up to tap_line_max";
        EXPECT_EQ(in.tap_lines_dropped(), 0u);
    }
}

// The pass-through lines a bus carries: each one's worker and the gap told with it.
struct gap_record final : handler {
    std::vector<std::pair<std::string, std::uint64_t>> gaps;
    void handle(const event&) override {}
    void passthrough(const passthrough_line& l) override {
        gaps.emplace_back(l.worker, l.dropped_before);
    }
};

// A bus that records the gaps, driven by the caller, and an intake whose streams use it.
struct gap_rig {
    catalog cat = catalog::builtin();
    handler_bus bus;
    std::shared_ptr<gap_record> rec = std::make_shared<gap_record>();
    dispatcher events{bus, [] {
                          dispatcher_options d;
                          d.mode = dispatch_mode::caller;
                          return d;
                      }()};
    event_loop loop;
    capture_stats stats;
    intake in;

    explicit gap_rig(const intake_options& o = {}) : in(loop, events, o) {
        EXPECT_FALSE(bus.attach("rec", {}, rec));
    }
    void* add(const std::string& worker) {
        stream_spec spec;
        spec.owner = &stats;
        spec.cat = &cat;
        spec.stats = &stats;
        spec.ctx.worker_id = worker;
        spec.ctx.pool_name = "p";
        spec.stream_name = "stderr";
        return in.add_unwatched(spec);
    }
};

TEST(Intake, TappedLinesPastABatchsBoundAreNotCarriedButCountedAndTold) {
    intake_options o;
    o.pipeline.max_line = intake::tap_line_bytes;
    gap_rig r(o);
    auto& in = r.in;
    auto& events = r.events;
    const auto& gaps = r.rec->gaps;
    const auto& stats = r.stats;
    void* s = r.add("w");
    in.tap_passthrough(true);
    // 20 lines of 64 KiB (with their records) in one turn: 1 MiB of them fits in the batch,
    // the rest does not.
    const std::string line(intake::tap_line_max - 1 - intake::tap_line_overhead, 'x');
    for (int i = 0; i < 20; ++i) in.feed(s, line + "\n");
    in.end_turn();
    EXPECT_EQ(in.tap_lines_dropped(), 4u);
    in.feed(s, "next\n");
    in.end_turn();
    in.finish(1s);
    ASSERT_TRUE(events.finish(test::deadline_in()));
    ASSERT_EQ(gaps.size(), 17u);
    EXPECT_EQ(gaps.back().second, 4u);        // the first line carried after the gap tells it
    EXPECT_EQ(stats.passthrough_lines, 21u);  // pass-through itself lost nothing
}

// Empty lines cost their records: a flood of them is bounded like long ones. And a gap is
// told with its own stream's next line, not another worker's.
TEST(Intake, TappedEmptyLinesAreBoundedAndAGapIsToldWithItsOwnStreamsLine) {
    gap_rig r;
    auto& in = r.in;
    auto& events = r.events;
    const auto& gaps = r.rec->gaps;
    void* a = r.add("a");
    void* b = r.add("b");
    in.tap_passthrough(true);
    const std::size_t fit = intake::tap_line_bytes / intake::tap_line_overhead;
    in.feed(a, std::string(fit + 100, '\n'));
    in.end_turn();
    EXPECT_EQ(in.tap_lines_dropped(), 100u);
    in.feed(b, "b's line\n");
    in.feed(a, "a's line\n");
    in.end_turn();
    in.finish(1s);
    ASSERT_TRUE(events.finish(test::deadline_in()));
    ASSERT_EQ(gaps.size(), fit + 2);
    EXPECT_EQ(gaps[fit], (std::pair<std::string, std::uint64_t>{"b", 0}));
    EXPECT_EQ(gaps[fit + 1], (std::pair<std::string, std::uint64_t>{"a", 100}));
}

}  // namespace
}  // namespace telecap
