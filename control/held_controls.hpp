#pragma once
// Controls set on behalf of a holder that goes away: a `-o grpc?control=workers` stream
// (docs/grpc.md). While the holder lives, what it sets is an ordinary override of its scope
// (the same table `telecap ctl` writes); when it ends, each kind it set goes back to what the
// scope had before the holder first changed it, unless someone else (`ctl`, a reload, another
// holder) has changed that kind since: the later word wins and is left alone. Pure data.

#include <cstdint>
#include <map>
#include <optional>

#include "telecap/control/controls.hpp"

namespace telecap::control {

class held_controls {
public:
    // `holder` set `update` at `where`, whose overrides were `before` (checked already). A
    // holder has one scope: a second scope for the same holder starts a new record of it.
    void note(std::uint64_t holder, const scope& where, const controls& before,
              const controls& update);
    // The holder ended: restores in `table` what it set and nobody changed since. True when
    // the table changed.
    bool withdraw(std::uint64_t holder, control_table& table);
    std::size_t holders() const noexcept { return held_.size(); }

private:
    template <typename T>
    struct kind {
        bool set = false;         // the holder set this kind
        std::optional<T> before;  // the scope's override before the holder's first change
        std::optional<T> now;     // what the holder set last
    };
    struct record {
        scope where;
        kind<bool> enabled;
        kind<sampling> sample;
        kind<filter> filt;
        kind<rate_limit> limit;
    };
    std::map<std::uint64_t, record> held_;
};

// The overrides of `where` in `table`, made if missing (global, a pool's, a worker's).
controls& scope_controls(control_table& table, const scope& where);

}  // namespace telecap::control
