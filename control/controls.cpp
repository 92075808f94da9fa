#include "control/controls.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/glob.hpp"

namespace telecap::control {

namespace {

std::optional<std::string> check_patterns(const std::vector<std::string>& list, const char* what) {
    for (const auto& p : list)
        if (auto e = glob_error(p)) return std::string(what) + " pattern: " + *e;
    return std::nullopt;
}

std::string number(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

template <typename T>
const T* pick(const std::optional<T>& w, const std::optional<T>& p, const std::optional<T>& g) {
    if (w) return &*w;
    if (p) return &*p;
    if (g) return &*g;
    return nullptr;
}

}  // namespace

std::optional<std::string> check(sampling& s) {
    if (std::isnan(s.rate)) return "sampling rate must be a number, not NaN";
    s.rate = std::clamp(s.rate, 0.0, 1.0);  // as Snakepit does
    return check_patterns(s.patterns, "sampling");
}

std::optional<std::string> check(const filter& f) {
    if (auto e = check_patterns(f.allow, "allow")) return e;
    return check_patterns(f.deny, "deny");
}

std::optional<std::string> check(rate_limit& r) {
    if (!std::isfinite(r.events_per_second) || r.events_per_second < 0)
        return "rate limit must be a finite number of events per second >= 0 (0: no limit), "
               "not " +
               number(r.events_per_second);
    if (!std::isfinite(r.burst) || r.burst < 0)
        return "rate limit burst must be a finite number >= 1, not " + number(r.burst);
    if (r.events_per_second > 0 && r.burst > 0 && r.burst < 1)
        return "rate limit burst must be at least 1, not " + number(r.burst);
    if (r.events_per_second > 0 && r.burst == 0) r.burst = std::max(1.0, r.events_per_second);
    if (r.events_per_second == 0) r.burst = 0;
    return std::nullopt;
}

std::optional<std::string> check(controls& c) {
    if (c.sample)
        if (auto e = check(*c.sample)) return e;
    if (c.filt)
        if (auto e = check(*c.filt)) return e;
    if (c.limit)
        if (auto e = check(*c.limit)) return e;
    return std::nullopt;
}

void merge(controls& base, const controls& update) {
    if (update.enabled) base.enabled = update.enabled;
    if (update.sample) base.sample = update.sample;
    if (update.filt) base.filt = update.filt;
    if (update.limit) base.limit = update.limit;
}

effective_controls control_table::resolve(std::string_view pool, std::string_view worker) const {
    static const controls none;
    const auto find = [](const auto& map, std::string_view key) -> const controls& {
        const auto it = map.find(key);
        return it == map.end() ? none : it->second;
    };
    const controls& w = find(workers, worker);
    const controls& p = find(pools, pool);
    effective_controls e;
    if (auto v = pick(w.enabled, p.enabled, global.enabled)) e.enabled = *v;
    if (auto v = pick(w.sample, p.sample, global.sample)) e.sample = *v;
    if (auto v = pick(w.filt, p.filt, global.filt)) e.filt = *v;
    if (auto v = pick(w.limit, p.limit, global.limit)) e.limit = *v;
    return e;
}

std::optional<std::string> parse_rate_limit(std::string_view text, rate_limit& out) {
    const auto slash = text.find('/');
    const auto num = [](std::string_view t, double& v) {
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        return !t.empty() && ec == std::errc{} && end == t.data() + t.size();
    };
    rate_limit r;
    if (!num(text.substr(0, slash), r.events_per_second) ||
        (slash != std::string_view::npos && !num(text.substr(slash + 1), r.burst)))
        return "must be N or N/BURST (events per second, burst), not \"" + std::string(text) + "\"";
    if (slash != std::string_view::npos && r.burst == 0)  // 0 would mean "the default"
        return "rate limit burst must be at least 1 (write N alone for the default), not 0";
    if (auto e = check(r)) return e;
    out = r;
    return std::nullopt;
}

}  // namespace telecap::control
