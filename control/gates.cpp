#include "control/gates.hpp"

#include <array>

#include "core/glob.hpp"

namespace telecap::control {

std::string_view to_string(verdict v) noexcept {
    constexpr std::array<std::string_view, static_cast<std::size_t>(verdict::count_)> names{
        "pass", "disabled", "sampled", "filtered", "rate_limited"};
    return names[static_cast<std::size_t>(v)];
}

namespace {

bool any_match(const std::vector<std::string>& patterns, std::string_view name) noexcept {
    for (const auto& p : patterns)
        if (glob_match(p, name)) return true;
    return false;
}

}  // namespace

void gate::configure(const effective_controls& c, std::size_t known_names) {
    c_ = c;
    open_ = c_.open();
    needs_name_ = !c_.sample.patterns.empty() || !c_.filt.allow.empty() || !c_.filt.deny.empty() ||
                  c_.limit.events_per_second > 0;
    known_.assign(known_names, name_state{});
    others_.clear();
    overflow_ = name_state{};
}

void gate::evaluate(name_state& s, std::string_view wire) const {
    s.sampled = c_.sample.patterns.empty() || any_match(c_.sample.patterns, wire);
    // Deny is checked first and wins; an empty allow list allows everything.
    s.allowed =
        !any_match(c_.filt.deny, wire) && (c_.filt.allow.empty() || any_match(c_.filt.allow, wire));
}

gate::name_state& gate::state(std::size_t known, std::string_view wire, clock::time_point now) {
    name_state* s = nullptr;
    if (known < known_.size()) {
        s = &known_[known];
    } else if (auto it = others_.find(wire); it != others_.end()) {
        s = &it->second;
    } else if (others_.size() < max_other_names) {
        s = &others_.try_emplace(std::string(wire)).first->second;
    } else {
        // Past the cap the names share one state: its globs are matched again for each.
        evaluate(overflow_, wire);
        if (!overflow_.seen) {
            overflow_.seen = true;
            overflow_.bucket = {c_.limit.events_per_second, c_.limit.burst, now};
        }
        return overflow_;
    }
    if (!s->seen) {
        s->seen = true;
        evaluate(*s, wire);
        if (c_.limit.events_per_second > 0)
            s->bucket = {c_.limit.events_per_second, c_.limit.burst, now};
    }
    return *s;
}

double gate::draw() noexcept {
    // splitmix64: a fast, well-mixed sequence; 53 bits make a double in [0, 1).
    std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

verdict gate::decide(std::size_t known, std::string_view wire, clock::time_point now,
                     bool presampled) {
    if (open_) return verdict::pass;
    if (!c_.enabled) return verdict::disabled;
    name_state* s = needs_name_ ? &state(known, wire, now) : nullptr;
    const double rate = c_.sample.rate;
    // An independent draw per event, only for the names the sampling applies to.
    if (rate < 1.0 && !presampled && (!s || s->sampled) && (rate <= 0.0 || draw() >= rate))
        return verdict::sampled;
    if (s && !s->allowed) return verdict::filtered;
    if (s && !s->bucket.take(now)) return verdict::rate_limited;
    return verdict::pass;
}

}  // namespace telecap::control
