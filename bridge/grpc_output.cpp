#include "bridge/grpc_output.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "bridge/event_proto.hpp"
#include "bridge/event_wire.hpp"
#include "bridge/snakepit_bridge.grpc.pb.h"
#include "bridge/stream_state.hpp"
#include "capture/event_json.hpp"
#include "core/failure_note.hpp"
#include "core/log.hpp"

namespace telecap::bridge {

namespace {

// Raw bytes both ways: events go out as append_event_wire wrote them (no protobuf message is
// built or serialized per event), controls are parsed here.
using reactor_base = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;
using raw_service =
    pb::BridgeService::WithRawCallbackMethod_StreamTelemetry<pb::BridgeService::Service>;

// A slice over a message's bytes that keeps the message alive until gRPC lets go of it: no
// copy of the event's bytes.
grpc::Slice slice_of(const message& m) {
    auto* keep = new message(m);
    return grpc::Slice(
        const_cast<char*>((*keep)->data()), (*keep)->size(),
        [](void* p) { delete static_cast<message*>(p); }, keep);
}

// A call refused before it starts (too many streams, or telecap stopping).
class refusal final : public reactor_base {
public:
    explicit refusal(grpc::Status s) { Finish(std::move(s)); }
    void OnDone() override { delete this; }
};

std::string_view meta_string(const event& ev, std::string_view key) {
    const auto* v = ev.meta(key);
    if (v)
        if (const auto* s = std::get_if<std::string>(v)) return *s;
    return {};
}

std::optional<std::string> parse_count(std::string_view name, std::string_view text, std::size_t lo,
                                       std::size_t hi, std::size_t& out) {
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v < lo || v > hi)
        return std::string(name) + " must be a whole number from " + std::to_string(lo) + " to " +
               std::to_string(hi) + ", not \"" + std::string(text) + "\"";
    out = v;
    return std::nullopt;
}

}  // namespace

std::optional<std::string> parse_grpc_output(std::string_view arg, grpc_output_options& out) {
    out = {};
    const auto q = arg.find('?');
    const std::string_view addr = arg.substr(0, q);
    if (!addr.empty()) {
        if (addr.starts_with("unix:")) {
            if (addr.size() == 5) return "needs a socket path: grpc:unix:PATH";
        } else {
            const auto colon = addr.rfind(':');
            if (colon == std::string_view::npos || colon == 0)
                return "the address must be HOST:PORT or unix:PATH, not \"" + std::string(addr) +
                       "\"";
            std::size_t port = 0;
            if (auto p = parse_count("the port", addr.substr(colon + 1), 0, 65535, port)) return p;
        }
        out.address = std::string(addr);
    }
    if (q == std::string_view::npos) return std::nullopt;
    std::string_view rest = arg.substr(q + 1);
    bool seen[5] = {};
    while (true) {
        const auto amp = rest.find('&');
        const std::string_view item = rest.substr(0, amp);
        const auto eq = item.find('=');
        const std::string_view name = item.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        int which = name == "queue"         ? 0
                    : name == "max_streams" ? 1
                    : name == "host_events" ? 2
                    : name == "control"     ? 3
                    : name == "stall"       ? 4
                                            : -1;
        if (which < 0)
            return "unknown option \"" + std::string(name) +
                   "\": use queue, max_streams, host_events, control or stall (NAME=VALUE, "
                   "joined by &)";
        if (seen[which]) return std::string(name) + " is given twice";
        seen[which] = true;
        if (which == 0) {
            if (auto p = parse_count(name, value, 1, 1 << 20, out.queue)) return p;
        } else if (which == 1) {
            if (auto p = parse_count(name, value, 1, 1024, out.max_streams)) return p;
        } else if (which == 3) {
            if (value != "stream" && value != "workers")
                return "control must be stream (a stream's controls apply to its delivery) or "
                       "workers (to the workers it selects), not \"" +
                       std::string(value) + "\"";
            out.control_workers = value == "workers";
        } else if (which == 4) {
            std::size_t ms = 0;
            if (auto p = parse_count("stall (milliseconds)", value, 1, 600000, ms)) return p;
            out.stall = std::chrono::milliseconds(ms);
        } else if (value == "1" || value == "0") {
            out.host_events = value == "1";
        } else {
            return "host_events must be 0 or 1, not \"" + std::string(value) + "\"";
        }
        if (amp == std::string_view::npos) break;
        rest = rest.substr(amp + 1);
    }
    return std::nullopt;
}

