#pragma once
// The runtime controls of the events that leave a worker, with Snakepit's semantics
// (docs/control.md): a toggle, sampling (a rate with optional event patterns), a filter
// (allow/deny globs) and, beyond Snakepit, a rate limit per worker and event name. Each
// control is set at one of three scopes: every worker (global), a pool, or one worker; a
// worker's effective control of each kind is the worker's override, else its pool's, else the
// global one, else the default (everything passes). Pure data and checks: no I/O.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace telecap::control {

struct sampling {
    double rate = 1.0;                  // in [0, 1] once checked: 1 keeps all, 0 drops all
    std::vector<std::string> patterns;  // only events matching one are sampled; empty: all
    bool operator==(const sampling&) const = default;
};

struct filter {
    std::vector<std::string> allow;  // empty: everything is allowed
    std::vector<std::string> deny;   // checked first; wins
    bool operator==(const filter&) const = default;
};

struct rate_limit {
    double events_per_second = 0;  // 0: no limit
    double burst = 0;              // events at once; 0 (unset): max(1, events_per_second)
    bool operator==(const rate_limit&) const = default;
};

// The overrides of one scope; an empty optional inherits from the wider scope.
struct controls {
    std::optional<bool> enabled;
    std::optional<sampling> sample;
    std::optional<filter> filt;
    std::optional<rate_limit> limit;
    bool operator==(const controls&) const = default;
};

// What applies to one worker: every kind resolved.
struct effective_controls {
    bool enabled = true;
    sampling sample;
    filter filt;
    rate_limit limit;
    bool operator==(const effective_controls&) const = default;
    // True when every event passes (the gate's fast path).
    bool open() const noexcept {
        return enabled && sample.rate >= 1.0 && filt.allow.empty() && filt.deny.empty() &&
               limit.events_per_second <= 0;
    }
};

// Checks and normalizes (clamps the rate to [0, 1], fills the burst); the problem as a phrase
// ("sampling rate must be a number, not NaN"), or nothing. A refused control changes nothing.
std::optional<std::string> check(sampling& s);
std::optional<std::string> check(const filter& f);
std::optional<std::string> check(rate_limit& r);
std::optional<std::string> check(controls& c);  // each kind that is set

// Merges `update` into `base`: each kind `update` sets replaces base's.
void merge(controls& base, const controls& update);

// The three scopes and their overrides.
class control_table {
public:
    controls global;
    std::map<std::string, controls, std::less<>> pools;
    std::map<std::string, controls, std::less<>> workers;

    effective_controls resolve(std::string_view pool, std::string_view worker) const;
};

// Where a control or a lifecycle command applies: every worker, a pool, or one worker.
enum class scope_kind { global, pool, worker };
struct scope {
    scope_kind kind = scope_kind::global;
    std::string name;  // the pool or the worker id
};

// The parts of "N[/BURST]" (--rate-limit 100/20), or the problem.
std::optional<std::string> parse_rate_limit(std::string_view text, rate_limit& out);

}  // namespace telecap::control
