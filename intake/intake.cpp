#include "intake/intake.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace telecap {

namespace {
constexpr std::size_t read_size = 64 * 1024;
// Reads per wake-up of one stream: one flooding worker cannot starve the others.
constexpr int reads_per_wakeup = 8;
}  // namespace

// A worker's pipeline normalizes its events straight into the intake's current batch; each
// then goes through the worker's gate, and joins the batch or leaves its slot to the next.
class intake::sink final : public event_sink, public event_slot_source {
public:
    sink(intake& in, event_gate* gate) : in_(in), gate_(gate) {}
    event_slot_source* slots() override { return this; }
    event& slot(std::size_t type) override { return in_.batch_->slot(type); }
    void on_event(event& ev) override {
        if (gate_ && !gate_->admit(ev)) return;  // its slot goes to the next event
        in_.batch_->commit();
        in_.added();
    }

private:
    intake& in_;
    event_gate* gate_;
};

// While a tap asks for pass-through lines, a stream's pipeline writes to this instead of its
// pass-through source: each piece goes on to the source unchanged, and each line (its pieces
// joined, up to tap_line_max) also joins the batch.
class intake::tee final : public passthrough_sink {
public:
    tee(intake& in, stream& s) : in_(in), s_(s) {}
    void write(std::string_view bytes, bool starts, bool ends) override;

private:
    intake& in_;
    stream& s_;
    std::string line_;
    bool truncated_ = false;
};

struct intake::stream {
    stream_spec spec;
    unique_fd fd;
    std::size_t pipe_size = 0;  // what its pipe holds (0: not a pipe)
    bool open = true;
    std::unique_ptr<sink> out;
    std::unique_ptr<passthrough_mux::source> pass;
    std::unique_ptr<tee> tapped;   // while taps ask for pass-through lines
    std::uint64_t tap_unsaid = 0;  // its lines not carried since its last line carried
    std::unique_ptr<rejects_writer::source> rejects;
    std::unique_ptr<capture_pipeline> pipeline;
};

intake::intake(event_loop& loop, dispatcher& events, intake_options o,
               std::vector<stream_writer*> congestion)
    : loop_(loop),
      events_(events),
      o_(std::move(o)),
      congestion_(std::move(congestion)),
      budget_(o_.line_budget),
      batch_(events.take_batch()),
      linger_(o_.read_linger),
      buf_(new char[read_size]) {
    std::erase(congestion_, nullptr);
    // A batch never larger than the queue, so that one fits once the queue has room for it.
    if (o_.batch_events == 0) o_.batch_events = events.mode() == dispatch_mode::caller ? 64 : 1024;
    o_.batch_events = std::clamp<std::size_t>(o_.batch_events, 1, events.capacity());
    for (auto* w : congestion_)
        w->on_room([this] { loop_.post([this] { update_backpressure(); }); });
}

intake::~intake() {
    for (auto* w : congestion_) w->on_room({});
    if (want_room_) events_.when_room({});
    if (want_taken_) events_.when_taken({});
    if (recheck_armed_) loop_.cancel(recheck_);
}

intake::stream& intake::make(stream_spec spec) {
    auto s = std::make_unique<stream>();
    s->spec = std::move(spec);
    if (s->spec.pass) s->pass = s->spec.pass->make_source(s->spec.label);
    if (s->spec.rejects)
        s->rejects = std::make_unique<rejects_writer::source>(*s->spec.rejects, s->spec.rejects_id);
    s->out = std::make_unique<sink>(*this, s->spec.gate);
    pipeline_options po = o_.pipeline;
    po.recognize = s->spec.recognize;
    po.budget = &budget_;
    if (tap_lines_) s->tapped = std::make_unique<tee>(*this, *s);
    s->pipeline = std::make_unique<capture_pipeline>(
        *s->spec.cat, s->spec.ctx, po, s->out.get(),
        s->tapped ? static_cast<passthrough_sink*>(s->tapped.get()) : s->pass.get(),
        s->rejects.get(), *s->spec.stats);
    streams_.push_back(std::move(s));
    return *streams_.back();
}