struct grpc_output::impl final : raw_service {
    class stream_reactor;

    grpc_output_options opts;
    wire_names names;
    std::size_t known_names;
    std::string address;
    int port = 0;
    std::unique_ptr<grpc::Server> server;

    mutable std::mutex mu;  // guards what follows; taken before any stream's own lock
    std::condition_variable all_done;
    std::vector<std::pair<std::shared_ptr<stream_state>, stream_reactor*>> live;
    std::deque<stream_info> closed;  // the last closed_kept
    totals closed_sum;               // the closed streams' counters, summed
    std::uint64_t next_id = 1;
    std::uint64_t accepted = 0, refused = 0;
    bool stopping = false;
    std::atomic<std::size_t> live_count{0};
    std::atomic<std::uint64_t> host_skipped{0};
    std::string scratch;  // handle()'s: one event's bytes (the thread that runs the outputs)
    // Refused streams, refused controls (ctl status, top); shared with the answers of the
    // loop thread to control=workers, which may come after a reload removed this output.
    std::shared_ptr<failure_note> failures = std::make_shared<failure_note>();
    std::atomic<std::uint64_t> withdrawn{0};

    impl(grpc_output_options o, const catalog& cat)
        : opts(std::move(o)), names(cat), known_names(cat.event_count()) {}

    reactor_base* StreamTelemetry(grpc::CallbackServerContext* ctx) override;

    void closed_stream(const std::shared_ptr<stream_state>& s);
    // Asks each live stream (`ask(state)`, under the list's lock) and does what they answer
    // outside it: writes start and calls finish there, and a stream with a write in flight
    // cannot be done meanwhile.
    template <class Ask>
    void each_stream(Ask&& ask);
    // handle()'s and flush()'s (the thread that runs the outputs): the writes to start. Kept
    // to stay grown.
    std::vector<std::pair<stream_reactor*, stream_state::action>> start;
    static void add(totals& t, const stream_info& i);
};

// The glue between gRPC's callbacks and a stream_state: every decision is the state's, this
// only starts what it answers. Owned by gRPC until OnDone.
class grpc_output::impl::stream_reactor final : public reactor_base {
public:
    stream_reactor(impl& owner, std::shared_ptr<stream_state> s)
        : owner_(owner), state_(std::move(s)) {
        StartSendInitialMetadata();  // the client learns it is registered (tests wait on it)
        StartRead(&request_);
    }

    void run(const stream_state::action& a) {
        if (a.write) {
            grpc::WriteOptions wo;
            if (a.more) wo.set_buffer_hint();  // more follows at once: coalesce the frames
            grpc::Slice slice = slice_of(a.write);
            out_ = grpc::ByteBuffer(&slice, 1);  // one write in flight at a time
            StartWrite(&out_, wo);
        }
        switch (a.finish) {
            case stream_state::finish_status::ok:
                Finish(grpc::Status::OK);
                break;
            case stream_state::finish_status::cancelled:
                Finish(grpc::Status::CANCELLED);
                break;
            case stream_state::finish_status::none:
                break;
        }
    }

