#pragma once
// The logger telecap's library parts write their messages to (a handler detached, a worker
// that gave up, an output that fails). A host program injects its own with set_logger();
// until then the library writes to a logger of its own named "telecap" on stderr, which it
// never registers with spdlog: the host's default logger and registry stay the host's.

#include <spdlog/logger.h>

#include <memory>

namespace telecap {

// Thread-safe; nullptr puts the library's own stderr logger back.
void set_logger(std::shared_ptr<spdlog::logger> logger);

// The current logger; never null. Thread-safe.
std::shared_ptr<spdlog::logger> logger();

}  // namespace telecap
