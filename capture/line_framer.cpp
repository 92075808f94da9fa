#include "capture/line_framer.hpp"

#include <cstring>

namespace telecap {

void line_framer::emit_line(std::string_view with_nl, line_sink& sink) {
    std::size_t eol = 1;
    if (with_nl.size() >= 2 && with_nl[with_nl.size() - 2] == '\r') eol = 2;
    sink.on_line(with_nl.substr(0, with_nl.size() - eol), with_nl.substr(with_nl.size() - eol));
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
        const bool cr_before_nl =
            nl ? (part.size() >= 2 ? part[part.size() - 2] == '\r'
                                   : !buf_.empty() && buf_.back() == '\r')
               : part.back() == '\r';
        if (content > max_line_ + (cr_before_nl ? 1 : 0)) {
            // Too long: hand over the head (max_line + 1 bytes), stream the rest.
            std::string_view rest = part;
            if (buf_.empty() && rest.size() > max_line_) {
                sink.on_long_begin(rest.substr(0, max_line_ + 1));
                rest.remove_prefix(max_line_ + 1);
            } else {
                const std::size_t take = max_line_ + 1 - buf_.size();
                buf_.append(rest.substr(0, take));
                rest.remove_prefix(take);
                sink.on_long_begin(buf_);
                buf_.clear();
            }
            long_ = true;
            if (nl) {
                if (rest.size() > 1) sink.on_long_data(rest.substr(0, rest.size() - 1));
                sink.on_long_end(rest.substr(rest.size() - 1));
                long_ = false;
            } else if (!rest.empty()) {
                sink.on_long_data(rest);
            }
            continue;
        }

        if (!nl) {
            buf_.append(part);
        } else if (buf_.empty()) {
            emit_line(part, sink);  // fast path: the line lies whole in the chunk
        } else {
            buf_.append(part);
            emit_line(buf_, sink);
            buf_.clear();
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
}

}  // namespace telecap
