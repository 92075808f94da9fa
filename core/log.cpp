#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>

namespace telecap {
namespace {

std::shared_ptr<spdlog::logger> make_default() {
    // Not spdlog::stderr_logger_mt: that would register "telecap" in spdlog's registry.
    auto l = std::make_shared<spdlog::logger>("telecap",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("telecap: %l: %v");
    return l;
}

std::atomic<std::shared_ptr<spdlog::logger>>& current() {
    static std::atomic<std::shared_ptr<spdlog::logger>> l{make_default()};
    return l;
}

}  // namespace

void set_logger(std::shared_ptr<spdlog::logger> logger) {
    current().store(logger ? std::move(logger) : make_default());
}

std::shared_ptr<spdlog::logger> logger() { return current().load(); }

}  // namespace telecap
