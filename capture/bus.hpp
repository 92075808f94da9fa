#pragma once
// The handler bus: Erlang :telemetry's attach/execute/detach, for normalized events.
// Handlers attach with a unique id and an event prefix, and receive each matching event in
// attach order. A handler that throws is detached from everything; the failure is counted,
// logged (at most once a second), and announced as a telemetry.handler.failure event to the
// handlers still attached. The bus is driven by one thread (the dispatcher); handlers may
// attach or detach from inside a call.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "telecap/capture/event.hpp"
#include "telecap/capture/handler.hpp"

namespace telecap {

struct handler_info {
    std::string id;
    std::vector<std::string> prefix;
};

class handler_bus {
public:
    static const std::vector<std::string>& failure_event_name();

    // errc::file_exists when `id` is attached already.
    std::error_code attach(std::string id, std::vector<std::string> prefix,
                           std::shared_ptr<handler> h);
    std::error_code attach(std::string id, std::vector<std::string> prefix,
                           std::function<void(const event&)> fn);
    bool detach(std::string_view id);
    std::vector<handler_info> list() const;
    std::size_t size() const noexcept;

    void dispatch(const event& ev);
    // A pass-through line to every attached handler (handler::passthrough), in its place
    // among the events.
    void dispatch_passthrough(const passthrough_line& line);
    void flush();
    // Calls finish(deadline) on every attached handler (shutdown); failures as for flush().
    void finish(std::chrono::steady_clock::time_point deadline);
    // {"<id>": <counters>, ...} over the attached handlers that keep counters; "{}" if none.
    std::string counters_json() const;

    // Some attached handler is congested (handler::congested).
    bool congested() const;
    // Some attached handler is about to drop (handler::about_to_drop).
    bool about_to_drop() const;

    std::uint64_t failures() const noexcept { return failures_; }
    // The sum of events_dropped() over the handlers (attached, or detached for failing).
    std::uint64_t events_dropped() const;
    // The sum of items_lost() over the same handlers.
    std::uint64_t items_lost() const;

private:
    template <typename F>
    void each_handler(const char* what, F&& call);

    struct entry {
        handler_info info;
        std::shared_ptr<handler> h;
        bool attached = true;
        bool takes_events = true;  // handler::takes_events(), asked at attach time
    };
    void fail(std::size_t index, std::string_view reason, const std::string& event_name);
    void compact();
    void announce_failures();

    std::vector<entry> entries_;
    std::vector<event> pending_failures_;
    int depth_ = 0;          // dispatch nesting: entries are erased only at depth 0
    bool detached_ = false;  // some entries wait to be erased
    std::uint64_t failures_ = 0;
    std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace telecap
