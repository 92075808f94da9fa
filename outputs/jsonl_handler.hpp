#pragma once
// Output: events as JSON lines (the output contract, capture/event_json.hpp) to a stream
// (stdout, a file: io/stream_writer.hpp). Lines are batched here and handed to the stream's
// writer when `batch_bytes` are waiting (256 KiB by default) and at each flush() (the dispatcher
// running dry, and after every read in `telecap parse`), so the stream is written as events come,
// never cut.
//
// When the stream is congested (its reader is slow): with `wait` the handler waits for room
// (back-pressure: the dispatcher's queue fills and the producers apply their overflow policy),
// else the batch is offered anyway and the stream drops it whole above its hard limit. Every
// event is counted as written or dropped. A producer that cannot wait here (the run loop, when
// it drives the bus itself) asks congested() and stops reading instead.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "telecap/capture/event_json.hpp"
#include "telecap/capture/handler.hpp"
#include "telecap/io/stream_writer.hpp"

namespace telecap {

class jsonl_handler final : public handler {
public:
    // Each hand-over may wake the stream's writer thread (a futex wake and a context switch,
    // tens of microseconds on a VM): batches well above a read's worth keep that off the
    // per-event cost. 256 KiB stays under a stream's 1 MiB soft limit, so one batch alone never
    // makes it congested (which would pause the run loop in block mode).
    static constexpr std::size_t default_batch_bytes = 256 * 1024;

    explicit jsonl_handler(std::shared_ptr<stream_writer> out, bool wait = true,
                           std::size_t batch_bytes = default_batch_bytes)
        : out_(std::move(out)), wait_(wait), batch_bytes_(batch_bytes) {}

    // name_id alone identifies an event's name (output_env::name_ids_unique).
    void trust_name_ids() noexcept { json_.trust_name_ids(); }
    // Every event's keys_id names its keys (event_json_writer::trust_keys_ids).
    void trust_keys_ids() noexcept { json_.trust_keys_ids(); }
    void handle(const event& ev) override;
    void flush() override;
    // Behind, for a producer that does not let this handler wait (the bus on the loop thread).
    bool congested() const override {
        return !wait_ && out_->congested() && !out_->given_up() && !out_->closing();
    }
    std::string counters_json() const override;

    std::uint64_t events_written() const noexcept { return written_.load(); }
    std::uint64_t events_dropped() const noexcept override { return dropped_.load(); }
    // Its stream's failed writes, and the last failure said.
    std::uint64_t errors() const override { return out_->counters().write_errors.load(); }
    std::string last_error() const override { return out_->last_error(); }
    stream_writer& stream() const noexcept { return *out_; }

private:
    void hand_over();

    std::shared_ptr<stream_writer> out_;
    bool wait_;
    std::size_t batch_bytes_;
    event_json_writer json_;  // the batch being written
    std::string buf_;         // handed to the stream (swapped, not copied)
    std::uint64_t batched_ = 0;
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_{0};
};

// Output: discards events (for benchmarks and for runs that only want pass-through or stats).
class null_handler final : public handler {
public:
    void handle(const event&) override {}
};

}  // namespace telecap
