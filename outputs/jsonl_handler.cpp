#include "outputs/jsonl_handler.hpp"

#include "capture/event_json.hpp"

namespace telecap {

namespace {
// Each hand-over may wake the stream's writer thread (a futex wake and a context switch, tens of
// microseconds on a VM): batches well above a read's worth keep that off the per-event cost.
constexpr std::size_t batch_bytes = 256 * 1024;
}  // namespace

void jsonl_handler::handle(const event& ev) {
    json_.append(ev);
    ++batched_;
    if (json_.size() >= batch_bytes) hand_over();
}

void jsonl_handler::flush() { hand_over(); }

void jsonl_handler::hand_over() {
    if (batched_ == 0) return;
    if (wait_)
        while (out_->congested() && !out_->given_up() && !out_->closing())
            out_->wait_room(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
    json_.take(buf_);
    if (out_->append_owned(buf_, batched_))
        written_.fetch_add(batched_, std::memory_order_relaxed);
    else
        dropped_.fetch_add(batched_, std::memory_order_relaxed);
    buf_.clear();
    batched_ = 0;
}

std::string jsonl_handler::counters_json() const {
    return "{\"stream\":\"" +
           std::string(out_->name().find('"') == std::string::npos ? out_->name() : "?") +
           "\",\"events_accepted\":" + std::to_string(events_written()) +
           ",\"events_dropped\":" + std::to_string(events_dropped()) + "}";
}

}  // namespace telecap
