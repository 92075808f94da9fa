#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/commands.hpp"
#include "agent/output_series.hpp"
#include "core/unique_fd.hpp"
#include "io/passthrough.hpp"
#include "metrics/collectors.hpp"

namespace telecap::agent {

namespace {

class bus_sink final : public event_sink {
public:
    explicit bus_sink(handler_bus& bus) : bus_(bus) {}
    void on_event(event& ev) override { bus_.dispatch(ev); }

private:
    handler_bus& bus_;
};

// SIGINT / SIGTERM while parsing: stop reading, flush everything, write --stats.
class stop_signals {
public:
    stop_signals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        if (::pthread_sigmask(SIG_BLOCK, &set_, &old_) == 0)
            fd_.reset(::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC));
    }
    ~stop_signals() {
        // A signal that came is handled (it ended the parse); the old mask comes back.
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    int fd() const noexcept { return fd_.get(); }
    // The signal received, or 0.
    int received() {
        if (got_) return got_;
        signalfd_siginfo info;
        if (fd_ && ::read(fd_.get(), &info, sizeof info) == sizeof info)
            got_ = static_cast<int>(info.ssi_signo);
        return got_;
    }

private:
    sigset_t set_{}, old_{};
    unique_fd fd_;
    int got_ = 0;
};

enum class feed_result { ok, unreadable, stopped };

// Feeds one input through a fresh pipeline (line numbers restart per input). After every read
// the outputs are flushed, so a live stream (`worker 2>&1 | telecap parse`) shows its events
// and pass-through as they come.
feed_result feed_input(const std::string& input, const catalog& cat, const capture_options& o,
                       event_sink* events, passthrough_sink* pass, reject_sink* rejects,
                       capture_stats& stats, handler_bus* bus, stop_signals& stop,
                       unknown_event_notes* unknown = nullptr) {
    unique_fd owned;
    int fd = 0;
    if (input != "-") {
        owned.reset(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
        if (!owned) {
            spdlog::error("cannot read {}: {}", input, std::strerror(errno));
            return feed_result::unreadable;
        }
        fd = owned.get();
    }
    auto po = make_pipeline_options(o);
    po.unknown_events = unknown;
    capture_pipeline pipeline(cat, make_context(o), po, events, pass, rejects, stats);
    // Large reads: each one ends with a flush of the outputs, which hands a batch to each
    // stream's writer thread (a wake-up); 1 MiB reads and batches (env.batch_bytes) halve the
    // hand-overs of 256 KiB ones. A pipe still returns what it has at once.
    static char buf[1024 * 1024];
    feed_result result = feed_result::ok;
    while (true) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop.fd(), POLLIN, 0}};
        if (::poll(p, stop.fd() >= 0 ? 2 : 1, -1) < 0 && errno != EINTR) break;
        if (stop.received()) {
            result = feed_result::stopped;
            break;
        }
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            pipeline.feed({buf, static_cast<std::size_t>(n)});
            if (bus) bus->flush();
        } else if (n == 0) {
            break;
        } else if (errno != EINTR && errno != EAGAIN) {
            spdlog::error("cannot read {}: {}", input == "-" ? "stdin" : input,
                          std::strerror(errno));
            result = feed_result::unreadable;
            break;
        }
    }
    pipeline.finish();
    if (bus) bus->flush();
    return result;
}

std::vector<std::string> inputs_or_stdin(const std::vector<std::string>& inputs) {
    return inputs.empty() ? std::vector<std::string>{"-"} : inputs;
}

}  // namespace