void intake::tee::write(std::string_view bytes, bool starts, bool ends) {
    if (s_.pass) s_.pass->write(bytes, starts, ends);
    if (starts) {
        line_.clear();
        truncated_ = false;
    }
    const std::size_t room = tap_line_max - std::min(tap_line_max, line_.size());
    if (bytes.size() > room) truncated_ = true;
    line_.append(bytes.substr(0, room));
    if (!ends) return;
    // Without its newline (and a CR before it).
    if (!truncated_ && !line_.empty() && line_.back() == '\n') line_.pop_back();
    if (!truncated_ && !line_.empty() && line_.back() == '\r') line_.pop_back();
    passthrough_line l;
    l.worker = s_.spec.ctx.worker_id.value_or("");
    l.pool = s_.spec.ctx.pool_name;
    l.stream = s_.spec.stream_name;
    l.text.swap(line_);
    l.truncated = truncated_;
    in_.tap_line(s_, std::move(l));
}

void intake::tap_line(stream& s, passthrough_line&& line) {
    // A line costs its text and its record (names, vector slot): empty lines are bounded too.
    if (batch_->line_bytes() + line.text.size() + tap_line_overhead > tap_line_bytes) {
        ++tap_lines_dropped_;
        ++s.tap_unsaid;
        return;
    }
    // The gap told with this line is its own stream's, for the taps that see this stream.
    line.dropped_before = s.tap_unsaid;
    s.tap_unsaid = 0;
    batch_->push_line(std::move(line), tap_line_overhead);
}

void intake::lines_not_carried(const event_batch& b) {
    if (b.lines().empty()) return;
    tap_lines_dropped_ += b.lines().size();
    // Rare (a batch the queue refused): each line's gap goes to its stream, found by name.
    for (const auto& [at, l] : b.lines())
        for (auto& s : streams_)
            if (s->spec.stream_name == l.stream && s->spec.ctx.worker_id.value_or("") == l.worker &&
                s->spec.ctx.pool_name == l.pool) {
                ++s->tap_unsaid;
                break;
            }
}

void intake::tap_passthrough(bool on) {
    if (on == tap_lines_) return;
    // The batch being filled holds events whose lines went to pass-through alone: it goes now,
    // so that no batch mixes them with carried lines (a tap attached next sees none of it).
    if (on) flush();
    tap_lines_ = on;
    for (auto& s : streams_) {
        s->tap_unsaid = 0;  // a gap before these taps opened is none of theirs
        if (on) s->tapped = std::make_unique<tee>(*this, *s);
        s->pipeline->set_passthrough(on ? static_cast<passthrough_sink*>(s->tapped.get())
                                        : s->pass.get());
        if (!on) s->tapped.reset();
    }
}

void intake::add(unique_fd fd, stream_spec spec) {
    stream& s = make(std::move(spec));
    s.fd = std::move(fd);
    ::fcntl(s.fd.get(), F_SETFL, ::fcntl(s.fd.get(), F_GETFL) | O_NONBLOCK);
    const int size = ::fcntl(s.fd.get(), F_GETPIPE_SZ);
    s.pipe_size = size > 0 ? static_cast<std::size_t>(size) : 0;
    stream* raw = &s;
    loop_.watch(s.fd.get(), [this, raw] { read(*raw); });
    if (paused_) loop_.set_reading(s.fd.get(), false);
}

void* intake::add_unwatched(stream_spec spec) { return &make(std::move(spec)); }

void intake::feed(void* handle, std::string_view bytes) {
    auto* s = static_cast<stream*>(handle);
    if (s->open) s->pipeline->feed(bytes);
}

void intake::feed_event(void* handle, const raw_event& raw,
                        const std::function<std::string()>& text) {
    auto* s = static_cast<stream*>(handle);
    if (s->open) s->pipeline->accept(raw, text);
}

