#include "io/passthrough.hpp"

#include <algorithm>

namespace telecap {

void passthrough_mux::wait_room() {
    if (wait_) out_->wait_for_room(stop_);
}

void passthrough_mux::write(source* s, std::string_view bytes, bool starts, bool ends) {
    if (!out_) return;
    check_bounds();  // a wait past its bound ends the long line before more of it goes out
    std::string_view piece = bytes;
    if (s->continued_ && !starts) {
        // The rest of a long line that was split: the split's newline ended it already, or
        // what follows is a new line that says where it comes from.
        s->continued_ = false;
        if (ends && (bytes.empty() || bytes == "\n")) {
            check_bounds();
            return;
        }
        continued_.assign(continued_marker);
        continued_.append(bytes);
        piece = continued_;
        starts = true;
    }
    if (ends && (piece.empty() || piece.back() != '\n')) {
        // A last line without a newline: the next line on the stream would glue to it.
        ended_.assign(piece);
        ended_ += '\n';
        piece = ended_;
        ++partials_;
    }
    if (owner_ && owner_ != s) {
        hold(s, piece, starts, ends);
    } else {
        wait_room();
        put(s, piece, starts, ends);
    }
    check_bounds();
}

void passthrough_mux::put(source* s, std::string_view bytes, bool starts, bool ends) {
    std::string_view text = bytes;
    if (starts && !s->label_.empty()) {
        scratch_.assign(s->label_);
        scratch_.append(bytes);
        text = scratch_;
    }
    if (starts && ends) {
        out_->append(text, 1);
        return;
    }
    out_->append_part(text, ends);
    if (!ends) {
        owner_ = s;
    } else if (owner_ == s) {
        owner_ = nullptr;
        release_holds();
    }
}

void passthrough_mux::hold(source* s, std::string_view bytes, bool starts, bool ends) {
    if (s->held_.empty()) waiting_.push_back(s);
    const std::size_t before = s->held_.size();
    if (starts) s->held_ += s->label_;
    s->held_ += bytes;
    held_bytes_ += s->held_.size() - before;
    if (ends) ++s->held_lines_;
    s->held_open_ = !ends;
}

bool passthrough_mux::others_waiting() const { return !waiting_.empty() || out_->holding(); }

void passthrough_mux::check_bounds() {
    if (!owner_) return;
    if (!timed_) {
        if (!others_waiting()) return;
        timed_ = true;
        waiting_since_ = clock::now();
        if (alarm_) alarm_(waiting_since_ + hold_.time);
    }
    if (held_bytes_ > hold_.bytes || clock::now() - waiting_since_ >= hold_.time) split();
}

void passthrough_mux::tick() {
    if (!out_ || !owner_ || !timed_) return;
    check_bounds();
    if (owner_ && timed_ && alarm_) alarm_(waiting_since_ + hold_.time);
}

void passthrough_mux::split() {
    source* s = owner_;
    out_->append_part("\n", true);  // what the stream itself held for the line goes out too
    ++splits_;
    s->continued_ = true;
    owner_ = nullptr;
    release_holds();
}

void passthrough_mux::release_holds() {
    timed_ = false;
    while (!owner_ && !waiting_.empty()) {
        source* s = waiting_.front();
        waiting_.erase(waiting_.begin());
        std::string held;
        held.swap(s->held_);
        held_bytes_ -= held.size();
        const std::uint64_t lines = s->held_lines_;
        s->held_lines_ = 0;
        // force: these lines were accepted when they were held; the hold bounds them.
        if (!s->held_open_) {
            wait_room();
            out_->append(held, lines, true);
            continue;
        }
        // Its whole lines, then the head of its long line, which owns the stream now.
        s->held_open_ = false;
        const auto nl = held.rfind('\n');
        const std::size_t cut = nl == std::string::npos ? 0 : nl + 1;
        if (cut > 0) out_->append(std::string_view(held).substr(0, cut), lines, true);
        out_->append_part(std::string_view(held).substr(cut), false);
        owner_ = s;
    }
    check_bounds();  // the sources still waiting wait for the new owner, within the bound
}

void passthrough_mux::release(source* s) {
    if (!out_) return;
    if (!s->held_.empty()) {
        waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), s), waiting_.end());
        held_bytes_ -= s->held_.size();
        std::uint64_t lines = s->held_lines_;
        if (s->held_open_) {  // its stream ended inside a long line that was still held
            s->held_ += '\n';
            ++lines;
            ++partials_;
        }
        out_->append(s->held_, lines, true);
        s->held_.clear();
    }
    if (owner_ == s) {
        out_->append_part("\n", true);  // its stream ended inside its long line
        ++partials_;
        owner_ = nullptr;
        release_holds();
    }
}

}  // namespace telecap
