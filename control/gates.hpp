#pragma once
// The gates one worker's events pass on their way out, in Snakepit's order: enabled, then
// sampling, then filter, then (beyond Snakepit) a token bucket per event name. Patterns match
// the dotted wire name (the name the worker passed to emit). Cheap per event: each name's
// glob results and bucket are kept, found by the catalog index of the name when it has one
// (a vector index), else by the name (a hash lookup; no allocation once the name was seen).
// One thread uses a gate (the loop thread).

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "telecap/control/controls.hpp"
#include "telecap/control/token_bucket.hpp"

namespace telecap::control {

enum class verdict : std::uint8_t { pass, disabled, sampled, filtered, rate_limited, count_ };
std::string_view to_string(verdict v) noexcept;

class gate {
public:
    using clock = token_bucket::clock;
    // Names without a catalog index kept at most (a worker inventing names cannot grow the
    // cache for ever); beyond it their globs are matched each time and share one bucket.
    static constexpr std::size_t max_other_names = 4096;

    explicit gate(std::uint64_t seed = 0x9e3779b97f4a7c15ULL) noexcept : rng_(seed) {}

    // New controls (checked already). `known_names`: how many catalog indexes decide() may
    // be given. Forgets what was cached, buckets included.
    void configure(const effective_controls& c, std::size_t known_names);
    const effective_controls& controls() const noexcept { return c_; }

    // Every event passes: the caller may skip decide() and the wire name.
    bool open() const noexcept { return open_; }
    // decide() reads `wire` (patterns, a filter or a limit are set).
    bool needs_name() const noexcept { return needs_name_; }

    // `known`: the catalog index of the wire name (< known_names), or npos. `presampled`: the
    // worker's emitter applied these same sampling settings already (docs/control.md), so a
    // second draw would square the rate: sampling is skipped, the other gates still apply.
    verdict decide(std::size_t known, std::string_view wire, clock::time_point now,
                   bool presampled = false);

private:
    struct name_state {
        bool seen = false;
        bool sampled = true;  // the sampling applies to this name
        bool allowed = true;  // the filter lets it through
        token_bucket bucket;
    };
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    name_state& state(std::size_t known, std::string_view wire, clock::time_point now);
    void evaluate(name_state& s, std::string_view wire) const;
    double draw() noexcept;

    effective_controls c_;
    bool open_ = true;
    bool needs_name_ = false;
    std::vector<name_state> known_;
    std::unordered_map<std::string, name_state, hash, std::equal_to<>> others_;
    name_state overflow_;
    std::uint64_t rng_;
};

}  // namespace telecap::control