std::size_t intake::pull(stream& s) {
    for (;;) {
        const ssize_t n = ::read(s.fd.get(), buf_.get(), read_size);
        if (n > 0) {
            s.pipeline->feed({buf_.get(), static_cast<std::size_t>(n)});
            return static_cast<std::size_t>(n);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        end(s);  // EOF, or an error that ends the stream all the same
        return 0;
    }
}

void intake::read(stream& s) {
    for (int i = 0; i < reads_per_wakeup; ++i) {
        // A handler behind (block mode) or about to drop (a burst hold) stops the turn's reads
        // before each one, so what it gets past its mark is one read, not a turn of them for
        // every worker (the turn's end then pauses reading).
        if (handlers_behind() || holding_burst()) return;
        const std::size_t n = pull(s);
        turn_bytes_ += n;
        // A read that did not fill the buffer emptied the pipe: the one after it would only
        // say EAGAIN (the linger's next turn reads again anyway).
        if (n < read_size) return;
    }
}

void intake::end(stream& s) {
    if (!s.open) return;
    s.open = false;
    if (s.fd) {
        loop_.unwatch(s.fd.get());
        s.fd.reset();
    }
    s.pipeline->finish();  // a last line without a newline still counts
    removed_ = true;
}

void intake::drain_stream(stream& s, bool yield) {
    // To the end, or until a descendant that still holds the pipe has nothing more for now
    // (then it is read as usual), or, yielding, until a handler is behind or a burst is held.
    while (s.fd && !(yield && (handlers_behind() || holding_burst())) && pull(s) > 0) {
    }
}

void intake::drain(const void* owner, bool yield) {
    for (auto& s : streams_)
        if (s->spec.owner == owner) drain_stream(*s, yield);
}

bool intake::handlers_behind() const {
    return o_.overflow == overflow_policy::block && !escape_ && events_.congested();
}

bool intake::holding_burst() {
    if (o_.overflow != overflow_policy::drop_newest || escape_ || o_.burst_hold.count() <= 0)
        return false;
    if (!events_.about_to_drop()) {
        hold_ = hold::none;
        return false;
    }
    switch (hold_) {
        case hold::spent:
            return false;  // until the handler catches up: one hold per congestion
        case hold::none:
            // A pipe already half full (or none to hold in): read on for this congestion, and
            // do not look at every pipe again before each read.
            if (!pipes_have_room()) {
                hold_ = hold::spent;
                return false;
            }
            hold_ = hold::holding;
            hold_since_ = std::chrono::steady_clock::now();
            ++burst_holds_;
            return true;
        case hold::holding:
            if (std::chrono::steady_clock::now() - hold_since_ < o_.burst_hold && pipes_have_room())
                return true;
            hold_ = hold::spent;
            ++burst_hold_overruns_;
            return false;
    }
    return false;
}

bool intake::pipes_have_room() const {
    // Half of each pipe stays free, so that a worker's write does not wait for a hold: a pipe
    // that cannot be measured cannot be held, and then neither are the others.
    bool any = false;
    for (const auto& s : streams_) {
        if (!s->fd) continue;
        int queued = 0;
        if (s->pipe_size == 0 || ::ioctl(s->fd.get(), FIONREAD, &queued) != 0 ||
            static_cast<std::size_t>(queued) >= s->pipe_size / 2)
            return false;
        any = true;
    }
    return any;
}

void intake::close(const void* owner) {
    for (auto& s : streams_)
        if (s->spec.owner == owner) end(*s);
}

bool intake::reading(const void* owner) const {
    return std::any_of(streams_.begin(), streams_.end(),
                       [owner](const auto& s) { return s->open && s->spec.owner == owner; });
}

void intake::close_all() {
    for (auto& s : streams_) {
        drain_stream(*s);
        end(*s);
    }
}

void intake::push(const event& ev) {
    batch_->push(ev);
    added();
}

void intake::added() {
    if (batch_->size() >= o_.batch_events) flush();
}

bool intake::submit_held() {
    // Oldest first: events keep their order across a pause.
    std::size_t sent = 0;
    while (sent < held_.size()) {
        auto& b = held_[sent];
        if (!events_.submit(b)) break;
        ++sent;
    }
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(sent));
    return held_.empty();
}

