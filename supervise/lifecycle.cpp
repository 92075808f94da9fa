#include "supervise/lifecycle.hpp"

#include <map>

namespace telecap {

void append_host_metadata(std::vector<std::pair<std::string, metadata_value>>& md,
                          const worker_context& ctx,
                          const std::optional<std::string>& correlation_id,
                          std::int64_t timestamp_ns) {
    md.emplace_back("node", ctx.node);
    if (ctx.worker_id) md.emplace_back("worker_id", *ctx.worker_id);
    md.emplace_back("pool_name", ctx.pool_name);
    if (ctx.pid) md.emplace_back("python_pid", *ctx.pid);
    if (correlation_id)
        md.emplace_back("correlation_id", *correlation_id);
    else
        md.emplace_back("correlation_id", nullptr);
    md.emplace_back("timestamp_ns", timestamp_ns);
}

event lifecycle_event(const catalog& cat, std::string_view short_name, const worker_context& ctx,
                      std::vector<std::pair<std::string, measurement_value>> measurements,
                      std::vector<std::pair<std::string, metadata_value>> extra,
                      std::int64_t timestamp_ns) {
    // A custom catalog without pool events still gets Snakepit's names.
    static const std::map<std::string_view, std::vector<std::string>> fallback{
        {"worker_spawned", {"snakepit", "pool", "worker", "spawned"}},
        {"worker_terminated", {"snakepit", "pool", "worker", "terminated"}},
        {"worker_restarted", {"snakepit", "pool", "worker", "restarted"}},
        {"worker_spawn_failed", {"snakepit", "pool", "worker", "spawn_failed"}}};
    event ev;
    const auto* name = cat.pool_event(short_name);
    ev.name = name ? *name : fallback.at(short_name);
    ev.measurements = std::move(measurements);
    ev.timestamp_ns = timestamp_ns;
    ev.metadata = std::move(extra);
    append_host_metadata(ev.metadata, ctx, std::nullopt, timestamp_ns);
    return ev;
}

}  // namespace telecap
