#include "dispatch/event_batch.hpp"

#include <algorithm>
#include <utility>

namespace telecap {

namespace {

// Strings kept aside at most: enough for a batch of wide events, bounded for a batch that
// once held a very wide one.
constexpr std::size_t max_spare = 4096;
constexpr std::size_t min_heap = 64;

std::size_t text_bytes(const std::string& s) { return s.size() > 15 ? s.size() + 1 : 0; }

}  // namespace

event& event_batch::next_slot() {
    if (size_ == slots_.size()) slots_.emplace_back();
    return slots_[size_++];
}

std::string event_batch::spare() {
    if (spare_.empty()) return {};
    std::string s = std::move(spare_.back());
    spare_.pop_back();
    return s;
}

void event_batch::keep(std::string& s) {
    // Only a string with storage of its own is worth keeping; a short one lives inline.
    if (s.capacity() > 15 && spare_.size() < max_spare) spare_.push_back(std::move(s));
}

void event_batch::assign(std::string& dst, const std::string& src) {
    if (dst.capacity() < src.size()) {
        if (!spare_.empty() && spare_.back().capacity() >= src.size()) {
            std::swap(dst, spare_.back());
            if (spare_.back().capacity() <= 15) spare_.pop_back();
        } else {
            // Heap strings get at least min_heap bytes: most of an event's strings then fit in
            // any kept string, so a slot that meets a longer event takes one instead of
            // allocating.
            dst.reserve(std::max(src.size(), min_heap));
        }
    }
    dst.assign(src);
    bytes_ += text_bytes(src);
}

template <typename Pairs>
void event_batch::assign_pairs(Pairs& dst, const Pairs& src) {
    while (dst.size() > src.size()) {  // the strings of the surplus pairs stay for later
        auto& [k, v] = dst.back();
        keep(k);
        if (auto* s = std::get_if<std::string>(&v)) keep(*s);
        dst.pop_back();
    }
    while (dst.size() < src.size()) dst.emplace_back().first = spare();
    for (std::size_t i = 0; i < src.size(); ++i) {
        auto& [dk, dv] = dst[i];
        const auto& [sk, sv] = src[i];
        assign(dk, sk);
        if (const auto* s = std::get_if<std::string>(&sv)) {
            if (!std::holds_alternative<std::string>(dv)) dv.template emplace<std::string>(spare());
            assign(std::get<std::string>(dv), *s);
        } else {
            if (auto* d = std::get_if<std::string>(&dv)) keep(*d);
            dv = sv;
        }
    }
}

event& event_batch::push(const event& ev) {
    event& out = next_slot();
    while (out.name.size() > ev.name.size()) {
        keep(out.name.back());
        out.name.pop_back();
    }
    while (out.name.size() < ev.name.size()) out.name.push_back(spare());
    for (std::size_t i = 0; i < ev.name.size(); ++i) assign(out.name[i], ev.name[i]);
    assign_pairs(out.measurements, ev.measurements);
    assign_pairs(out.metadata, ev.metadata);
    if (ev.correlation_id) {
        if (!out.correlation_id) out.correlation_id.emplace(spare());
        assign(*out.correlation_id, *ev.correlation_id);
    } else if (out.correlation_id) {
        keep(*out.correlation_id);
        out.correlation_id.reset();
    }
    out.timestamp_ns = ev.timestamp_ns;
    out.name_id = ev.name_id;
    out.control_seq = ev.control_seq;
    bytes_ += sizeof(event) + (ev.name.size() + 2 * ev.measurements.size() +
                               2 * ev.metadata.size()) * sizeof(std::string);
    return out;
}

event& event_batch::push_moved(event&& ev) {
    event& out = next_slot();
    bytes_ += ev.approximate_size();
    out = std::move(ev);
    return out;
}

}  // namespace telecap
