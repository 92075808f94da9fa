// The supervisor loop of `telecap run`. One thread (this one, which also spawns, so that
// PR_SET_PDEATHSIG ties the workers to it) owns every pipe, the signalfd and a timerfd in one
// epoll set; normalized events cross a bounded queue to a dispatch thread, so reading never
// waits for handlers.

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <signal.h>
#include <sys/signalfd.h>
#include <thread>

#include "agent/run.hpp"
#include "core/bounded_queue.hpp"
#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"
#include "spawn/spawner.hpp"

namespace telecap::agent {

namespace {

using clock = std::chrono::steady_clock;

// epoll tags of the two fds that are not streams (streams carry their pointer).
constexpr std::uint64_t signal_tag = 1;
constexpr std::uint64_t timer_tag = 2;

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Pass-through shared by all workers. Whole lines are written as they come, so lines of
// different workers never mix; while one worker streams a line longer than max_line, the
// other workers' lines wait in a holding buffer until it ends.
class passthrough_mux {
public:
    static constexpr std::size_t hold_limit = 4 << 20;

    explicit passthrough_mux(std::unique_ptr<passthrough_writer> out) : out_(std::move(out)) {}

    class source final : public passthrough_sink {
    public:
        source(passthrough_mux& mux, std::string label) : mux_(mux), label_(std::move(label)) {}
        ~source() override { mux_.release(this); }
        void write(std::string_view bytes, bool starts, bool ends) override {
            mux_.write(this, bytes, starts, ends);
        }
        const std::string& label() const noexcept { return label_; }

    private:
        passthrough_mux& mux_;
        std::string label_;
    };

    void write(const source* s, std::string_view bytes, bool starts, bool ends) {
        if (!out_) return;
        if (owner_ && owner_ != s) {
            if (starts) hold_ += s->label();
            hold_ += bytes;
            // A worker that streams an endless line must not cost unbounded memory: past the
            // limit the held lines go out anyway.
            if (hold_.size() > hold_limit) release_hold();
            return;
        }
        if (starts) out_->write(s->label(), true, false);
        out_->write(bytes, false, false);
        if (starts && !ends) owner_ = s;
        if (ends && owner_ == s) {
            owner_ = nullptr;
            release_hold();
        }
    }
    void release(const source* s) {
        if (owner_ == s) {
            owner_ = nullptr;
            release_hold();
        }
    }
    void flush() {
        if (out_) out_->flush();
    }

private:
    void release_hold() {
        if (!hold_.empty()) out_->write(hold_, false, false);
        hold_.clear();
    }

    std::unique_ptr<passthrough_writer> out_;
    const source* owner_ = nullptr;
    std::string hold_;
};

// How long telecap waits for a handler that makes no progress once there is nothing else to
// wait for (the workers are gone): then it leaves without it.
std::chrono::milliseconds stuck_handler_limit(const run_options& o) {
    return std::max<std::chrono::milliseconds>(o.grace, std::chrono::seconds(5));
}

// Passes only the events of one pool to the handler it wraps (a pool's own outputs).
class pool_filter final : public handler {
public:
    pool_filter(std::string pool, std::shared_ptr<handler> inner)
        : pool_(std::move(pool)), inner_(std::move(inner)) {}
    void handle(const event& ev) override {
        const auto* p = ev.meta("pool_name");
        if (p && std::holds_alternative<std::string>(*p) && std::get<std::string>(*p) == pool_)
            inner_->handle(ev);
    }
    void flush() override { inner_->flush(); }
    std::string counters_json() const override { return inner_->counters_json(); }

private:
    std::string pool_;
    std::shared_ptr<handler> inner_;
};

struct worker;

// One pipe from a worker, with its own capture pipeline.
struct stream {
    worker* owner = nullptr;
    unique_fd fd;
    std::unique_ptr<passthrough_mux::source> pass;
    std::unique_ptr<capture_pipeline> pipeline;
};

enum class worker_state { backoff, running, done };

struct worker {
    const pool_spec* pool = nullptr;
    const catalog* cat = nullptr;
    std::string id;
    spawn::restart_tracker tracker;
    worker_state state = worker_state::backoff;
    pid_t pid = 0;
    clock::time_point started_at{};
    clock::time_point restart_at{};
    int runs = 0;
    std::optional<int> exit_code;  // of the last run
    std::vector<std::unique_ptr<stream>> streams;
    std::vector<pid_t> groups;  // process groups this worker has led, for the final sweep