void intake::flush() {
    if (batch_->empty() && held_.empty()) return;
    if (o_.overflow == overflow_policy::block && !escape_) {
        if (submit_held() && (batch_->empty() || events_.submit(batch_))) return;
        // Keep the batch and stop reading (at the turn's end) until the dispatcher has room.
        if (!batch_->empty()) {
            held_.push_back(std::move(batch_));
            batch_ = events_.take_batch();
        }
        if (!want_room_) {
            want_room_ = true;
            // Room for the oldest held batch: a smaller room would only wake us to fail again.
            events_.when_room(
                [this] {
                    loop_.post([this] {
                        want_room_ = false;
                        flush();
                        update_backpressure();
                    });
                },
                held_.front()->size());
        }
        return;
    }
    const auto dropped = [&](std::unique_ptr<event_batch>& b) {
        own_.dropped_for(escape_ ? drop_reason::shutdown : drop_reason::queue_full) += b->size();
        // Its tapped lines go with it: told to the taps with the next line carried.
        lines_not_carried(*b);
        b->clear();
    };
    for (auto& b : held_)  // left from block mode (escape)
        if (!events_.submit(b)) dropped(b);
    held_.clear();
    if (!batch_->empty() && !events_.submit(batch_)) dropped(batch_);
}

bool intake::output_congested() const {
    return std::any_of(congestion_.begin(), congestion_.end(),
                       [](const stream_writer* w) { return w->congested(); });
}

bool intake::long_line_stalled() const {
    return std::any_of(congestion_.begin(), congestion_.end(), [](const stream_writer* w) {
        return w->congested() && !w->dead() && w->streaming();
    });
}

void intake::update_backpressure() {
    // A line longer than --max-line streams to its output in parts that cannot be dropped
    // without cutting it: while its output is behind, reading waits, whatever --overflow says,
    // so memory stays bounded by the stream's limits and not by the line.
    const bool may_wait = o_.overflow == overflow_policy::block && !escape_;
    // A handler behind pauses block mode until it has room, and drop-newest for a burst hold
    // at most (the pipes hold what it has no room for yet).
    const bool behind = handlers_behind() || holding_burst();
    const bool pause =
        (may_wait && (!held_.empty() || output_congested())) || behind || long_line_stalled();
    if (pause && behind && !recheck_armed_) {
        // A handler's stream says when it has room to its own writer, not to us: look again
        // soon (only while reading is paused for it; a hold also looks at the pipes then).
        recheck_armed_ = true;
        recheck_ = loop_.after(handler::congestion_recheck, [this] {
            recheck_armed_ = false;
            update_backpressure();
        });
    }
    if (pause == paused_) return;
    paused_ = pause;
    if (pause) ++pauses_;
    for (auto& s : streams_)
        if (s->fd) loop_.set_reading(s->fd.get(), !pause);
}

void intake::end_turn() {
    if (turn_bytes_ > 0) {  // a turn that read nothing says nothing about the pace
        if (const auto d = linger_.after_turn(turn_bytes_, read_linger::clock::now());
            d.count() > 0)
            loop_.linger(d);
        turn_bytes_ = 0;
    }
    if (removed_) {
        removed_ = false;
        std::erase_if(streams_, [](const auto& s) { return !s->open; });
    }
    if (held_.empty() && !escape_ && events_.backlogged()) {
        // The dispatcher has not taken what it was given yet: this batch keeps filling (fewer,
        // fuller batches while it is behind), and goes when the backlog is taken.
        if (!want_taken_) {
            want_taken_ = true;
            events_.when_taken([this] {
                loop_.post([this] {
                    want_taken_ = false;
                    flush();
                    update_backpressure();
                });
            });
        }
    } else {
        flush();
    }
    events_.flush();  // handlers on this thread: the turn's output leaves now
    update_backpressure();
}

void intake::escape() {
    if (escape_) return;
    escape_ = true;
    flush();
    update_backpressure();
}

void intake::finish(std::chrono::milliseconds patience) {
    const bool wait = o_.overflow == overflow_policy::block && !escape_;
    const drop_reason why =
        o_.overflow == overflow_policy::block ? drop_reason::shutdown : drop_reason::queue_full;
    const auto deadline = std::chrono::steady_clock::now() + patience;
    const auto send = [&](std::unique_ptr<event_batch>& b) {
        if (b->empty()) return;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const bool ok = wait ? events_.submit_wait(b, std::max(left, std::chrono::milliseconds(0)))
                             : events_.submit(b);
        if (!ok) {
            own_.dropped_for(why) += b->size();
            lines_not_carried(*b);
            b->clear();
        }
    };
    for (auto& b : held_) send(b);
    held_.clear();
    send(batch_);
}

}  // namespace telecap
