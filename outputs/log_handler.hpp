#pragma once
// Output: one human-readable line per event through spdlog (the debug view), e.g.
//   snakepit.python.tool.execution.stop duration=1500 count=1 | tool="search" worker_id="w-0"

#include <memory>
#include <string>

#include "telecap/capture/handler.hpp"
#include "telecap/io/stream_writer.hpp"

namespace spdlog {
class logger;
}

namespace telecap {

class log_handler final : public handler {
public:
    // `stream`, when given, is the stream the logger writes to: its failed writes are this
    // output's errors (it is shared: telecap's own messages and pass-through may fail there too).
    explicit log_handler(std::shared_ptr<spdlog::logger> logger,
                         std::shared_ptr<stream_writer> stream = nullptr)
        : logger_(std::move(logger)), stream_(std::move(stream)) {}
    void handle(const event& ev) override;
    void flush() override;
    std::uint64_t errors() const override {
        return stream_ ? stream_->counters().write_errors.load() : 0;
    }
    std::string last_error() const override { return stream_ ? stream_->last_error() : ""; }

    // The text of one event, without a newline. Text from the worker (names, keys, string
    // values) cannot break the line or reach the terminal: control characters, DEL, C1
    // controls, backslashes and bytes that are not UTF-8 are escaped (\n, \t, \r, \\, \xNN,
    // \u00NN); so are '"' (as \") and, in names and keys, space, '=' and '|' (as \xNN).
    static std::string format(const event& ev);

private:
    std::shared_ptr<spdlog::logger> logger_;
    std::shared_ptr<stream_writer> stream_;
};

}  // namespace telecap
