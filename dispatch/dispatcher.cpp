#include "dispatch/dispatcher.hpp"

#include <pthread.h>

#include <algorithm>
#include <optional>

namespace telecap {

namespace {
// Empty batches kept for reuse at most. Batches warm up once (their slots are allocated on
// first use), so every batch a backlog made is kept for the next one: what they hold is at
// most what the queue held at its peak, which --queue and --queue-bytes bound.
constexpr std::size_t max_free_batches = 64;
}  // namespace

dispatcher::dispatcher(handler_bus& bus, dispatcher_options o)
    : bus_(bus), o_(o), done_future_(done_.get_future()) {
    if (o_.mode == dispatch_mode::caller) return;
    thread_ = std::thread([this] { run(); });
    ::pthread_setname_np(thread_.native_handle(), "tc-dispatch");
}

dispatcher::~dispatcher() {
    if (o_.mode == dispatch_mode::caller) {
        finish(std::chrono::steady_clock::now());
        return;
    }
    if (!joined_ && !finish(std::chrono::steady_clock::now() + std::chrono::seconds(5))) give_up();
}

dispatcher::batch_ptr dispatcher::recycled() {
    if (free_.empty()) return nullptr;
    batch_ptr b = std::move(free_.back());
    free_.pop_back();
    return b;
}

std::unique_ptr<event_batch> dispatcher::take_batch() {
    batch_ptr b;
    {
        std::lock_guard lock(mu_);
        b = recycled();
    }
    return b ? std::move(b) : std::make_unique<event_batch>(o_.mode == dispatch_mode::thread);
}

bool dispatcher::enqueue(batch_ptr b) {
    count_ += b->size();
    bytes_ += b->bytes();
    queued_.push_back(std::move(b));
    backlog_.store(true, std::memory_order_relaxed);
    return sleeping_;
}

bool dispatcher::submit(std::unique_ptr<event_batch>& b) {
    return submit_wait(b, std::chrono::milliseconds(0));
}

void dispatcher::deliver(const event_batch& b) {
    // Every 64 events, as a batch of the loop's is: what a handler gets past its mark before
    // the next look is at most that many (-o grpc holds them).
    const bool thread = o_.mode == dispatch_mode::thread;
    const bool waits = o_.wait_for_handlers && thread;
    const bool holds = !waits && thread && o_.burst_hold.count() > 0;
    const auto look = [&](std::size_t i) {
        if (i % 64 != 0) return;
        if (waits) wait_for_handlers();
        if (holds) hold_for_handlers();
    };
    const auto& lines = b.lines();
    if (lines.empty()) {  // the usual case: lines ride only while a tap asks for them
        for (std::size_t i = 0; i < b.size(); ++i) {
            look(i);
            bus_.dispatch(b[i]);
        }
        return;
    }
    std::size_t l = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        look(i);
        for (; l < lines.size() && lines[l].first <= i; ++l)
            bus_.dispatch_passthrough(lines[l].second);
        bus_.dispatch(b[i]);
    }
    for (; l < lines.size(); ++l) bus_.dispatch_passthrough(lines[l].second);
}

bool dispatcher::waited_enough(
    std::chrono::steady_clock::time_point now,
    std::optional<std::chrono::steady_clock::time_point>& posts_since) const {
    // Posted work (a reload's change of outputs, a tap) waits behind this long at most: then
    // the rest of the batch goes (a stream behind holds, then drops, counted) and it runs.
    constexpr std::chrono::milliseconds post_patience{500};
    // At finish() the handlers still get their time, up to most of its deadline: the rest of
    // the queue then goes to them (what they cannot take is dropped, counted) before it.
    if (closed_ && now >= wait_until_) return true;
    if (posted_.empty()) return false;
    if (!posts_since) posts_since = now;
    return now - *posts_since >= post_patience;
}

dispatcher::wait_end dispatcher::wait_while(const std::function<bool()>& behind,
                                            const std::function<bool()>& enough) {
    std::optional<std::chrono::steady_clock::time_point> posts_since;
    while (behind()) {
        std::unique_lock lock(mu_);
        if (enough()) return wait_end::enough;
        if (waited_enough(std::chrono::steady_clock::now(), posts_since)) return wait_end::cut;
        work_.wait_for(lock, handler::congestion_recheck);
    }
    return wait_end::caught_up;
}

