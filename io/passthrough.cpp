#include "io/passthrough.hpp"

#include <algorithm>

namespace telecap {

void passthrough_mux::write(const source* s, std::string_view bytes, bool starts, bool ends) {
    if (!out_) return;
    if (owner_ && owner_ != s) {
        if (starts) hold_ += s->label();
        hold_ += bytes;
        if (ends) ++hold_lines_;
        // Bounded in memory and in time: past either bound the held lines go out anyway.
        if (hold_.size() > hold_limit ||
            std::chrono::steady_clock::now() - owner_since_ > hold_time) {
            ++forced_;
            out_->append_part(hold_, false);
            hold_.clear();
            hold_lines_ = 0;
        }
        return;
    }
    if (starts && ends) {
        if (s->label().empty()) {
            out_->append(bytes, 1);
        } else {
            scratch_.assign(s->label());
            scratch_.append(bytes);
            out_->append(scratch_, 1);
        }
        return;
    }
    if (starts) {
        scratch_.assign(s->label());
        scratch_.append(bytes);
        out_->append_part(scratch_, false);
        owner_ = s;
        owner_since_ = std::chrono::steady_clock::now();
        return;
    }
    out_->append_part(bytes, ends);
    if (ends && owner_ == s) {
        owner_ = nullptr;
        release_hold();
    }
}

void passthrough_mux::release(const source* s) {
    if (owner_ == s) {
        owner_ = nullptr;
        if (out_) out_->append_part({}, true);  // the stream ended inside its long line
        release_hold();
    }
}

void passthrough_mux::release_hold() {
    if (!hold_.empty()) out_->append(hold_, hold_lines_, true);
    hold_.clear();
    hold_lines_ = 0;
}

}  // namespace telecap
