// Test worker for the C++ span helper: telecap::span and telecap::traced.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "telecap_emit.h"

namespace app {
struct disk_full : std::runtime_error {
    disk_full() : std::runtime_error("no space left on \"/data\"") {}
};
}  // namespace app

int main() {
    const std::string pid = std::to_string(static_cast<long>(getpid()));
    {  // a normal scope: start, then stop
        telecap::span s("tool.execution", {{"tool", "search"}, {"worker_pid", pid}}, "cpp-1");
    }
    try {  // left by an exception: start, then exception (type unknown to a destructor)
        telecap::span s("tool.execution", {{"tool", "unwind"}});
        throw std::logic_error("unwound");
    } catch (const std::exception&) {
    }
    try {  // traced: the exception's type and what()
        telecap::traced(
            "python.call", {{"function", "write"}}, []() -> int { throw app::disk_full(); },
            "cpp-3");
    } catch (const app::disk_full&) {
        std::fprintf(stderr, "rethrown disk_full\n");
    }
    // traced returns the function's value
    const int v = telecap::traced("python.call", {}, [] { return 42; });
    {  // fail() in a catch block, then the destructor does nothing more
        telecap::span s("tool.execution", {{"tool", "manual"}});
        try {
            throw std::out_of_range("index 7");
        } catch (const std::exception& e) {
            s.fail(e);
        }
    }
    std::fprintf(stderr, "value %d\n", v);
    return 0;
}
