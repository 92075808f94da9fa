// handler_bus: attach/detach/list, prefix matching, order, failure isolation.
#include "capture/bus.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/log.hpp"

namespace telecap {
namespace {

using parts = std::vector<std::string>;

event make_event(parts name) {
    event ev;
    ev.name = std::move(name);
    ev.timestamp_ns = 1;
    return ev;
}

std::string meta_string(const event& ev, std::string_view key) {
    const auto* v = ev.meta(key);
    if (!v) return "<absent>";
    if (const auto* s = std::get_if<std::string>(v)) return *s;
    return "<not a string>";
}

class BusTest : public testing::Test {
protected:
    // Failures log errors: into a logger that keeps them, not onto the test's stderr.
    void SetUp() override {
        captured = std::make_shared<spdlog::logger>(
            "bus_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(messages));
        set_logger(captured);
    }
    void TearDown() override { set_logger(nullptr); }

    std::ostringstream messages;
    std::shared_ptr<spdlog::logger> captured;

    // Attaches a handler that records "<id>:<dotted name>" into log.
    std::error_code record(const std::string& id, parts prefix) {
        return bus.attach(id, std::move(prefix), [this, id](const event& ev) {
            log.push_back(id + ":" + ev.dotted_name());
        });
    }

    handler_bus bus;
    std::vector<std::string> log;
};

TEST_F(BusTest, AttachDetachList) {
    EXPECT_EQ(bus.size(), 0u);
    EXPECT_TRUE(bus.list().empty());
    EXPECT_FALSE(record("a", {"snakepit"}));
    EXPECT_FALSE(record("b", {}));
    EXPECT_EQ(bus.size(), 2u);
    const auto l = bus.list();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].id, "a");
    EXPECT_EQ(l[0].prefix, parts{"snakepit"});
    EXPECT_EQ(l[1].id, "b");
    EXPECT_TRUE(l[1].prefix.empty());

    EXPECT_TRUE(bus.detach("a"));
    EXPECT_FALSE(bus.detach("a"));
    EXPECT_FALSE(bus.detach("nope"));
    ASSERT_EQ(bus.list().size(), 1u);
    EXPECT_EQ(bus.list()[0].id, "b");