void dispatcher::hold_for_handlers() {
    if (!bus_.about_to_drop()) {
        hold_spent_ = false;
        return;
    }
    if (hold_spent_) return;  // until the handlers catch up: one hold per congestion
    // Half the queue stays free for the producers, as the loop's hold keeps half of each pipe:
    // a hold that filled it would make them drop whole batches while the handler has room.
    const auto half_full = [&] { return count_ >= o_.queue / 2 || bytes_ >= o_.queue_bytes / 2; };
    {
        std::lock_guard lock(mu_);
        hold_spent_ = half_full();  // then no hold for this congestion
        if (hold_spent_) return;
    }
    const auto since = std::chrono::steady_clock::now();
    // An idle -o grpc stream starts writing at its flush, and would otherwise wait for one.
    bus_.flush();
    burst_holds_.fetch_add(1, std::memory_order_relaxed);
    const auto end = wait_while(
        [&] { return bus_.about_to_drop(); },
        [&] { return std::chrono::steady_clock::now() - since >= o_.burst_hold || half_full(); });
    if (end == wait_end::enough) burst_hold_overruns_.fetch_add(1, std::memory_order_relaxed);
    hold_spent_ = end != wait_end::caught_up;
}

void dispatcher::wait_for_handlers() {
    if (!bus_.congested()) return;
    // What the handlers batched goes out first: an idle -o grpc stream starts writing at a
    // flush (its kick) when fewer than its start mark wait, and would otherwise stay behind
    // for a flush that never comes while this thread waits.
    handler_waits_.fetch_add(1, std::memory_order_relaxed);
    bus_.flush();
    wait_while([&] { return bus_.congested(); }, [] { return false; });
}

void dispatcher::dispatch_here(const event_batch& b) {
    deliver(b);
    dispatched_.fetch_add(b.size(), std::memory_order_relaxed);
}

bool dispatcher::submit_wait(std::unique_ptr<event_batch>& b, std::chrono::milliseconds timeout) {
    if (!b || b->empty()) return true;
    if (o_.mode == dispatch_mode::caller) {
        if (closed_) return false;
        dispatch_here(*b);
        b->clear();  // the same batch again: its slots are warm and in this core's cache
        return true;
    }
    bool wake = false;
    {
        std::unique_lock lock(mu_);
        const auto ready = [&] { return closed_ || fits(*b); };
        if (!ready() && timeout.count() > 0) {  // no timed wait (a system call) for submit()
            ++room_waiters_;
            room_.wait_for(lock, timeout, ready);
            --room_waiters_;
        }
        if (closed_ || !fits(*b)) return false;
        wake = enqueue(std::move(b));
        b = recycled();
    }
    if (wake) work_.notify_one();
    if (!b) b = std::make_unique<event_batch>();
    return true;
}

std::size_t dispatcher::submit(std::vector<event>& batch, std::size_t from) {
    return submit_wait(batch, from, std::chrono::milliseconds(0));
}

std::size_t dispatcher::submit_wait(std::vector<event>& batch, std::size_t from,
                                    std::chrono::milliseconds timeout) {
    if (o_.mode == dispatch_mode::caller) {
        if (closed_) return from;
        event_batch b;
        for (; from < batch.size(); ++from) b.push(std::move(batch[from]));
        dispatch_here(b);
        return from;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mu_);
    while (from < batch.size() && !closed_) {
        if (!room()) {
            ++room_waiters_;
            const bool ok = room_.wait_until(lock, deadline, [&] { return closed_ || room(); });
            --room_waiters_;
            if (!ok || closed_) break;
        }
        // Event by event, each counted as it goes in, so the bounds hold exactly.
        batch_ptr b = recycled();
        if (!b) b = std::make_unique<event_batch>();
        std::size_t n = 0;
        std::size_t bytes = 0;
        while (from < batch.size() &&
               (count_ + n == 0 || (count_ + n < o_.queue && bytes_ + bytes < o_.queue_bytes))) {
            b->push(std::move(batch[from++]));
            bytes = b->bytes();
            ++n;
        }
        if (enqueue(std::move(b))) work_.notify_one();
    }
    return from;
}