    void OnSendInitialMetadataDone(bool ok) override { run(state_->on_metadata_sent(ok)); }
    void OnWriteDone(bool ok) override { run(state_->on_write_done(ok)); }
    void OnCancel() override { run(state_->on_cancel()); }
    void OnReadDone(bool ok) override {
        if (!ok) return;  // the client closed its side (or left): no more controls
        pb::TelemetryControl control;
        std::optional<std::string> problem;
        if (!grpc::SerializationTraits<pb::TelemetryControl>::Deserialize(&request_, &control).ok())
            problem = state_->refuse("a control message that is not a TelemetryControl");
        else if (owner_.opts.control_workers)
            problem = to_workers(control);
        else
            problem = state_->apply(control);
        if (problem) {
            refused(state_->id(), *problem);
            owner_.failures->add("stream " + std::to_string(state_->id()) +
                                 ": control refused: " + *problem);
        }
        StartRead(&request_);
    }
    void OnDone() override {
        if (holds_) {
            // The stream's controls were the workers' only while it lasted.
            owner_.opts.workers->release(state_->id());
            owner_.withdrawn.fetch_add(1, std::memory_order_relaxed);
            telecap::logger()->info(
                "output grpc: stream {} ended: its controls on the workers are withdrawn",
                state_->id());
        }
        state_->on_done();
        owner_.closed_stream(state_);
        delete this;
    }

private:
    static void refused(std::uint64_t id, const std::string& problem) {
        telecap::logger()->warn("output grpc: stream {}: control refused: {}", id, problem);
    }
    // control=workers: checked here, applied on the loop thread, counted when it answers.
    std::optional<std::string> to_workers(const pb::TelemetryControl& c) {
        control::controls update;
        if (auto problem = to_update(c, update)) return state_->refuse(std::move(*problem));
        holds_ = true;  // reads are one at a time: no other thread touches it before OnDone
        owner_.opts.workers->apply(
            state_->id(), state_->select(), std::move(update),
            [state = state_, failures = owner_.failures](std::optional<std::string> problem) {
                if (!problem) return state->applied();
                const std::string said = *state->refuse(std::move(*problem));
                refused(state->id(), said);
                failures->add("stream " + std::to_string(state->id()) +
                              ": control refused: " + said);
            });
        return std::nullopt;
    }

    impl& owner_;
    std::shared_ptr<stream_state> state_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer out_;
    bool holds_ = false;  // control=workers: sent the workers a control
};

reactor_base* grpc_output::impl::StreamTelemetry(grpc::CallbackServerContext* ctx) {
    selection sel;
    for (const auto& [key, value] : ctx->client_metadata()) {
        const std::string_view k(key.data(), key.size());
        if (k == "telecap-worker") sel.worker.assign(value.data(), value.size());
        if (k == "telecap-pool") sel.pool.assign(value.data(), value.size());
    }
    std::lock_guard lock(mu);
    if (stopping)
        return new refusal(grpc::Status(grpc::StatusCode::UNAVAILABLE, "telecap is stopping"));
    if (live.size() >= opts.max_streams) {
        ++refused;
        failures->add("refused a stream: too many streams (max_streams=" +
                      std::to_string(opts.max_streams) + ")");
        return new refusal(grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            "telecap: too many streams (max_streams=" + std::to_string(opts.max_streams) + ")"));
    }
    ++accepted;
    auto state =
        std::make_shared<stream_state>(next_id++, ctx->peer(), std::move(sel), opts.queue,
                                       known_names, stream_state::default_start_at, opts.stall);
    // Registered before its metadata can reach the client: once the client has the headers,
    // every event handled from then on is offered to it.
    auto* r = new stream_reactor(*this, state);
    live.emplace_back(std::move(state), r);
    live_count.store(live.size());
    return r;
}

void grpc_output::impl::add(totals& t, const stream_info& i) {
    t.sent += i.sent;
    t.dropped_queue_full += i.dropped[static_cast<std::size_t>(stream_drop::queue_full)];
    t.dropped_closed += i.dropped[static_cast<std::size_t>(stream_drop::closed)];
    t.disabled += i.disabled;
    t.sampled += i.sampled;
    t.filtered += i.filtered;
    t.held += i.held;
    t.controls_applied += i.controls_applied;
    t.controls_rejected += i.controls_rejected;
}

template <class Ask>
void grpc_output::impl::each_stream(Ask&& ask) {
    start.clear();
    {
        std::lock_guard lock(mu);
        for (const auto& [state, reactor] : live) {
            auto a = ask(state);
            if (a.write || a.finish != stream_state::finish_status::none)
                start.emplace_back(reactor, std::move(a));
        }
    }
    for (const auto& [reactor, a] : start) reactor->run(a);
}

