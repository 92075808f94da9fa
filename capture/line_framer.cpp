#include "capture/line_framer.hpp"

#include <algorithm>
#include <cstring>

namespace telecap {

line_framer::~line_framer() {
    if (budget_ && charged_) budget_->give(charged_);
}

void line_framer::emit_line(std::string_view with_nl, line_sink& sink) {
    std::size_t eol = 1;
    if (with_nl.size() >= 2 && with_nl[with_nl.size() - 2] == '\r') eol = 2;
    sink.on_line(with_nl.substr(0, with_nl.size() - eol), with_nl.substr(with_nl.size() - eol));
}

bool line_framer::reserve(std::size_t size) {
    if (size <= buf_.capacity()) return true;
    if (size <= free_hold) {
        buf_.reserve(free_hold);  // once, exactly: appends never double it past free_hold
        return true;
    }
    if (!budget_) return true;
    const std::size_t want = size - free_hold;
    if (want > charged_ && !budget_->try_take(want - charged_)) return false;
    charged_ = std::max(charged_, want);
    buf_.reserve(size);
    // The allocator may round up (doubling): that share is charged too, without asking.
    const std::size_t real = buf_.capacity() > free_hold ? buf_.capacity() - free_hold : 0;
    if (real > charged_) {
        budget_->take(real - charged_);
        charged_ = real;
    }
    return true;
}

void line_framer::release() {
    if (buf_.capacity() <= free_hold) return;
    std::string().swap(buf_);
    if (budget_ && charged_) budget_->give(charged_);
    charged_ = 0;
}

void line_framer::go_long(std::string_view part, bool nl, std::size_t head_size, line_sink& sink) {
    std::string_view rest = part;
    if (buf_.empty() && rest.size() >= head_size) {
        sink.on_long_begin(rest.substr(0, head_size));
        rest.remove_prefix(head_size);
    } else {
        const std::size_t take =
            std::min(rest.size(), head_size - std::min(head_size, buf_.size()));
        buf_.append(rest.substr(0, take));
        rest.remove_prefix(take);
        sink.on_long_begin(buf_);
        buf_.clear();
        release();
    }
    long_ = true;
    if (nl) {
        if (rest.size() > 1) sink.on_long_data(rest.substr(0, rest.size() - 1));
        sink.on_long_end(rest.substr(rest.size() - 1));
        long_ = false;
    } else if (!rest.empty()) {
        sink.on_long_data(rest);
    }
}

void line_framer::feed(std::string_view chunk, line_sink& sink) {
    while (!chunk.empty()) {
        const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
        const std::size_t upto =
            nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - chunk.data()) + 1
               : chunk.size();
        const std::string_view part = chunk.substr(0, upto);
        chunk.remove_prefix(upto);

        if (long_) {
            if (nl) {
                if (part.size() > 1) sink.on_long_data(part.substr(0, part.size() - 1));
                sink.on_long_end(part.substr(part.size() - 1));
                long_ = false;
            } else {
                sink.on_long_data(part);
            }
            continue;
        }

        // Content bytes of the line so far (the "\n" is not content; a "\r" before it is
        // counted here but dropped from the line, so max_line + 1 is still not long).
        const std::size_t content = buf_.size() + part.size() - (nl ? 1 : 0);
        // A "\r" that may be the first half of a "\r\n" is not counted either, whether its
        // "\n" came in this chunk or has yet to come.
        const bool cr_before_nl = nl ? (part.size() >= 2 ? part[part.size() - 2] == '\r'
                                                         : !buf_.empty() && buf_.back() == '\r')
                                     : part.back() == '\r';
        if (content > max_line_ + (cr_before_nl ? 1 : 0)) {
            // Too long: hand over the head (max_line + 1 bytes), stream the rest.
            cut_ = false;
            go_long(part, nl != nullptr, max_line_ + 1, sink);
            continue;
        }

        if (nl && buf_.empty()) {
            emit_line(part, sink);  // fast path: the line lies whole in the chunk
        } else if (!reserve(buf_.size() + part.size())) {
            // The budget cannot hold it: what is held so far (at least free_hold bytes with
            // this part) goes on as a long line.
            cut_ = true;
            go_long(part, nl != nullptr, std::max(free_hold, buf_.size()), sink);
        } else if (!nl) {
            buf_.append(part);
        } else {
            buf_.append(part);
            emit_line(buf_, sink);
            buf_.clear();
            release();
        }
    }
}

void line_framer::finish(line_sink& sink) {
    if (long_) {
        sink.on_long_end({});
        long_ = false;
    } else if (!buf_.empty()) {
        sink.on_line(buf_, {});
        buf_.clear();
    }
    release();
}

}  // namespace telecap