void dispatcher::when_room(std::function<void()> fn, std::size_t events) {
    if (o_.mode == dispatch_mode::caller) {  // never full: there is no queue
        if (fn) fn();
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(mu_);
        room_fn_ = std::move(fn);
        room_need_ = std::max<std::size_t>(events, 1);
        wake = sleeping_;  // the room may be there already: the dispatch thread looks
    }
    if (wake) work_.notify_one();
}

void dispatcher::when_taken(std::function<void()> fn) {
    if (o_.mode == dispatch_mode::caller) {  // nothing is ever left untaken
        if (fn) fn();
        return;
    }
    std::lock_guard lock(mu_);
    taken_fn_ = std::move(fn);
}

void dispatcher::post(std::function<void()> fn) {
    if (o_.mode == dispatch_mode::caller) {  // between batches already: the caller drives the bus
        fn();
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(mu_);
        posted_.push_back(std::move(fn));
        wake = sleeping_;
    }
    if (wake) work_.notify_one();
}

void dispatcher::flush() {
    if (o_.mode == dispatch_mode::caller && !closed_) bus_.flush();
}

bool dispatcher::congested() const { return o_.mode == dispatch_mode::caller && bus_.congested(); }

bool dispatcher::about_to_drop() const {
    return o_.mode == dispatch_mode::caller && bus_.about_to_drop();
}

std::size_t dispatcher::depth() const {
    if (o_.mode == dispatch_mode::caller) return 0;
    std::lock_guard lock(mu_);
    return count_;
}

void dispatcher::run() {
    std::vector<batch_ptr> taken;
    std::vector<std::function<void()>> fns;
    std::function<void()> room_fn;
    std::function<void()> taken_fn;
    for (;;) {
        bool dry = false;
        {
            std::unique_lock lock(mu_);
            const auto ready = [&] {
                return closed_ || !queued_.empty() || !posted_.empty() ||
                       (room_fn_ && room_for_fn());
            };
            if (!ready()) {
                sleeping_ = true;
                work_.wait(lock, ready);
                sleeping_ = false;
                wakeups_.fetch_add(1, std::memory_order_relaxed);
            }
            if (closed_ && queued_.empty() && posted_.empty()) break;
            taken.swap(queued_);
            backlog_.store(false, std::memory_order_relaxed);
            if (!taken.empty()) taken_fn.swap(taken_fn_);
        }
        if (taken_fn) {
            taken_fn();
            taken_fn = nullptr;
        }
        std::size_t events = 0;
        std::size_t bytes = 0;
        for (const auto& b : taken) {
            deliver(*b);
            events += b->size();
            bytes += b->bytes();
        }
        dispatched_.fetch_add(events, std::memory_order_relaxed);
        bool wake_producers = false;
        {
            std::lock_guard lock(mu_);
            count_ -= events;
            bytes_ -= bytes;
            for (auto& b : taken) {
                if (free_.size() >= max_free_batches) break;
                b->clear();
                free_.push_back(std::move(b));
            }
            fns.swap(posted_);
            if (room_fn_ && room_for_fn()) room_fn.swap(room_fn_);
            wake_producers = room_waiters_ > 0 && events > 0;
            dry = queued_.empty();
        }
        taken.clear();
        if (wake_producers) room_.notify_all();
        for (auto& fn : fns) fn();
        fns.clear();
        if (room_fn) {
            room_fn();
            room_fn = nullptr;
        }
        if (dry) bus_.flush();  // outputs flush whenever we run dry
    }
    bus_.flush();
    done_.set_value();
}

bool dispatcher::finish(std::chrono::steady_clock::time_point deadline) {
    if (joined_) return true;
    if (o_.mode == dispatch_mode::caller) {
        closed_ = true;
        bus_.flush();
        joined_ = true;
        return true;
    }
    if (abandoned_) return false;
    if (!finished_) {
        {
            std::lock_guard lock(mu_);
            closed_ = true;
            const auto now = std::chrono::steady_clock::now();
            wait_until_ = now + (std::max(deadline, now) - now) * 3 / 4;
        }
        work_.notify_all();
        room_.notify_all();
        finished_ = true;
    }
    if (done_future_.wait_until(deadline) != std::future_status::ready) return false;
    thread_.join();
    joined_ = true;
    return true;
}

void dispatcher::give_up() {
    if (o_.mode == dispatch_mode::caller) return;
    if (joined_ || abandoned_) return;
    abandoned_ = true;
    thread_.detach();
}

}  // namespace telecap