void grpc_output::impl::closed_stream(const std::shared_ptr<stream_state>& s) {
    const stream_info info = s->info();
    std::lock_guard lock(mu);
    std::erase_if(live, [&](const auto& e) { return e.first == s; });
    live_count.store(live.size());
    add(closed_sum, info);
    closed.push_back(info);
    if (closed.size() > closed_kept) closed.pop_front();
    all_done.notify_all();
}

grpc_output::grpc_output(grpc_output_options opts, const catalog& cat)
    : impl_(std::make_unique<impl>(std::move(opts), cat)) {
    auto& im = *impl_;
    if (im.opts.control_workers && !im.opts.workers)
        throw std::runtime_error(
            "output grpc: control=workers needs workers to control (telecap run)");
    grpc::ServerBuilder builder;
    builder.AddListeningPort(im.opts.address, grpc::InsecureServerCredentials(), &im.port);
    builder.RegisterService(impl_.get());
    // Controls are a few bytes: a large request is refused rather than buffered.
    builder.SetMaxReceiveMessageSize(64 << 10);
    im.server = builder.BuildAndStart();
    if (!im.server || im.port == 0)
        throw std::runtime_error("output grpc: cannot listen on " + im.opts.address +
                                 " (in use, or not an address of this machine)");
    im.address = im.opts.address;
    if (!im.address.starts_with("unix:"))
        im.address = im.address.substr(0, im.address.rfind(':') + 1) + std::to_string(im.port);
    telecap::logger()->info("output grpc: serving StreamTelemetry on {}", im.address);
}

grpc_output::~grpc_output() { finish(std::chrono::steady_clock::now()); }

const std::string& grpc_output::address() const noexcept { return impl_->address; }
std::uint64_t grpc_output::errors() const { return impl_->failures->count(); }
std::string grpc_output::last_error() const { return impl_->failures->last(); }
int grpc_output::port() const noexcept { return impl_->port; }

