#pragma once
// An spdlog sink that appends each formatted message as one line to a stream_writer, so
// telecap's own messages and `-o log` share stderr's one writer with the pass-through and
// never cut into its lines, and never block the thread that logs (a full stream drops the
// message and counts it).

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>

#include "telecap/io/stream_writer.hpp"

namespace telecap {

class stream_log_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit stream_log_sink(std::shared_ptr<stream_writer> out) : out_(std::move(out)) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        out_->append({formatted.data(), formatted.size()}, 1);
    }
    void flush_() override {}

private:
    std::shared_ptr<stream_writer> out_;
};

}  // namespace telecap