    explicit worker(const spawn::restart_options& r) : tracker(r) {}
};

class supervisor final : private event_sink {
public:
    supervisor(const run_options& o, capture_stats& stats, bounded_queue<event>& queue)
        : o_(o),
          stats_(stats),
          queue_(queue),
          rng_(std::random_device{}()),
          node_(o.capture.node.empty() ? hostname() : o.capture.node) {}

    int run();

private:
    // --- events ---
    void on_event(event& ev) override { push(ev); }  // the pipelines' events
    void push(event& ev);
    void flush_pending();
    void lifecycle(std::string_view short_name, worker& w,
                   std::vector<std::pair<std::string, measurement_value>> measurements,
                   std::vector<std::pair<std::string, metadata_value>> extra);

    // --- workers ---
    void start(worker& w);
    void exited(worker& w, int code, bool by_signal, int status);
    void read_stream(stream& s);
    void close_stream(stream& s);
    void drain(worker& w);

    // --- loop ---
    void on_signals();
    void on_timer();
    void arm_timer();
    void begin_stop();
    bool finished() const;
    void take_pending_stop();  // begins a stop if SIGTERM/SIGINT is pending

    const run_options& o_;
    capture_stats& stats_;
    bounded_queue<event>& queue_;
    std::mt19937_64 rng_;
    const std::string node_;
    catalog catalog_;
    std::vector<std::unique_ptr<catalog>> pool_catalogs_;
    std::unique_ptr<passthrough_mux> pass_;
    std::unique_ptr<passthrough_mux> stdout_pass_;
    std::unique_ptr<rejects_writer> rejects_;
    std::vector<std::unique_ptr<worker>> workers_;
    unique_fd epoll_, signal_fd_, timer_fd_;
    bool stopping_ = false;
    bool killed_ = false;
    clock::time_point kill_at_{};
    bool escape_block_ = false;  // a stop is pending: block-mode pushes give up waiting
    std::vector<event> pending_;  // this iteration's events, pushed as one batch
    std::optional<clock::time_point> armed_;
    char buf_[64 * 1024];
};

void supervisor::push(event& ev) {
    pending_.push_back(std::move(ev));
    if (pending_.size() >= 256) flush_pending();
}

void supervisor::flush_pending() {
    std::size_t next = 0;
    if (o_.overflow == overflow_policy::drop_newest || escape_block_) {
        next = queue_.push(pending_, 0, std::chrono::milliseconds(0));
    } else {
        // Block mode: back-pressure, but never deafness to a stop and never a hang.
        //  - A pending SIGTERM/SIGINT is taken here and the stop begins (the workers get
        //    --stop-signal); the wait goes on, so a handler that is only slow loses nothing.
        //  - A stop under way ends the wait when its grace period does.
        //  - With no worker left (the final flush), the wait ends after max(grace, 5 s), the
        //    same limit a stuck handler gets at shutdown.
        // A worker's SIGCHLD or a signal to forward waits for the loop like everything else.
        const auto started = clock::now();
        const auto idle_limit = stuck_handler_limit(o_);
        while ((next = queue_.push(pending_, next, std::chrono::milliseconds(100))) <
               pending_.size()) {
            take_pending_stop();
            const auto now = clock::now();
            if ((stopping_ && now >= kill_at_) || (finished() && now - started >= idle_limit)) {
                escape_block_ = true;
                break;
            }
        }
    }
    stats_.dropped_for(drop_reason::queue_full) += pending_.size() - next;
    pending_.clear();
}

void supervisor::lifecycle(std::string_view short_name, worker& w,
                           std::vector<std::pair<std::string, measurement_value>> measurements,
                           std::vector<std::pair<std::string, metadata_value>> extra) {
    static const std::map<std::string_view, std::vector<std::string>> fallback{
        {"worker_spawned", {"snakepit", "pool", "worker", "spawned"}},
        {"worker_terminated", {"snakepit", "pool", "worker", "terminated"}},
        {"worker_restarted", {"snakepit", "pool", "worker", "restarted"}},
        {"worker_spawn_failed", {"snakepit", "pool", "worker", "spawn_failed"}}};
    event ev;
    const auto* name = w.cat->pool_event(short_name);
    ev.name = name ? *name : fallback.at(short_name);
    ev.measurements = std::move(measurements);
    ev.timestamp_ns = wall_ns();
    ev.metadata.emplace_back("node", node_);
    ev.metadata.emplace_back("worker_id", w.id);
    ev.metadata.emplace_back("pool_name", w.pool->name);
    if (w.pid > 0) ev.metadata.emplace_back("python_pid", std::int64_t{w.pid});
    for (auto& kv : extra) ev.metadata.push_back(std::move(kv));
    ev.metadata.emplace_back("correlation_id", nullptr);
    ev.metadata.emplace_back("timestamp_ns", ev.timestamp_ns);
    push(ev);
}

void supervisor::start(worker& w) {
    spawn::child_spec spec;
    spec.argv = w.pool->command;
    for (const auto& [k, v] : w.pool->env) spec.env_add.push_back(k + "=" + v);
    spec.env_add.push_back("TELECAP_WORKER_ID=" + w.id);
    spec.env_add.push_back("TELECAP_POOL=" + w.pool->name);
    spec.cwd = w.pool->cwd;
    spec.capture_stdout = w.pool->capture_stdout;
    spec.telemetry_fd = w.pool->telemetry_fd;
    const bool restart = w.runs > 0;
    ++w.runs;
    spawn::spawn_step step = spawn::spawn_step::none;
    auto child = spawn::spawn(spec, &step);
    w.started_at = clock::now();
    if (!child) {
        const int code = spawn::exit_code_for_spawn_error(child.error());
        spdlog::error("cannot run \"{}\" for worker {}: {} ({})", spec.argv.empty() ? "" : spec.argv[0],
                      w.id, child.error().message(), spawn::to_string(step));
        w.pid = 0;
        lifecycle("worker_spawn_failed", w, {{"count", std::int64_t{1}}},
                  {{"reason", child.error().message()},
                   {"failure_reason", std::string(spawn::to_string(step))},
                   {"exit_code", std::to_string(code)}});
        exited(w, code, false, 0);
        return;
    }
    w.pid = child->pid();
    w.groups.push_back(child->pgid());
    w.state = worker_state::running;
    if (restart) {
        lifecycle("worker_restarted", w,
                  {{"restart_count", std::int64_t{w.runs - 1}}, {"system_time", wall_ns()}},
                  {{"new_pid", std::to_string(w.pid)}});
    }
    lifecycle("worker_spawned", w, {{"system_time", wall_ns()}}, {});

    worker_context ctx;
    ctx.node = node_;
    ctx.worker_id = w.id;
    ctx.pool_name = w.pool->name;
    ctx.pid = w.pid;
    const std::string label = o_.label ? "[" + w.id + "] " : "";
    const auto add = [&](unique_fd fd, passthrough_mux* mux, bool recognize) {
        if (!fd) return;
        auto s = std::make_unique<stream>();
        s->owner = &w;
        s->fd = std::move(fd);
        ::fcntl(s->fd.get(), F_SETFL, ::fcntl(s->fd.get(), F_GETFL) | O_NONBLOCK);
        if (mux) s->pass = std::make_unique<passthrough_mux::source>(*mux, label);
        pipeline_options po = make_pipeline_options(o_.capture);
        po.recognize = recognize;
        s->pipeline = std::make_unique<capture_pipeline>(*w.cat, ctx, po, static_cast<event_sink*>(this),
                                                         s->pass.get(),
                                                         rejects_.get(), stats_);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = s.get();
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s->fd.get(), &ev);
        w.streams.push_back(std::move(s));
    };
    const bool dedicated = w.pool->telemetry_fd >= 0;
    // With a dedicated telemetry fd, stderr is pass-through only: what a worker merely logs
    // can never inject an event.
    add(child->release_stderr(), pass_.get(), !dedicated);
    add(child->release_stdout(), stdout_pass_.get(), !dedicated);
    add(child->release_telemetry(), pass_.get(), true);
    child->release();  // the loop reaps it
}

void supervisor::read_stream(stream& s) {
    // Bounded per wake-up so one flooding worker cannot starve the others.
    for (int i = 0; i < 8; ++i) {
        const ssize_t n = ::read(s.fd.get(), buf_, sizeof buf_);
        if (n > 0) {
            s.pipeline->feed({buf_, static_cast<std::size_t>(n)});
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        close_stream(s);  // EOF, or an error that ends the stream all the same
        return;
    }
}

void supervisor::close_stream(stream& s) {
    if (!s.fd) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, s.fd.get(), nullptr);
    s.fd.reset();
    s.pipeline->finish();  // a last line without a newline still counts
}

void supervisor::drain(worker& w) {
    // Whatever the worker wrote before it died is in the pipe: read it all now.
    for (auto& s : w.streams)
        if (s->fd) read_stream(*s);
}

void supervisor::exited(worker& w, int code, bool by_signal, int status) {
    w.exit_code = code;
    const pid_t pid = w.pid;
    if (pid > 0) {
        drain(w);
        std::vector<std::pair<std::string, metadata_value>> extra{
            {"exit_code", std::to_string(code)}};
        if (by_signal) extra.emplace_back("reason", spawn::signal_name(WTERMSIG(status)));
        else extra.emplace_back("reason", std::string(code == 0 ? "normal" : "exit"));
        const auto lifetime = std::chrono::duration_cast<std::chrono::nanoseconds>(
            clock::now() - w.started_at);
        lifecycle("worker_terminated", w, {{"lifetime", std::int64_t{lifetime.count()}}},
                  std::move(extra));
    }
    if (stopping_) {
        w.state = worker_state::done;
        return;
    }
    const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    const auto d = w.tracker.on_exit(code != 0, w.started_at, clock::now(), r);
    if (d.give_up) {
        spdlog::error("worker {} gave up: {}", w.id, d.reason);
        w.state = worker_state::done;
    } else if (d.restart) {
        spdlog::info("worker {} exited ({}), restarting in {} ms", w.id, code, d.delay.count());
        w.state = worker_state::backoff;
        w.restart_at = clock::now() + d.delay;
    } else {
        w.state = worker_state::done;
    }
}

void supervisor::take_pending_stop() {
    // The loop's signals are blocked (they are read from the signalfd), so a stop request
    // waits as pending; take it without waiting. TERM and INT alike, as in on_signals.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    const timespec now{0, 0};
    while (::sigtimedwait(&stop, nullptr, &now) > 0) begin_stop();
}

void supervisor::begin_stop() {
    if (stopping_) {
        // A second request: no more grace.
        kill_at_ = clock::now();
        return;
    }
    stopping_ = true;
    kill_at_ = clock::now() + o_.grace;
    for (auto& w : workers_) {
        if (w->state == worker_state::running && w->pid > 0)
            spawn::forward_signal(w->pid, o_.stop_signal, true);
        else if (w->state == worker_state::backoff)
            w->state = worker_state::done;
    }
}

void supervisor::on_signals() {
    signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
        const int sig = static_cast<int>(info.ssi_signo);
        if (sig == SIGCHLD) continue;  // reaped below, whatever the signal count
        if (sig == SIGTERM || sig == SIGINT) {
            begin_stop();  // TERM and INT alike: the workers get --stop-signal
            continue;
        }
        for (auto& w : workers_)
            if (w->state == worker_state::running && w->pid > 0)
                spawn::forward_signal(w->pid, sig, true);
    }
    for (const auto& r : spawn::reap_all()) {
        for (auto& w : workers_) {
            if (w->pid != r.pid || w->state != worker_state::running) continue;
            exited(*w, spawn::exit_code_from_status(r.status), WIFSIGNALED(r.status), r.status);
            break;
        }
        // Anything else was an orphan that we, the subreaper, inherited: reaped, done.
    }
}

