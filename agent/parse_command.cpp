#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <spdlog/spdlog.h>

#include "agent/commands.hpp"
#include "core/unique_fd.hpp"

namespace telecap::agent {

namespace {

class bus_sink final : public event_sink {
public:
    explicit bus_sink(handler_bus& bus) : bus_(bus) {}
    void on_event(event& ev) override { bus_.dispatch(ev); }

private:
    handler_bus& bus_;
};

// Feeds one input through a fresh pipeline (line numbers restart per input). Returns false
// if it cannot be read.
bool feed_input(const std::string& input, const catalog& cat, const capture_options& o,
                event_sink* events, passthrough_sink* pass, reject_sink* rejects,
                capture_stats& stats) {
    unique_fd owned;
    int fd = 0;
    if (input != "-") {
        owned.reset(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
        if (!owned) {
            spdlog::error("cannot read {}: {}", input, std::strerror(errno));
            return false;
        }
        fd = owned.get();
    }
    capture_pipeline pipeline(cat, make_context(o), make_pipeline_options(o), events, pass,
                              rejects, stats);
    static char buf[64 * 1024];
    while (true) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            pipeline.feed({buf, static_cast<std::size_t>(n)});
        } else if (n == 0) {
            break;
        } else if (errno != EINTR) {
            spdlog::error("cannot read {}: {}", input == "-" ? "stdin" : input,
                          std::strerror(errno));
            pipeline.finish();
            return false;
        }
    }
    pipeline.finish();
    return true;
}

std::vector<std::string> inputs_or_stdin(const std::vector<std::string>& inputs) {
    return inputs.empty() ? std::vector<std::string>{"-"} : inputs;
}

}  // namespace

int run_parse(const capture_options& o, const std::vector<std::string>& inputs) {
    const catalog cat = load_catalog(o);
    handler_bus bus;
    attach_outputs(o.outputs, bus);
    auto pass = passthrough_writer::open(o.passthrough);
    std::unique_ptr<rejects_writer> rejects;
    if (!o.rejects_path.empty()) rejects = rejects_writer::open(o.rejects_path);

    bus_sink sink(bus);
    capture_stats stats;
    int rc = 0;
    for (const auto& input : inputs_or_stdin(inputs)) {
        if (rejects) rejects->set_source(input);
        if (!feed_input(input, cat, o, &sink, pass.get(), rejects.get(), stats)) rc = 1;
    }
    if (pass) pass->flush();
    bus.flush();
    if (rejects) rejects->flush();
    stats.handler_failures = bus.failures();
    if (!o.stats_path.empty() && !write_stats_file(o.stats_path, stats, bus.counters_json()))
        rc = 1;
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
    const catalog cat = load_catalog(o);
    lint_printer printer;
    capture_stats stats;
    bool unreadable = false;
    for (const auto& input : inputs_or_stdin(inputs)) {
        printer.source_ = input == "-" ? "<stdin>" : input;
        if (!feed_input(input, cat, o, nullptr, nullptr, &printer, stats)) unreadable = true;
    }
    std::fflush(stdout);
    if (!o.stats_path.empty()) write_stats_file(o.stats_path, stats);
    if (unreadable) return 2;
    return printer.count_ > 0 ? 1 : 0;
}

int run_catalog(const capture_options& o) {
    const catalog cat = load_catalog(o);
    const std::string text = cat.to_json();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
}

}  // namespace telecap::agent
