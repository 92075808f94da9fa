#pragma once
// The supervisor's own events about its workers (spawned, restarted, terminated,
// spawn_failed), named from the catalog's pool events, with the host metadata of the worker
// as the normalizer adds it to the worker's own events.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "telecap/capture/catalog.hpp"
#include "telecap/capture/event.hpp"
#include "telecap/capture/normalizer.hpp"

namespace telecap {

// short_name: "worker_spawned", "worker_restarted", "worker_terminated" or
// "worker_spawn_failed". `extra` metadata comes before the host's keys.
event lifecycle_event(const catalog& cat, std::string_view short_name, const worker_context& ctx,
                      std::vector<std::pair<std::string, measurement_value>> measurements,
                      std::vector<std::pair<std::string, metadata_value>> extra,
                      std::int64_t timestamp_ns);

// The host metadata the gRPC path adds to every event of a worker, in its order: node,
// worker_id, pool_name, python_pid, correlation_id, timestamp_ns.
void append_host_metadata(std::vector<std::pair<std::string, metadata_value>>& md,
                          const worker_context& ctx,
                          const std::optional<std::string>& correlation_id,
                          std::int64_t timestamp_ns);

}  // namespace telecap