int run_parse(const capture_options& o, const std::vector<std::string>& inputs) {
    stop_signals stop;  // first: the signals are blocked before any thread starts
    command_streams cs;
    stream_set& streams = cs.get();
    const auto all_inputs = inputs_or_stdin(inputs);
    try {
        // --stats is written whole at exit: it must be none of the inputs and outputs.
        if (!o.stats_path.empty()) streams.claim_output(o.stats_path, "--stats");
        for (const auto& input : all_inputs)
            if (input != "-") streams.claim_input(input);
    } catch (const std::exception& e) {
        throw usage_error(e.what());
    }
    const catalog cat = load_catalog(o);
    // The live counters (--stats "metrics", the metrics exporters): the capture's, the
    // streams' and the process's. Declared before the outputs, which read it until they go.
    capture_stats stats;
    metrics::registry registry;
    metrics::add_capture_collector(registry, stats);
    metrics::add_stream_collector(registry, streams);
    metrics::add_process_collector(registry);
    handler_bus bus;
    output_env env{.streams = streams,
                   .wait = true,
                   // Its outputs may wait for their streams, so a batch may pass the soft limit.
                   .batch_bytes = std::size_t{1} << 20,
                   .name_ids_unique = true,  // one catalog, loaded before the outputs
                   .registry = &registry,
                   .metrics_path = o.metrics_path,
                   .catalog_path = o.catalog_path};
    attached_outputs outputs;
    attach_outputs(o.outputs, bus, env, &outputs);
    add_output_series(registry, outputs);
    passthrough_mux pass(open_passthrough(o.passthrough, streams));
    // parse's input can wait (a file, a pipe): its pass-through and rejects wait for room in
    // their streams rather than drop, which also bounds memory for a line of any length.
    const auto stopped = [&stop] { return stop.received() != 0; };
    pass.wait_for_room(stopped);
    metrics::add_passthrough_collector(registry, {&pass});
    auto pass_source = pass.make_source("");
    auto rejects = open_rejects(o.rejects_path, streams);
    if (rejects) rejects->wait_for_room(stopped);
    std::unique_ptr<rejects_writer::source> reject_source;
    if (rejects) reject_source = std::make_unique<rejects_writer::source>(*rejects, "");

    bus_sink sink(bus);
    unknown_event_notes unknown;  // one warning per unknown event name over all inputs
    int rc = 0;
    for (const auto& input : all_inputs) {
        if (reject_source) reject_source->rename(input);
        const auto r = feed_input(input, cat, o, &sink, pass.writer() ? pass_source.get() : nullptr,
                                  reject_source.get(), stats, &bus, stop, &unknown);
        if (r == feed_result::unreadable) rc = 1;
        if (r == feed_result::stopped) {
            rc = 128 + stop.received();
            break;
        }
    }
    pass_source.reset();  // a long line left open (a stop signal) is ended
    stats.long_lines_split += pass.long_lines_split();
    stats.partial_lines += pass.partial_lines();
    bus.flush();
    // Network outputs send what they hold (a last metrics export) within a bounded time.
    bus.finish(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    stats.handler_failures = bus.failures();
    stats.dropped_for(drop_reason::output) += bus.events_dropped();
    // Everything is handed to the streams; wait for them to take it (a slow reader is waited
    // for, as cat would; a stop signal ends the wait).
    for (const auto& w : streams.all())
        while (!w->drain(std::chrono::steady_clock::now() + std::chrono::milliseconds(100)) &&
               !w->given_up() && !stop.received()) {
        }
    cs.finish(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
    if (!o.stats_path.empty() &&
        !write_stats_file(o.stats_path, stats, bus.counters_json(),
                          ",\"streams\":" + streams_json(streams) +
                              ",\"metrics\":" + metrics::to_json(registry.snapshot())))
        rc = rc ? rc : 1;
    if (rc == 0 && data_lost(stats, bus, streams)) {
        spdlog::error("some output was lost (see --stats)");
        rc = exit_data_lost;
    }
    return rc;
}

namespace {

class lint_printer final : public reject_sink {
public:
    void on_reject(const reject_info& r) override {
        ++count_;
        std::printf("%s:%llu:%zu: %.*s: %.*s\n", source_.c_str(),
                    static_cast<unsigned long long>(r.line_no), r.offset + 1,
                    static_cast<int>(to_string(r.reason).size()), to_string(r.reason).data(),
                    static_cast<int>(r.detail.size()), r.detail.data());
    }
    std::string source_;
    std::uint64_t count_ = 0;
};

}  // namespace

int run_lint(const capture_options& o, const std::vector<std::string>& inputs) {
    if (!o.stats_path.empty()) {
        stream_set paths;  // lint writes no stream: only --stats against the inputs
        try {
            paths.claim_output(o.stats_path, "--stats");
            for (const auto& input : inputs)
                if (input != "-") paths.claim_input(input);
        } catch (const std::exception& e) {
            throw usage_error(e.what());
        }
    }
    const catalog cat = load_catalog(o);
    lint_printer printer;
    capture_stats stats;
    stop_signals stop;
    bool unreadable = false;
    for (const auto& input : inputs_or_stdin(inputs)) {
        printer.source_ = input == "-" ? "<stdin>" : input;
        if (feed_input(input, cat, o, nullptr, nullptr, &printer, stats, nullptr, stop) ==
            feed_result::unreadable)
            unreadable = true;
    }
    std::fflush(stdout);
    if (!o.stats_path.empty()) write_stats_file(o.stats_path, stats);
    if (unreadable) return 2;
    return printer.count_ > 0 ? 1 : 0;
}

int run_metrics(bool print_default, const std::string& check_path) {
    if (!check_path.empty()) {
        const auto cfg = load_metrics(check_path);  // throws usage_error: exit 2
        std::size_t captured = 0;
        for (const auto& m : cfg.metrics) captured += m.capture ? 1 : 0;
        std::printf("%s: %zu metrics (%zu captured) for service %s\n", check_path.c_str(),
                    cfg.metrics.size(), captured, cfg.service_name.c_str());
        return 0;
    }
    if (!print_default) throw usage_error("telecap metrics: give --print-default or --check FILE");
    const auto text = metrics::default_metrics_yaml();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

int run_catalog(const capture_options& o) {
    const catalog cat = load_catalog(o);
    const std::string text = cat.to_json();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

}  // namespace telecap::agent