void supervisor::on_timer() {
    std::uint64_t ticks;
    while (::read(timer_fd_.get(), &ticks, sizeof ticks) > 0) {
    }
    armed_.reset();  // it fired: disarmed
    const auto now = clock::now();
    if (stopping_ && !killed_ && now >= kill_at_) {
        killed_ = true;
        for (auto& w : workers_)
            if (w->state == worker_state::running && w->pid > 0) {
                spdlog::warn("worker {} still running after the grace period: SIGKILL", w->id);
                spawn::forward_signal(w->pid, SIGKILL, true);
            }
    }
    for (auto& w : workers_)
        if (w->state == worker_state::backoff && !stopping_ && now >= w->restart_at) start(*w);
}

void supervisor::arm_timer() {
    std::optional<clock::time_point> next;
    const auto consider = [&](clock::time_point t) {
        if (!next || t < *next) next = t;
    };
    if (stopping_ && !killed_) consider(kill_at_);
    if (!stopping_)
        for (auto& w : workers_)
            if (w->state == worker_state::backoff) consider(w->restart_at);
    if (next == armed_) return;  // unchanged: spare the syscall
    armed_ = next;
    itimerspec spec{};
    if (next) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            next->time_since_epoch())
                            .count();
        spec.it_value.tv_sec = std::max<std::int64_t>(ns / 1000000000, 0);
        spec.it_value.tv_nsec = ns % 1000000000;
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    ::timerfd_settime(timer_fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

bool supervisor::finished() const {
    return std::all_of(workers_.begin(), workers_.end(),
                       [](const auto& w) { return w->state == worker_state::done; });
}

int supervisor::run() {
    catalog_ = load_catalog(o_.capture);
    pass_ = std::make_unique<passthrough_mux>(passthrough_writer::open(o_.capture.passthrough));
    stdout_pass_ = std::make_unique<passthrough_mux>(
        std::make_unique<passthrough_writer>(fd_writer(1)));
    if (!o_.capture.rejects_path.empty()) rejects_ = rejects_writer::open(o_.capture.rejects_path);

    for (const auto& pool : o_.pools) {
        const catalog* cat = &catalog_;
        if (!pool.catalog_path.empty()) {
            capture_options co = o_.capture;
            co.catalog_path = pool.catalog_path;
            pool_catalogs_.push_back(std::make_unique<catalog>(load_catalog(co)));
            cat = pool_catalogs_.back().get();
        }
        for (int i = 0; i < pool.instances; ++i) {
            auto w = std::make_unique<worker>(pool.restart);
            w->pool = &pool;
            w->cat = cat;
            w->id = (o_.pools.size() == 1 && pool.instances == 1 && o_.capture.worker_id)
                        ? *o_.capture.worker_id
                        : pool.name + "-" + std::to_string(i);
            workers_.push_back(std::move(w));
        }
    }

    if (auto ec = spawn::become_subreaper())
        spdlog::warn("cannot become a child subreaper: {}", ec.message());
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    auto sfd = spawn::make_signalfd(spawn::loop_signal_set());
    if (!epoll_ || !sfd) throw std::runtime_error("cannot set up the event loop");
    signal_fd_ = std::move(*sfd);
    timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    for (auto [fd, tag] : {std::pair{signal_fd_.get(), signal_tag}, {timer_fd_.get(), timer_tag}}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
    }

    for (auto& w : workers_) start(*w);

    std::vector<epoll_event> ready(64);
    while (!finished()) {
        flush_pending();  // before sleeping: nothing may wait in the batch while we do
        arm_timer();
        const int n = ::epoll_wait(epoll_.get(), ready.data(), static_cast<int>(ready.size()), -1);
        if (n < 0 && errno != EINTR) throw std::runtime_error("epoll_wait failed");
        // Signals and timers first; streams are only closed (never freed) until the end of
        // the iteration, so the pointers in `ready` stay valid.
        for (int i = 0; i < n; ++i) {
            const auto tag = ready[static_cast<std::size_t>(i)].data.u64;
            if (tag == signal_tag) on_signals();
            if (tag == timer_tag) on_timer();
        }
        for (int i = 0; i < n; ++i) {
            const auto& e = ready[static_cast<std::size_t>(i)];
            if (e.data.u64 == signal_tag || e.data.u64 == timer_tag) continue;
            auto* s = static_cast<stream*>(e.data.ptr);
            if (s->fd) read_stream(*s);
        }
        for (auto& w : workers_)
            std::erase_if(w->streams, [](const auto& s) { return !s->fd; });
        pass_->flush();
        stdout_pass_->flush();
        if (rejects_) rejects_->flush();
        escape_block_ = false;
    }

    // No leftovers: whatever is still in a worker's process group goes, then every byte
    // still in the pipes is read.
    for (auto& w : workers_)
        for (pid_t g : w->groups) spawn::forward_signal(g, SIGKILL, true);
    spawn::reap_all();
    for (auto& w : workers_) {
        drain(*w);
        for (auto& s : w->streams) close_stream(*s);  // no-op for those drained to EOF
        w->streams.clear();
    }
    flush_pending();
    pass_->flush();
    stdout_pass_->flush();
    if (rejects_) rejects_->flush();

    for (auto& w : workers_)
        if (w->exit_code && *w->exit_code != 0) return *w->exit_code;
    return 0;
}

}  // namespace