void grpc_output::handle(const event& ev) {
    auto& im = *impl_;
    if (im.live_count.load(std::memory_order_relaxed) == 0) return;
    wire_names::entry wire;
    if (!im.names.find(ev, wire)) {
        if (!im.opts.host_events) {
            im.host_skipped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        wire.wire = ev.dotted_name();
        wire.index = std::string_view::npos;
    }
    const std::string_view worker = meta_string(ev, "worker_id");
    const std::string_view pool = meta_string(ev, "pool_name");
    const auto now = stream_state::clock::now();
    message msg;
    const auto make = [&] {
        // Written into a buffer that stays grown, then copied once at its size: one string
        // allocation per event, not one per doubling as the bytes are appended.
        im.scratch.clear();
        append_event_wire(im.scratch, ev, wire.wire);
        return message(std::make_shared<const std::string>(im.scratch));
    };
    im.each_stream([&](const std::shared_ptr<stream_state>& s) {
        return s->selects(worker, pool)
                   ? s->offer(wire.index, wire.wire, now, msg, make, im.opts.block)
                   : stream_state::action{};
    });
}

void grpc_output::flush() {
    auto& im = *impl_;
    if (im.live_count.load(std::memory_order_relaxed) == 0) return;
    im.each_stream([](const std::shared_ptr<stream_state>& s) { return s->kick(); });
}

bool grpc_output::congested() const { return impl_->opts.block && any_behind(); }

bool grpc_output::about_to_drop() const { return !impl_->opts.block && any_behind(); }

bool grpc_output::any_behind() const {
    auto& im = *impl_;
    if (im.live_count.load(std::memory_order_relaxed) == 0) return false;
    const auto now = stream_state::clock::now();
    std::lock_guard lock(im.mu);
    return std::any_of(im.live.begin(), im.live.end(),
                       [&](const auto& e) { return e.first->behind(now); });
}

void grpc_output::finish(std::chrono::steady_clock::time_point deadline) {
    auto& im = *impl_;
    if (!im.server) return;
    std::vector<std::pair<impl::stream_reactor*, stream_state::action>> start;
    {
        std::lock_guard lock(im.mu);
        im.stopping = true;
        for (const auto& [state, reactor] : im.live) start.emplace_back(reactor, state->finish());
    }
    for (const auto& [reactor, a] : start) reactor->run(a);
    // The clients that read get what is queued for them; a client that does not is cut off.
    const auto until = std::min(deadline, std::chrono::steady_clock::now() + im.opts.drain_timeout);
    {
        std::unique_lock lock(im.mu);
        im.all_done.wait_until(lock, until, [&] { return im.live.empty(); });
    }
    im.server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    {
        // Shutdown cancelled the rest; their OnDone comes from gRPC's threads.
        std::unique_lock lock(im.mu);
        im.all_done.wait_for(lock, std::chrono::seconds(2), [&] { return im.live.empty(); });
    }
    im.server.reset();
}

grpc_output::totals grpc_output::sum() const {
    auto& im = *impl_;
    std::vector<std::shared_ptr<stream_state>> states;
    totals t;
    {
        std::lock_guard lock(im.mu);
        t = im.closed_sum;
        t.streams_accepted = im.accepted;
        t.streams_refused = im.refused;
        t.streams_active = im.live.size();
        for (const auto& e : im.live) states.push_back(e.first);
    }
    for (const auto& s : states) impl::add(t, s->info());
    t.host_events_skipped = im.host_skipped.load();
    t.controls_withdrawn = im.withdrawn.load();
    return t;
}

std::vector<stream_info> grpc_output::streams() const {
    auto& im = *impl_;
    std::vector<std::shared_ptr<stream_state>> states;
    std::vector<stream_info> out;
    {
        std::lock_guard lock(im.mu);
        for (const auto& e : im.live) states.push_back(e.first);
        out.assign(im.closed.begin(), im.closed.end());
    }
    std::vector<stream_info> open;
    for (const auto& s : states) open.push_back(s->info());
    out.insert(out.end(), open.begin(), open.end());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

std::string grpc_output::counters_json() const {
    const totals t = sum();
    const auto n = [](std::uint64_t v) { return std::to_string(v); };
    std::string out = "{\"address\":";
    append_json_string(out, impl_->address);
    out += std::string(",\"control\":\"") + (impl_->opts.control_workers ? "workers" : "stream") +
           "\",\"streams_accepted\":" + n(t.streams_accepted) +
           ",\"streams_active\":" + n(t.streams_active) +
           ",\"streams_refused\":" + n(t.streams_refused) + ",\"events_sent\":" + n(t.sent) +
           ",\"events_dropped\":{\"queue_full\":" + n(t.dropped_queue_full) +
           ",\"closed\":" + n(t.dropped_closed) +
           "},\"events_removed\":{\"disabled\":" + n(t.disabled) + ",\"sampled\":" + n(t.sampled) +
           ",\"filtered\":" + n(t.filtered) + "},\"events_held\":" + n(t.held) +
           ",\"host_events_skipped\":" + n(t.host_events_skipped) +
           ",\"controls\":{\"applied\":" + n(t.controls_applied) +
           ",\"rejected\":" + n(t.controls_rejected) + ",\"withdrawn\":" + n(t.controls_withdrawn) +
           "},\"streams\":[";
    bool first = true;
    for (const auto& s : streams()) {
        if (!first) out += ',';
        first = false;
        out += "{\"id\":" + n(s.id) + ",\"peer\":";
        append_json_string(out, s.peer);
        out += ",\"worker\":";
        append_json_string(out, s.select.worker);
        out += ",\"pool\":";
        append_json_string(out, s.select.pool);
        out += std::string(",\"open\":") + (s.open ? "true" : "false") +
               ",\"queued\":" + n(s.queued) + ",\"sent\":" + n(s.sent) +
               ",\"dropped\":{\"queue_full\":" +
               n(s.dropped[static_cast<std::size_t>(stream_drop::queue_full)]) +
               ",\"closed\":" + n(s.dropped[static_cast<std::size_t>(stream_drop::closed)]) +
               "},\"removed\":{\"disabled\":" + n(s.disabled) + ",\"sampled\":" + n(s.sampled) +
               ",\"filtered\":" + n(s.filtered) + "},\"held\":" + n(s.held) +
               ",\"controls\":{\"applied\":" + n(s.controls_applied) +
               ",\"rejected\":" + n(s.controls_rejected) + "}}";
    }
    return out + "]}";
}

}  // namespace telecap::bridge