    bus.dispatch(make_event({"snakepit", "x"}));
    EXPECT_EQ(log, (std::vector<std::string>{"b:snakepit.x"}));
}

TEST_F(BusTest, DuplicateIdIsAnError) {
    ASSERT_FALSE(record("a", {}));
    const auto ec = record("a", {"other"});
    EXPECT_EQ(ec, std::make_error_code(std::errc::file_exists));
    EXPECT_EQ(bus.size(), 1u);
    bus.dispatch(make_event({"x"}));
    EXPECT_EQ(log.size(), 1u);  // the first handler only, once
    // After a detach the id is free again.
    ASSERT_TRUE(bus.detach("a"));
    EXPECT_FALSE(record("a", {}));
}

// The events handed to each handler, counted for ctl status and top (its SENT/S), whether the
// bus delivers them or a wrapper passes them on.
TEST_F(BusTest, CountsTheEventsDeliveredToEachHandler) {
    struct counting final : handler {
        void handle(const event&) override {}
    };
    struct passing_on final : handler {
        explicit passing_on(std::shared_ptr<handler> inner) : inner_(std::move(inner)) {}
        void handle(const event& ev) override {
            if (ev.name.size() > 2) inner_->deliver(ev);
        }
        std::shared_ptr<handler> inner_;
    };
    auto all = std::make_shared<counting>();
    auto pool = std::make_shared<counting>();
    auto inner = std::make_shared<counting>();
    auto wrapper = std::make_shared<passing_on>(inner);
    ASSERT_FALSE(bus.attach("all", {}, all));
    ASSERT_FALSE(bus.attach("pool", {"snakepit", "pool"}, pool));
    ASSERT_FALSE(bus.attach("wrapped", {}, wrapper));
    bus.dispatch(make_event({"snakepit", "pool", "worker", "spawned"}));
    bus.dispatch(make_event({"snakepit", "python"}));
    bus.dispatch(make_event({"snakepit", "python", "call"}));
    EXPECT_EQ(all->events_handed(), 3u);
    EXPECT_EQ(pool->events_handed(), 1u);
    EXPECT_EQ(wrapper->events_handed(), 3u);
    EXPECT_EQ(inner->events_handed(), 2u);
}

TEST_F(BusTest, PrefixMatching) {
    record("all", {});
    record("snakepit", {"snakepit"});
    record("python", {"snakepit", "python"});
    record("tool_start", {"snakepit", "python", "tool", "execution", "start"});
    record("longer", {"snakepit", "python", "tool", "execution", "start", "more"});
    record("pool", {"snakepit", "pool"});
    record("partial_part", {"snake"});

    bus.dispatch(make_event({"snakepit", "python", "tool", "execution", "start"}));
    EXPECT_EQ(log, (std::vector<std::string>{"all:snakepit.python.tool.execution.start",
                                             "snakepit:snakepit.python.tool.execution.start",
                                             "python:snakepit.python.tool.execution.start",
                                             "tool_start:snakepit.python.tool.execution.start"}));
    log.clear();
    bus.dispatch(make_event({"snakepit", "pool", "worker", "spawned"}));
    EXPECT_EQ(log, (std::vector<std::string>{"all:snakepit.pool.worker.spawned",
                                             "snakepit:snakepit.pool.worker.spawned",
                                             "pool:snakepit.pool.worker.spawned"}));
}

TEST_F(BusTest, DeliversInAttachOrderAndEventOrder) {
    record("c", {});
    record("a", {});
    record("b", {});
    bus.dispatch(make_event({"e1"}));
    bus.dispatch(make_event({"e2"}));
    EXPECT_EQ(log, (std::vector<std::string>{"c:e1", "a:e1", "b:e1", "c:e2", "a:e2", "b:e2"}));
}

TEST_F(BusTest, ThrowingHandlerIsDetachedCountedAndOthersStillRun) {
    std::vector<event> failures;
    record("first", {"app"});
    int thrower_calls = 0;
    bus.attach("thrower", {"app"}, [&](const event&) {
        ++thrower_calls;
        throw std::runtime_error("disk full");
    });
    record("last", {"app"});
    bus.attach("failure_watch", handler_bus::failure_event_name(),
               [&](const event& ev) { failures.push_back(ev); });

    bus.dispatch(make_event({"app", "x"}));
    EXPECT_EQ(thrower_calls, 1);
    EXPECT_EQ(log, (std::vector<std::string>{"first:app.x", "last:app.x"}));
    EXPECT_EQ(bus.failures(), 1u);
    EXPECT_EQ(bus.size(), 3u);
    for (const auto& h : bus.list()) EXPECT_NE(h.id, "thrower");

    ASSERT_EQ(failures.size(), 1u);
    const event& f = failures[0];
    EXPECT_EQ(f.name, (parts{"telemetry", "handler", "failure"}));
    EXPECT_EQ(meta_string(f, "handler_id"), "thrower");
    EXPECT_EQ(meta_string(f, "reason"), "disk full");
    EXPECT_EQ(meta_string(f, "event_name"), "app.x");
    EXPECT_GT(f.timestamp_ns, 0);

    // Detached: never called again.
    log.clear();
    bus.dispatch(make_event({"app", "y"}));
    EXPECT_EQ(thrower_calls, 1);
    EXPECT_EQ(log, (std::vector<std::string>{"first:app.y", "last:app.y"}));
    EXPECT_EQ(bus.failures(), 1u);
    EXPECT_EQ(failures.size(), 1u);
}

TEST_F(BusTest, MessagesGoToTheInjectedLoggerNotToSpdlogsDefault) {
    std::ostringstream host_messages;
    auto host = std::make_shared<spdlog::logger>(
        "host", std::make_shared<spdlog::sinks::ostream_sink_mt>(host_messages));
    const auto previous_default = spdlog::default_logger();
    spdlog::set_default_logger(host);
    bus.attach("thrower", {"app"}, [](const event&) { throw std::runtime_error("disk full"); });
    bus.dispatch(make_event({"app", "x"}));
    spdlog::set_default_logger(previous_default);
    EXPECT_NE(messages.str().find("handler \"thrower\" failed on app.x"), std::string::npos)
        << messages.str();
    EXPECT_EQ(host_messages.str(), "");
    EXPECT_EQ(logger(), captured);
    set_logger(nullptr);
    EXPECT_NE(logger(), nullptr);
    EXPECT_NE(logger(), captured);
    EXPECT_EQ(spdlog::get("telecap"), nullptr) << "the library registers no logger";
}

TEST_F(BusTest, FailureEventReachesEveryRemainingMatchingHandler) {
    bus.attach("bad", {}, [](const event& ev) {
        if (ev.name[0] == "x") throw std::logic_error("boom");
    });
    record("all", {});
    record("telemetry", {"telemetry"});
    record("other", {"x"});
    bus.dispatch(make_event({"x"}));
    // The event first, then the failure announcement after it.
    EXPECT_EQ(log, (std::vector<std::string>{"all:x", "other:x", "all:telemetry.handler.failure",
                                             "telemetry:telemetry.handler.failure"}));
}

TEST_F(BusTest, NonStdExceptionIsAFailureToo) {
    std::vector<event> failures;
    bus.attach("weird", {}, [](const event& ev) {
        if (ev.name[0] == "x") throw 42;
    });
    bus.attach("watch", handler_bus::failure_event_name(),
               [&](const event& ev) { failures.push_back(ev); });
    bus.dispatch(make_event({"x"}));
    EXPECT_EQ(bus.failures(), 1u);
    EXPECT_EQ(bus.size(), 1u);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(meta_string(failures[0], "handler_id"), "weird");
    EXPECT_NE(meta_string(failures[0], "reason"), "");
}

TEST_F(BusTest, HandlerFailingOnTheFailureEventIsDetachedToo) {
    int calls = 0;
    bus.attach("a", {}, [&](const event& ev) {
        ++calls;
        if (ev.name[0] == "x") throw std::runtime_error("a");
    });
    bus.attach("b", {}, [&](const event& ev) {
        ++calls;
        if (ev.name[0] == "telemetry") throw std::runtime_error("b");
    });
    record("c", {});
    bus.dispatch(make_event({"x"}));  // must terminate
    // a fails on x; b gets x, then fails on a's failure event; c sees both announcements.
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(bus.failures(), 2u);
    ASSERT_EQ(bus.size(), 1u);
    EXPECT_EQ(bus.list()[0].id, "c");
    EXPECT_EQ(log, (std::vector<std::string>{"c:x", "c:telemetry.handler.failure",
                                             "c:telemetry.handler.failure"}));
}

TEST_F(BusTest, HandlerDetachingItselfDuringDispatch) {
    int self_calls = 0;
    bus.attach("self", {}, [&](const event&) {
        ++self_calls;
        EXPECT_TRUE(bus.detach("self"));
    });
    record("after", {});
    bus.dispatch(make_event({"e1"}));
    bus.dispatch(make_event({"e2"}));
    EXPECT_EQ(self_calls, 1);
    EXPECT_EQ(log, (std::vector<std::string>{"after:e1", "after:e2"}));
    EXPECT_EQ(bus.size(), 1u);
    EXPECT_EQ(bus.failures(), 0u);
}

TEST_F(BusTest, HandlerDetachingALaterOneDuringDispatch) {
    bus.attach("killer", {}, [&](const event&) { bus.detach("victim"); });
    record("victim", {});
    record("survivor", {});
    bus.dispatch(make_event({"e"}));
    EXPECT_EQ(log, (std::vector<std::string>{"survivor:e"}));
    ASSERT_EQ(bus.list().size(), 2u);
}

TEST_F(BusTest, HandlerAttachedDuringDispatchWaitsForTheNextEvent) {
    bool attached = false;
    bus.attach("adder", {}, [&](const event&) {
        if (!attached) {
            attached = true;
            EXPECT_FALSE(record("late", {}));
        }
    });
    bus.dispatch(make_event({"e1"}));
    EXPECT_TRUE(log.empty());
    bus.dispatch(make_event({"e2"}));
    EXPECT_EQ(log, (std::vector<std::string>{"late:e2"}));
}

class flushing_handler final : public handler {
public:
    explicit flushing_handler(bool fail) : fail_(fail) {}
    void handle(const event&) override { ++events; }
    void flush() override {
        ++flushes;
        if (fail_) throw std::runtime_error("flush failed");
    }
    int events = 0;
    int flushes = 0;

private:
    bool fail_;
};

TEST_F(BusTest, FlushCallsEveryHandlerAndIsolatesFailures) {
    auto good1 = std::make_shared<flushing_handler>(false);
    auto bad = std::make_shared<flushing_handler>(true);
    auto good2 = std::make_shared<flushing_handler>(false);
    std::vector<event> failures;
    bus.attach("good1", {}, good1);
    bus.attach("bad", {}, bad);
    bus.attach("good2", {}, good2);
    bus.attach("watch", handler_bus::failure_event_name(),
               [&](const event& ev) { failures.push_back(ev); });

    bus.flush();
    EXPECT_EQ(good1->flushes, 1);
    EXPECT_EQ(bad->flushes, 1);
    EXPECT_EQ(good2->flushes, 1);
    EXPECT_EQ(bus.failures(), 1u);
    EXPECT_EQ(bus.size(), 3u);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(meta_string(failures[0], "handler_id"), "bad");
    EXPECT_EQ(meta_string(failures[0], "reason"), "flush failed");
    // The good handlers got the failure event (empty prefix).
    EXPECT_EQ(good1->events, 1);
    EXPECT_EQ(good2->events, 1);
    EXPECT_EQ(bad->events, 0);

    bus.flush();
    EXPECT_EQ(bad->flushes, 1);  // detached
    EXPECT_EQ(good1->flushes, 2);
    EXPECT_EQ(bus.failures(), 1u);
}

TEST_F(BusTest, SharedHandlerObjectStaysAliveWhileDetachingItself) {
    struct self_detacher final : handler {
        handler_bus* bus = nullptr;
        int calls = 0;
        void handle(const event&) override {
            ++calls;
            bus->detach("me");
            ++calls;  // still alive: the bus holds a reference during the call
        }
    };
    auto h = std::make_shared<self_detacher>();
    h->bus = &bus;
    std::weak_ptr<self_detacher> weak = h;
    bus.attach("me", {}, std::shared_ptr<handler>(h));
    h.reset();
    bus.dispatch(make_event({"e"}));
    EXPECT_TRUE(weak.expired());  // released after the call, not leaked
    EXPECT_EQ(bus.size(), 0u);
}

TEST_F(BusTest, DetachedAndFailedHandlersAreReleased) {
    struct thrower final : handler {
        void handle(const event&) override { throw std::runtime_error("no"); }
    };
    struct quiet final : handler {
        void handle(const event&) override {}
    };
    auto t = std::make_shared<thrower>();
    auto q = std::make_shared<quiet>();
    std::weak_ptr<thrower> weak_t = t;
    std::weak_ptr<quiet> weak_q = q;
    bus.attach("t", {}, std::shared_ptr<handler>(std::move(t)));
    bus.attach("q", {}, std::shared_ptr<handler>(std::move(q)));
    bus.dispatch(make_event({"e"}));
    EXPECT_TRUE(weak_t.expired());  // failed on its first event: detached and let go
    EXPECT_FALSE(weak_q.expired());
    ASSERT_TRUE(bus.detach("q"));
    EXPECT_TRUE(weak_q.expired());
    EXPECT_EQ(bus.size(), 0u);
}

TEST_F(BusTest, CountersOfHandlersThatKeepThem) {
    struct counting final : handler {
        int n = 0;
        void handle(const event&) override { ++n; }
        std::string counters_json() const override {
            return "{\"seen\":" + std::to_string(n) + "}";
        }
    };
    EXPECT_EQ(bus.counters_json(), "{}");
    auto c = std::make_shared<counting>();
    bus.attach("counter \"one\"", {}, c);
    record("plain", {});  // keeps no counters: left out
    bus.dispatch(make_event({"e"}));
    bus.dispatch(make_event({"e"}));
    EXPECT_EQ(bus.counters_json(), R"({"counter \"one\"":{"seen":2}})");
    bus.detach("counter \"one\"");
    EXPECT_EQ(bus.counters_json(), "{}");
}

}  // namespace
}  // namespace telecap

namespace telecap {
namespace {

// A handler that says it takes no events: handle() is never called, flush() and finish() are.
class no_events final : public handler {
public:
    void handle(const event&) override { ++handled; }
    bool takes_events() const override { return false; }
    void flush() override { ++flushed; }
    void finish(std::chrono::steady_clock::time_point) override { ++finished; }
    int handled = 0, flushed = 0, finished = 0;
};

TEST(BusTakesEvents, AHandlerThatTakesNoEventsIsFlushedAndFinishedButNeverHandles) {
    handler_bus bus;
    auto h = std::make_shared<no_events>();
    int others = 0;
    ASSERT_FALSE(bus.attach("exporter", {}, h));
    ASSERT_FALSE(bus.attach("other", {}, [&](const event&) { ++others; }));
    bus.dispatch(make_event({"a", "b"}));
    bus.flush();
    bus.finish(std::chrono::steady_clock::now());
    EXPECT_EQ(h->handled, 0);
    EXPECT_EQ(h->flushed, 1);
    EXPECT_EQ(h->finished, 1);
    EXPECT_EQ(others, 1);
}

}  // namespace
}  // namespace telecap
