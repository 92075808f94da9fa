#include "outputs/jsonl_handler.hpp"

#include "capture/event_json.hpp"

namespace telecap {

void jsonl_handler::handle(const event& ev) {
    // Handed over before appending, not after: the line appended stays in place until the next
    // event, for the other outputs of this dispatch that copy it (shared_event_json).
    if (json_.size() >= batch_bytes_) hand_over();
    json_.append_shared(ev);
    ++batched_;
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
