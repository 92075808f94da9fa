#include "bridge/grpc_client.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "bridge/event_proto.hpp"
#include "bridge/snakepit_bridge.grpc.pb.h"
#include "core/log.hpp"

namespace telecap::bridge {

std::optional<std::string> check_grpc_address(std::string_view addr, bool allow_port_template) {
    if (addr.starts_with("unix:")) {
        if (addr.size() == 5) return "needs a socket path: unix:PATH";
        return std::nullopt;
    }
    const auto colon = addr.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return "the address must be HOST:PORT or unix:PATH, not \"" + std::string(addr) + "\"";
    const std::string_view port = addr.substr(colon + 1);
    if (allow_port_template && port == "{port}") return std::nullopt;
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || v == 0 ||
        v > 65535)
        return std::string("the port must be a number from 1 to 65535") +
               (allow_port_template ? " or {port}" : "") + ", not \"" + std::string(port) + "\"";
    return std::nullopt;
}

namespace {

std::vector<pb::TelemetryControl> control_messages(const control::effective_controls& c,
                                                   bool first) {
    std::vector<pb::TelemetryControl> out;
    // Snakepit's host opens with toggle(true); then whatever differs from a fresh stream's.
    if (first) out.emplace_back().mutable_toggle()->set_enabled(true);
    // Sampling stays telecap's (its gate): Snakepit's worker ignores the patterns, and a draw
    // there and another here would square the rate.
    if (!first || c.filt != control::filter{}) {
        auto* f = out.emplace_back().mutable_filter();
        for (const auto& p : c.filt.allow) f->add_allow(p);
        for (const auto& p : c.filt.deny) f->add_deny(p);
    }
    if (!first || !c.enabled) out.emplace_back().mutable_toggle()->set_enabled(c.enabled);
    return out;
}

}  // namespace

struct grpc_client::impl : std::enable_shared_from_this<impl> {
    class call;

    grpc_client_options opts;
    grpc_client_stats& stats;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::BridgeService::Stub> stub;

    // Loop thread only.
    grpc_client_host* host_loop;  // null once stopped
    call* current = nullptr;      // the call in progress (alive while `hold` is ours)
    bool hold = false;            // the loop's hold on `current`: it cannot be done meanwhile
    std::uint64_t generation = 0;
    std::uint64_t timer = 0;
    bool timer_armed = false;
    bool started = false;
    bool stopping = false;
    std::chrono::milliseconds backoff;
    control::effective_controls controls;
    std::vector<pb::TelemetryEvent> taking;  // the loop's side of the swap
    std::vector<char> numbers;
    raw_event raw;

    // Shared with gRPC's threads.
    std::mutex mu;
    std::condition_variable done_cv;
    grpc_client_host* host = nullptr;  // null once stopped
    std::vector<pb::TelemetryEvent> pending;
    bool paused = false;  // no read outstanding: the loop starts the next one
    bool call_done = true;
    bool read_over = false;  // the call's reads are over (OnReadDone(false))
    bool answered = false;   // the worker answered the call in progress

    impl(grpc_client_options o, grpc_client_host& h, grpc_client_stats& s)
        : opts(std::move(o)), stats(s), host_loop(&h), backoff(opts.backoff_min), host(&h) {
        grpc::ChannelArguments args;
        // gRPC's own reconnection while a call waits for the worker: the same bounds.
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                    static_cast<int>(opts.backoff_min.count()));
        args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(opts.backoff_min.count()));
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(opts.backoff_max.count()));
        // Each worker its own connection, never one shared with another client's.
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        channel = grpc::CreateCustomChannel(opts.address, grpc::InsecureChannelCredentials(), args);
        stub = pb::BridgeService::NewStub(channel);
    }

    void start_call();
    // Hands what was read to the host. Unless `force`, waits (a timer) while the host is not
    // ready: the reads stay held back, and the worker waits in flow control.
    void drain(bool force = false);
    bool retry_armed = false;
    std::uint64_t retry_timer = 0;
    void read_ended(std::uint64_t gen);
    void call_finished(std::uint64_t gen, bool answered, const grpc::Status& status);
    void send(std::vector<pb::TelemetryControl> msgs);
};

