#include "capture/bus.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "capture/event_json.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace telecap {

namespace {

class function_handler final : public handler {
public:
    explicit function_handler(std::function<void(const event&)> fn) : fn_(std::move(fn)) {}
    void handle(const event& ev) override { fn_(ev); }

private:
    std::function<void(const event&)> fn_;
};

}  // namespace

const std::vector<std::string>& handler_bus::failure_event_name() {
    static const std::vector<std::string> name{"telemetry", "handler", "failure"};
    return name;
}

std::error_code handler_bus::attach(std::string id, std::vector<std::string> prefix,
                                    std::shared_ptr<handler> h) {
    for (const auto& e : entries_)
        if (e.attached && e.info.id == id) return std::make_error_code(std::errc::file_exists);
    const bool takes = h->takes_events();
    entries_.push_back({{std::move(id), std::move(prefix)}, std::move(h), true, takes});
    return {};
}

std::error_code handler_bus::attach(std::string id, std::vector<std::string> prefix,
                                    std::function<void(const event&)> fn) {
    return attach(std::move(id), std::move(prefix),
                  std::make_shared<function_handler>(std::move(fn)));
}

bool handler_bus::detach(std::string_view id) {
    for (auto& e : entries_) {
        if (e.attached && e.info.id == id) {
            e.attached = false;
            detached_ = true;
            compact();
            return true;
        }
    }
    return false;
}

std::vector<handler_info> handler_bus::list() const {
    std::vector<handler_info> out;
    for (const auto& e : entries_)
        if (e.attached) out.push_back(e.info);
    return out;
}

std::size_t handler_bus::size() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(entries_.begin(), entries_.end(), [](const entry& e) { return e.attached; }));
}

void handler_bus::compact() {
    if (depth_ == 0 && detached_) {
        std::erase_if(entries_, [](const entry& e) { return !e.attached; });
        detached_ = false;
    }
}

void handler_bus::fail(std::size_t index, std::string_view reason, const std::string& event_name) {
    entry& e = entries_[index];
    e.attached = false;
    detached_ = true;
    ++failures_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log_ >= std::chrono::seconds(1)) {
        last_log_ = now;
        logger()->error("handler \"{}\" failed on {} and was detached: {}", e.info.id, event_name,
                        reason);
    }
    event f;
    f.name = failure_event_name();
    const auto ns = wall_clock_ns();
    f.measurements.emplace_back("system_time", measurement_value(std::int64_t{ns}));
    f.metadata.emplace_back("handler_id", metadata_value(e.info.id));
    f.metadata.emplace_back("event_name", metadata_value(event_name));
    f.metadata.emplace_back("kind", metadata_value(std::string("error")));
    f.metadata.emplace_back("reason", metadata_value(std::string(reason)));
    f.timestamp_ns = ns;
    pending_failures_.push_back(std::move(f));
}

void handler_bus::announce_failures() {
    if (depth_ != 0 || (!detached_ && pending_failures_.empty())) return;  // the usual case
    compact();
    // Each failure becomes an event of its own, after the one that caused it; a handler that
    // fails on one of these is detached too, so this ends.
    while (!pending_failures_.empty()) {
        event f = std::move(pending_failures_.front());
        pending_failures_.erase(pending_failures_.begin());
        dispatch(f);
    }
}

void handler_bus::dispatch(const event& ev) {
    const shared_event_json::dispatch_scope rendered;  // one JSON rendering for the outputs
    ++depth_;
    const std::size_t n = entries_.size();  // handlers attached during the call wait
    for (std::size_t i = 0; i < n; ++i) {
        const auto& prefix = entries_[i].info.prefix;
        if (!entries_[i].attached || !entries_[i].takes_events ||
            (!prefix.empty() && !ev.matches(prefix)))
            continue;
        // A raw pointer is enough: entries are not erased while a dispatch runs (depth_ > 0),
        // so the handler stays owned even if it detaches itself or others attach.
        handler* h = entries_[i].h.get();
        try {
            h->deliver(ev);
        } catch (const std::exception& ex) {
            fail(i, ex.what(), ev.dotted_name());
        } catch (...) {
            fail(i, "unknown exception", ev.dotted_name());
        }
    }
    --depth_;
    announce_failures();
}

void handler_bus::dispatch_passthrough(const passthrough_line& line) {
    ++depth_;
    const std::size_t n = entries_.size();
    for (std::size_t i = 0; i < n; ++i) {
        if (!entries_[i].attached) continue;
        handler* h = entries_[i].h.get();
        try {
            h->passthrough(line);
        } catch (const std::exception& ex) {
            fail(i, ex.what(), "a pass-through line");
        } catch (...) {
            fail(i, "unknown exception", "a pass-through line");
        }
    }
    --depth_;
    announce_failures();
}

bool handler_bus::congested() const {
    return std::any_of(entries_.begin(), entries_.end(),
                       [](const entry& e) { return e.attached && e.h->congested(); });
}

bool handler_bus::about_to_drop() const {
    return std::any_of(entries_.begin(), entries_.end(),
                       [](const entry& e) { return e.attached && e.h->about_to_drop(); });
}

std::uint64_t handler_bus::events_dropped() const {
    std::uint64_t n = 0;
    for (const auto& e : entries_) n += e.h ? e.h->events_dropped() : 0;
    return n;
}

std::uint64_t handler_bus::items_lost() const {
    std::uint64_t n = 0;
    for (const auto& e : entries_) n += e.h ? e.h->items_lost() : 0;
    return n;
}

std::string handler_bus::counters_json() const {
    std::string out = "{";
    for (const auto& e : entries_) {
        if (!e.attached) continue;
        const std::string c = e.h->counters_json();
        if (c.empty()) continue;
        if (out.size() > 1) out += ',';
        append_json_string(out, e.info.id);
        out += ':';
        out += c;
    }
    return out + "}";
}

void handler_bus::flush() {
    each_handler("flush", [](handler& h) { h.flush(); });
}

void handler_bus::finish(std::chrono::steady_clock::time_point deadline) {
    each_handler("finish", [deadline](handler& h) { h.finish(deadline); });
}

template <typename F>
void handler_bus::each_handler(const char* what, F&& call) {
    ++depth_;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (!entries_[i].attached) continue;
        try {
            call(*entries_[i].h);
        } catch (const std::exception& ex) {
            fail(i, ex.what(), what);
        } catch (...) {
            fail(i, "unknown exception", what);
        }
    }
    --depth_;
    announce_failures();
}

}  // namespace telecap
