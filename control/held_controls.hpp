#pragma once
// Controls set on behalf of a holder that goes away: a `-o grpc?control=workers` stream
// (docs/grpc.md). While holders live, what they set is an ordinary override of their scope
// (the same table `telecap ctl` writes). For each scope and kind of control it keeps the value
// from before any holder set it and the holders' writes in order; the table shows the latest.
// When a holder ends, its writes go: if it had the latest word, the kind takes the previous
// live holder's value, or the one from before them all. Anyone else's change of a kind (`ctl`,
// a reset, a reload) supersedes the holders' writes of it: they hold it no more, and their end
// leaves it alone. Pure data; one thread (the loop thread).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "telecap/control/controls.hpp"

namespace telecap::control {

class held_controls {
public:
    // `holder` sets `update` (checked already) at `where`, whose overrides are `current` (the
    // caller merges `update` into them after).
    void note(std::uint64_t holder, const scope& where, const controls& current,
              const controls& update);
    // Someone else sets the kinds of `update` at `where`: no holder holds them any more.
    void overridden(const scope& where, const controls& update);
    // Every kind of `where` (ctl reset), or of every scope (a reload), is someone else's now.
    void reset(const scope& where);
    void clear() { held_.clear(); }
    // The holder ended: its writes go; `table` changes where it had the latest word. True
    // when the table changed.
    bool withdraw(std::uint64_t holder, control_table& table);
    // Scopes with at least one holder's write.
    std::size_t scopes() const noexcept { return held_.size(); }

private:
    template <typename T>
    struct kind {
        std::optional<T> base;  // the scope's override before the live holders' writes
        std::vector<std::pair<std::uint64_t, std::optional<T>>> writes;  // oldest first
    };
    struct entry {
        kind<bool> enabled;
        kind<sampling> sample;
        kind<filter> filt;
        kind<rate_limit> limit;
        bool empty() const noexcept {
            return enabled.writes.empty() && sample.writes.empty() && filt.writes.empty() &&
                   limit.writes.empty();
        }
    };
    using key = std::pair<scope_kind, std::string>;
    std::map<key, entry> held_;
};

// The overrides of `where` in `table`, made if missing (global, a pool's, a worker's).
controls& scope_controls(control_table& table, const scope& where);

}  // namespace telecap::control
