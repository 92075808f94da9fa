#include "capture/pipeline.hpp"

#include <chrono>

#include "core/clock.hpp"

namespace telecap {

namespace {

// "TELEMETRY:" -> "TELEMETRY_ERROR:", the line a worker writes when its emit fails.
std::string error_prefix_for(std::string_view prefix) {
    if (prefix == default_telemetry_prefix) return std::string(emitter_error_prefix);
    if (!prefix.empty() && prefix.back() == ':')
        return std::string(prefix.substr(0, prefix.size() - 1)) + "_ERROR:";
    return std::string(prefix) + "_ERROR:";
}

}  // namespace

capture_pipeline::capture_pipeline(const catalog& cat, worker_context ctx,
                                   const pipeline_options& opts, event_sink* events,
                                   passthrough_sink* passthrough, reject_sink* rejects,
                                   capture_stats& stats)
    : framer_(opts.max_line, opts.budget),
      parser_(opts.max_depth),
      normalizer_(cat),
      ctx_(std::move(ctx)),
      prefix_(opts.prefix),
      error_prefix_(error_prefix_for(opts.prefix)),
      events_(events),
      passthrough_(passthrough),
      rejects_(rejects),
      stats_(stats),
      events_by_type_(cat),
      slots_(events && events->slots() ? events->slots() : &events_by_type_),
      recognize_(opts.recognize),
      unknown_events_(opts.unknown_events) {}

void capture_pipeline::feed(std::string_view bytes) {
    stats_.bytes += bytes.size();
    framer_.feed(bytes, *this);
}

void capture_pipeline::finish() { framer_.finish(*this); }

void capture_pipeline::pass(std::string_view bytes, bool starts, bool ends) {
    if (passthrough_) passthrough_->write(bytes, starts, ends);
}

void capture_pipeline::rejected(const parse_error& err, std::string_view text, bool truncated) {
    ++stats_.rejected_for(err.reason);
    if (rejects_)
        rejects_->on_reject({err.reason, err.detail, line_no_, err.offset, text, truncated});
}

bool capture_pipeline::normalized(const raw_event& raw, bool line) {
    if (event* ev = normalizer_.normalize(raw, ctx_, raw.has_timestamp ? 0 : wall_clock_ns(),
                                          *slots_, err_)) {
        ++stats_.events;
        if (events_) events_->on_event(*ev);
        return true;
    }
    if (unknown_events_ && err_.reason == reject_reason::unknown_event)
        unknown_events_->rejected(normalizer_.last_wire_name(), line);
    return false;
}

bool capture_pipeline::accept(const raw_event& raw, const std::function<std::string()>& text) {
    ++line_no_;
    if (normalized(raw, false)) return true;
    ++stats_.rejected_for(err_.reason);
    if (rejects_) {
        const std::string t = text ? text() : std::string();
        rejects_->on_reject({err_.reason, err_.detail, line_no_, 0, t, false});
    }
    return false;
}

void capture_pipeline::on_line(std::string_view line, std::string_view eol) {
    ++stats_.lines;
    ++line_no_;
    const std::string_view whole(line.data(), line.size() + eol.size());
    const std::string_view payload =
        recognize_ ? strip_telemetry_prefix(line, prefix_) : std::string_view{};
    if (payload.data() != nullptr) {
        ++stats_.telemetry_lines;
        if (parser_.parse(payload, raw_, err_)) {
            if (normalized(raw_, true)) return;
        } else {
            err_.offset += prefix_.size();
        }
        rejected(err_, line, false);
    } else if (recognize_ && line.starts_with(error_prefix_)) {
        ++stats_.emitter_errors;
    }
    ++stats_.passthrough_lines;
    pass(whole, true, true);
}

void capture_pipeline::on_long_begin(std::string_view head) {
    ++stats_.long_lines;
    ++line_no_;
    if (recognize_ && strip_telemetry_prefix(head, prefix_).data() != nullptr) {
        ++stats_.telemetry_lines;
        err_.reason = reject_reason::oversize;
        if (framer_.cut_by_budget()) {
            err_.offset = head.size();
            err_.detail =
                "line held back longer than the memory budget for partial lines "
                "allows (" +
                std::to_string(framer_.budget_limit()) + " bytes for all streams)";
        } else {
            err_.offset = framer_.max_line();
            err_.detail =
                "line longer than max_line (" + std::to_string(framer_.max_line()) + " bytes)";
        }
        rejected(err_, head, true);
    } else if (recognize_ && head.starts_with(error_prefix_)) {
        ++stats_.emitter_errors;
    }
    pass(head, true, false);
}

void capture_pipeline::on_long_data(std::string_view bytes) { pass(bytes, false, false); }

void capture_pipeline::on_long_end(std::string_view eol) {
    ++stats_.lines;
    ++stats_.passthrough_lines;
    pass(eol, false, true);
}

}  // namespace telecap