int run_workers(const run_options& o) {
    // Signals are blocked before any thread exists, so only the signalfd sees them.
    if (auto ec = spawn::block_signals(spawn::loop_signal_set(), nullptr))
        throw std::runtime_error("cannot block signals: " + ec.message());

    handler_bus bus;
    attach_outputs(o.capture.outputs, bus);
    for (const auto& pool : o.pools)
        for (std::size_t k = 0; k < pool.outputs.size(); ++k)
            bus.attach("pool." + pool.name + ".output." + std::to_string(k) + ":" +
                           pool.outputs[k],
                       {}, std::make_shared<pool_filter>(pool.name, make_output(pool.outputs[k])));

    capture_stats stats;
    bounded_queue<event> queue(o.queue, o.queue_bytes,
                               [](const event& ev) { return ev.approximate_size(); });
    std::promise<void> done;
    auto dispatched = done.get_future();
    std::thread dispatcher([&bus, &queue, &done] {
        std::deque<event> batch;
        while (queue.pop_all(batch)) {
            for (const auto& ev : batch) bus.dispatch(ev);
            batch.clear();
            queue.release();
            if (queue.queued() == 0) bus.flush();  // outputs flush whenever we run dry
        }
        bus.flush();
        done.set_value();
    });

    int rc = 0;
    try {
        supervisor s(o, stats, queue);
        rc = s.run();
    } catch (...) {
        queue.close();
        dispatcher.join();
        throw;
    }
    queue.close();
    // A handler stuck for good must not keep telecap (and its caller) waiting forever.
    const auto limit = stuck_handler_limit(o);
    if (dispatched.wait_for(limit) != std::future_status::ready) {
        stats.dropped_for(drop_reason::shutdown) += queue.queued();
        spdlog::error("a handler did not return within {} ms; exiting without it",
                      limit.count());
        if (!o.capture.stats_path.empty()) write_stats_file(o.capture.stats_path, stats);
        std::fflush(nullptr);
        ::_exit(rc);  // the stuck thread cannot be joined, and must not run on into exit()
    }
    dispatcher.join();
    stats.handler_failures = bus.failures();
    if (!o.capture.stats_path.empty() &&
        !write_stats_file(o.capture.stats_path, stats, bus.counters_json()) && rc == 0)
        rc = 1;
    return rc;
}

}  // namespace telecap::agent
