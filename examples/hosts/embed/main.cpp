// A C++ host that embeds telecap (the telecap::core library) instead of running the CLI:
// it builds the capture pipeline itself, attaches its own handlers to a handler bus by event
// prefix, and prints a summary.
//
//   embed_host < worker.log             the telemetry lines of a log (or any stream) on stdin
//   embed_host -- CMD [ARGS...]          spawns CMD and captures its stderr
//   embed_host --version                 the telecap version it was built against
//
// Lines that are not telemetry go to stderr untouched (the pass-through); the summary goes to
// stdout. Build it against an installed telecap (see CMakeLists.txt next to this file).

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <telecap/capture/bus.hpp>
#include <telecap/capture/catalog.hpp>
#include <telecap/capture/event.hpp>
#include <telecap/capture/pipeline.hpp>
#include <telecap/capture/stats.hpp>
#include <telecap/core/unique_fd.hpp>
#include <telecap/spawn/reaper.hpp>
#include <telecap/spawn/spawner.hpp>
#include <telecap/version.hpp>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

// A handler of our own: tool.execution.{start,stop,exception}, counted and timed per tool.
class tool_stats final : public telecap::handler {
public:
    struct per_tool {
        std::uint64_t started = 0, stopped = 0, failed = 0;
        double duration_ns = 0;
    };

    void handle(const telecap::event& ev) override {
        const std::string& phase = ev.name.back();  // start, stop, exception
        std::string tool = "?";
        if (const auto* v = ev.meta("tool"); v && std::holds_alternative<std::string>(*v))
            tool = std::get<std::string>(*v);
        per_tool& t = tools_[tool];
        if (phase == "start") ++t.started;
        if (phase == "stop") ++t.stopped;
        if (phase == "exception") ++t.failed;
        if (const auto* d = ev.measurement("duration")) {
            std::visit(
                [&](const auto& x) {
                    if constexpr (!std::is_same_v<std::decay_t<decltype(x)>, std::string>)
                        t.duration_ns += static_cast<double>(x);
                },
                *d);
        }
    }

    const std::map<std::string, per_tool>& tools() const { return tools_; }

private:
    std::map<std::string, per_tool> tools_;
};

// Events go straight from the pipeline to the bus (one thread; telecap run puts a bounded
// queue and a dispatch thread in between).
class bus_sink final : public telecap::event_sink {
public:
    explicit bus_sink(telecap::handler_bus& bus) : bus_(bus) {}
    void on_event(telecap::event& ev) override { bus_.dispatch(ev); }

private:
    telecap::handler_bus& bus_;
};

// Non-telemetry bytes, as they came.
class stderr_passthrough final : public telecap::passthrough_sink {
public:
    void write(std::string_view bytes, bool, bool) override {
        std::fwrite(bytes.data(), 1, bytes.size(), stderr);
    }
};

// Reads `fd` to EOF into the pipeline (the fd may be non-blocking).
void pump(int fd, telecap::capture_pipeline& pipeline) {
    char buf[64 * 1024];
    while (true) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            pipeline.feed({buf, static_cast<std::size_t>(n)});
        } else if (n == 0) {
            break;
        } else if (errno == EAGAIN) {
            pollfd p{fd, POLLIN, 0};
            ::poll(&p, 1, -1);
        } else if (errno != EINTR) {
            std::perror("read");
            break;
        }
    }
    pipeline.finish();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--version") {
        std::printf("embed_host (telecap %s)\n", TELECAP_VERSION_STRING);
        return 0;
    }
    std::vector<std::string> command;
    for (int i = 1; i < argc; ++i) {
        if (i == 1 && std::string_view(argv[i]) == "--") continue;
        command.emplace_back(argv[i]);
    }

    const telecap::catalog cat = telecap::catalog::builtin();
    telecap::handler_bus bus;

    // Our handlers, attached by id and event prefix (an empty prefix: every event).
    std::map<std::string, std::uint64_t> counts;
    bus.attach("count-all", {},
               [&counts](const telecap::event& ev) { ++counts[ev.dotted_name()]; });
    auto tools = std::make_shared<tool_stats>();
    bus.attach("tool-stats", {"snakepit", "python", "tool", "execution"}, tools);
    std::uint64_t memory_samples = 0;
    bus.attach("memory", {"snakepit", "python", "memory"},
               [&memory_samples](const telecap::event&) { ++memory_samples; });

    telecap::worker_context ctx;
    ctx.node = "embed-host";
    ctx.pool_name = "embedded";
    telecap::capture_stats stats;
    bus_sink sink(bus);
    stderr_passthrough pass;
    int status = 0;

    if (command.empty()) {
        telecap::capture_pipeline pipeline(cat, ctx, {}, &sink, &pass, nullptr, stats);
        pump(0, pipeline);
    } else {
        telecap::spawn::child_spec spec;
        spec.argv = command;
        auto child = telecap::spawn::spawn(spec);
        if (!child) {
            std::fprintf(stderr, "embed_host: cannot run %s: %s\n", command[0].c_str(),
                         child.error().message().c_str());
            return telecap::spawn::exit_code_for_spawn_error(child.error());
        }
        ctx.worker_id = "embedded-0";
        ctx.pid = child->pid();
        telecap::capture_pipeline pipeline(cat, ctx, {}, &sink, &pass, nullptr, stats);
        telecap::unique_fd err = child->release_stderr();
        pump(err.get(), pipeline);
        int ws = 0;
        while (::waitpid(child->release(), &ws, 0) < 0 && errno == EINTR) {
        }
        status = telecap::spawn::exit_code_from_status(ws);
    }
    bus.flush();
    std::fflush(stderr);

    std::printf("lines: %llu, events: %llu, rejected: %llu\n",
                static_cast<unsigned long long>(stats.lines),
                static_cast<unsigned long long>(stats.events),
                static_cast<unsigned long long>(stats.rejected_total()));
    for (const auto& [name, n] : counts)
        std::printf("event %s: %llu\n", name.c_str(), static_cast<unsigned long long>(n));
    for (const auto& [name, t] : tools->tools())
        std::printf("tool %s: started %llu, stopped %llu, failed %llu, duration %.0f ns\n",
                    name.c_str(), static_cast<unsigned long long>(t.started),
                    static_cast<unsigned long long>(t.stopped),
                    static_cast<unsigned long long>(t.failed), t.duration_ns);
    std::printf("memory samples: %llu\n", static_cast<unsigned long long>(memory_samples));
    return status;
}