// One call. Owned by gRPC until OnDone, where it deletes itself; the loop's hold keeps it from
// being done while the loop may still start a read or a write on it.
class grpc_client::impl::call final
    : public grpc::ClientBidiReactor<pb::TelemetryControl, pb::TelemetryEvent> {
public:
    call(std::shared_ptr<impl> owner, std::uint64_t gen) : owner_(std::move(owner)), gen_(gen) {
        ctx_.set_wait_for_ready(true);  // the worker may not listen yet; no deadline
    }

    void begin(std::vector<pb::TelemetryControl> first) {
        owner_->stub->async()->StreamTelemetry(&ctx_, this);
        AddHold();  // the loop's
        queue(std::move(first));
        StartRead(&in_);
        StartCall();
    }

    // Any thread holding no lock of ours.
    void queue(std::vector<pb::TelemetryControl> msgs) {
        std::unique_lock lock(write_mu_);
        for (auto& m : msgs) writes_.push_back(std::move(m));
        if (writing_ || writes_.empty() || write_failed_) return;
        writing_ = true;
        lock.unlock();
        StartWrite(&writes_.front());  // deque: the front stays put while others are added
    }

    void read_next() { StartRead(&in_); }
    void cancel() {
        cancelled_.store(true);
        ctx_.TryCancel();
    }
    void release() { RemoveHold(); }

    void OnReadInitialMetadataDone(bool ok) override {
        if (ok) answered();
    }

    void OnReadDone(bool ok) override {
        if (!ok) {
            // The stream ended (or failed): the loop lets go of the call, then OnDone says how.
            {
                std::lock_guard lock(owner_->mu);
                owner_->read_over = true;
            }
            owner_->done_cv.notify_all();
            post([gen = gen_](impl& o) { o.read_ended(gen); });
            return;
        }
        answered();
        bool wake = false, more = false;
        {
            std::lock_guard lock(owner_->mu);
            auto& p = owner_->pending;
            wake = p.empty();
            p.emplace_back().Swap(&in_);
            more = p.size() < owner_->opts.max_pending;
            if (!more) {
                owner_->paused = true;
                owner_->stats.read_pauses.fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (more) StartRead(&in_);
        if (wake) {
            owner_->done_cv.notify_all();  // finish() may be waiting for it
            post([](impl& o) { o.drain(); });
        }
    }

    void OnWriteDone(bool ok) override {
        std::unique_lock lock(write_mu_);
        writes_.pop_front();
        owner_->stats.controls_sent.fetch_add(ok ? 1 : 0, std::memory_order_relaxed);
        if (!ok) write_failed_ = true;  // the call is ending: OnDone follows
        if (!ok || writes_.empty()) {
            writing_ = false;
            return;
        }
        lock.unlock();
        StartWrite(&writes_.front());
    }

    void OnDone(const grpc::Status& s) override {
        // Counted here, not on the loop: a call that ends as the client stops counts too.
        auto& st = owner_->stats;
        st.connected.store(0, std::memory_order_relaxed);
        st.last_status.store(static_cast<std::int64_t>(s.error_code()), std::memory_order_relaxed);
        if (!cancelled_.load())  // a call telecap let go of has not failed
            (s.ok() ? st.ended : st.failed).fetch_add(1, std::memory_order_relaxed);
        const bool was_answered = answered_.load();
        const grpc::Status status = s;
        const std::uint64_t gen = gen_;
        post([gen, was_answered, status](impl& o) { o.call_finished(gen, was_answered, status); });
        {
            std::lock_guard lock(owner_->mu);
            owner_->call_done = true;
        }
        owner_->done_cv.notify_all();
        delete this;
    }

private:
    void answered() {
        if (answered_.exchange(true)) return;
        {
            std::lock_guard lock(owner_->mu);
            owner_->answered = true;
        }
        owner_->stats.connects.fetch_add(1, std::memory_order_relaxed);
        owner_->stats.connected.store(1, std::memory_order_relaxed);
    }

    template <typename F>
    void post(F fn) {
        std::lock_guard lock(owner_->mu);
        if (!owner_->host) return;  // stopped: nobody to tell
        std::weak_ptr<impl> weak = owner_;
        owner_->host->post([weak, fn = std::move(fn)] {
            if (auto o = weak.lock()) fn(*o);
        });
    }

    std::shared_ptr<impl> owner_;
    std::uint64_t gen_;
    grpc::ClientContext ctx_;
    pb::TelemetryEvent in_;
    std::atomic<bool> answered_{false};
    std::atomic<bool> cancelled_{false};  // by telecap (stop)
    std::mutex write_mu_;
    std::deque<pb::TelemetryControl> writes_;
    bool writing_ = false;
    bool write_failed_ = false;
};

void grpc_client::impl::start_call() {
    timer_armed = false;
    if (stopping || !host_loop) return;
    stats.calls.fetch_add(1, std::memory_order_relaxed);
    if (generation > 0) stats.reconnects.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard lock(mu);
        call_done = false;
        paused = false;
        read_over = false;
        answered = false;
    }
    auto* c = new call(shared_from_this(), ++generation);
    current = c;
    hold = true;
    c->begin(control_messages(controls, true));
}

void grpc_client::impl::drain(bool force) {
    if (!host_loop) return;
    if (!force && !host_loop->ready()) {
        if (!retry_armed) {
            retry_armed = true;
            std::weak_ptr<impl> weak = shared_from_this();
            retry_timer = host_loop->after(std::chrono::milliseconds(2), [weak] {
                if (auto o = weak.lock()) {
                    o->retry_armed = false;
                    o->drain();
                }
            });
        }
        return;
    }
    bool resume = false;
    {
        std::lock_guard lock(mu);
        taking.swap(pending);
        resume = paused;
        paused = false;
    }
    // The next read goes out before the batch is handled: the worker keeps sending meanwhile.
    if (resume && current && hold) current->read_next();
    for (auto& msg : taking) {
        stats.events.fetch_add(1, std::memory_order_relaxed);
        to_raw(msg, raw, numbers);
        host_loop->on_event(raw, [&msg] { return "grpc: " + msg.ShortDebugString(); });
    }
    taking.clear();
}

void grpc_client::impl::read_ended(std::uint64_t gen) {
    if (gen != generation || !hold) return;
    drain();  // what came before the end goes first
    hold = false;
    current->release();  // OnDone may come now
}

void grpc_client::impl::call_finished(std::uint64_t gen, bool answered,
                                      const grpc::Status& status) {
    if (gen != generation) return;
    current = nullptr;
    hold = false;
    if (stopping || !host_loop) return;
    drain();
    if (answered) backoff = opts.backoff_min;
    const auto delay = backoff;
    backoff = std::min(backoff * 2, opts.backoff_max);
    if (status.ok())
        telecap::logger()->info("grpc {}: stream ended; dialling again in {} ms", opts.address,
                                delay.count());
    else
        telecap::logger()->info("grpc {}: stream failed ({}: {}); dialling again in {} ms",
                                opts.address, static_cast<int>(status.error_code()),
                                status.error_message(), delay.count());
    timer_armed = true;
    std::weak_ptr<impl> weak = shared_from_this();
    timer = host_loop->after(delay, [weak] {
        if (auto o = weak.lock()) o->start_call();
    });
}

void grpc_client::impl::send(std::vector<pb::TelemetryControl> msgs) {
    if (current && hold) current->queue(std::move(msgs));
}

grpc_client::grpc_client(grpc_client_options o, grpc_client_host& host, grpc_client_stats& stats)
    : impl_(std::make_shared<impl>(std::move(o), host, stats)) {}

grpc_client::~grpc_client() { stop(); }

void grpc_client::start() {
    if (impl_->started) return;
    impl_->started = true;
    impl_->start_call();
}

void grpc_client::set_controls(const control::effective_controls& c) {
    auto& im = *impl_;
    if (im.controls == c) return;
    im.controls = c;
    im.send(control_messages(c, false));
}

void grpc_client::finish(std::chrono::milliseconds patience) {
    auto& im = *impl_;
    if (!im.host_loop) return;
    im.stopping = true;  // no new call
    if (im.timer_armed) im.host_loop->cancel(im.timer);
    im.timer_armed = false;
    // A stream the worker answered ends by itself once the worker is gone (its socket closes):
    // what is still on the way is read meanwhile, here on the loop thread.
    const auto until = std::chrono::steady_clock::now() + patience;
    std::unique_lock lock(im.mu);
    while (im.current && im.answered && !im.call_done && std::chrono::steady_clock::now() < until) {
        if (!im.pending.empty() || im.paused) {
            lock.unlock();
            im.drain(true);
            lock.lock();
            continue;
        }
        if (im.read_over && im.hold) {
            lock.unlock();
            im.hold = false;
            im.current->release();  // OnDone may come now
            lock.lock();
            continue;
        }
        im.done_cv.wait_until(lock, until, [&] {
            return im.call_done || !im.pending.empty() || (im.read_over && im.hold);
        });
    }
    lock.unlock();
    stop();
}

void grpc_client::stop() {
    auto& im = *impl_;
    if (!im.host_loop) return;
    im.stopping = true;
    if (im.timer_armed) im.host_loop->cancel(im.timer);
    im.timer_armed = false;
    if (im.current) {
        // Without the loop's hold the call may be gone already: it ends on its own.
        if (im.hold) {
            im.current->cancel();
            im.hold = false;
            im.current->release();
        }
        im.current = nullptr;
        std::unique_lock lock(im.mu);
        // gRPC completes a cancelled call at once; the bound is for a gRPC that does not.
        if (!im.done_cv.wait_for(lock, std::chrono::seconds(2), [&] { return im.call_done; }))
            telecap::logger()->warn("grpc {}: the call did not end within 2 s of its cancel",
                                    im.opts.address);
    }
    if (im.retry_armed) im.host_loop->cancel(im.retry_timer);
    im.retry_armed = false;
    im.drain(true);  // the events received before the stop
    {
        std::lock_guard lock(im.mu);
        im.host = nullptr;
    }
    im.host_loop = nullptr;
    im.stats.connected.store(0, std::memory_order_relaxed);
}

}  // namespace telecap::bridge
