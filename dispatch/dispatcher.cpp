#include "dispatch/dispatcher.hpp"

namespace telecap {

dispatcher::dispatcher(handler_bus& bus, dispatcher_options o)
    : bus_(bus),
      queue_(o.queue, o.queue_bytes, [](const event& ev) { return ev.approximate_size(); }),
      done_future_(done_.get_future()) {
    queue_.set_linger(o.linger, o.linger_events);
    thread_ = std::thread([this] { run(); });
}

dispatcher::~dispatcher() {
    if (!joined_ && !finish(std::chrono::steady_clock::now() + std::chrono::seconds(5))) give_up();
}

std::size_t dispatcher::submit(std::vector<event>& batch, std::size_t from) {
    return queue_.push(batch, from, std::chrono::milliseconds(0));
}

std::size_t dispatcher::submit_wait(std::vector<event>& batch, std::size_t from,
                                    std::chrono::milliseconds timeout) {
    return queue_.push(batch, from, timeout);
}

void dispatcher::when_room(std::function<void()> fn) {
    {
        std::lock_guard lock(mu_);
        room_fn_ = std::move(fn);
    }
    queue_.wake();  // the room may be there already
}

void dispatcher::post(std::function<void()> fn) {
    {
        std::lock_guard lock(mu_);
        posted_.push_back(std::move(fn));
    }
    queue_.wake();
}

void dispatcher::run() {
    std::deque<event> batch;
    const auto side_work = [&] {
        std::vector<std::function<void()>> fns;
        std::function<void()> room;
        {
            std::lock_guard lock(mu_);
            fns.swap(posted_);
            if (room_fn_ && queue_.has_room()) room.swap(room_fn_);
        }
        for (auto& fn : fns) fn();
        if (room) room();
    };
    while (queue_.pop_all(batch)) {
        for (const auto& ev : batch) bus_.dispatch(ev);
        dispatched_.fetch_add(batch.size(), std::memory_order_relaxed);
        batch.clear();
        queue_.release();
        side_work();
        if (queue_.queued() == 0) bus_.flush();  // outputs flush whenever we run dry
    }
    side_work();
    bus_.flush();
    done_.set_value();
}

bool dispatcher::finish(std::chrono::steady_clock::time_point deadline) {
    if (joined_) return true;
    if (abandoned_) return false;
    if (!finished_) {
        queue_.close();
        finished_ = true;
    }
    if (done_future_.wait_until(deadline) != std::future_status::ready) return false;
    thread_.join();
    joined_ = true;
    return true;
}

void dispatcher::give_up() {
    if (joined_ || abandoned_) return;
    abandoned_ = true;
    thread_.detach();  // stuck in a handler: it cannot be joined
}

}  // namespace telecap
