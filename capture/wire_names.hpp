#pragma once
// From a normalized event back to the wire name its worker emitted ("tool.execution.start"):
// the reverse of the normalizer's naming, over every catalog added (a reload adds its own, and
// its names win). Used where events leave in the wire's terms: `-o grpc` (event_parts) and
// `ctl tap` (patterns match wire names). Thread-safe: a reload adds while outputs read.

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capture/catalog.hpp"
#include "capture/event.hpp"

namespace telecap {

class wire_names {
public:
    struct entry {
        std::string wire;  // "tool.execution.start"
        // In the catalog last added that names it; npos for an unknown name kept under a prefix.
        std::size_t index = std::string_view::npos;
    };

    wire_names() = default;
    explicit wire_names(const catalog& c) { add(c); }
    void add(const catalog& c);

    // The wire name of `ev` into `out`: a catalog's event, or, under a catalog's `keep` policy,
    // an unknown name kept under its prefix (the name without the prefix, index npos). False
    // for what no worker sends: the pool's lifecycle (snakepit.pool.*), telecap's own events.
    bool find(const event& ev, entry& out) const;
    // find()'s wire name, else the event's dotted name.
    std::string of(const event& ev) const;

private:
    mutable std::mutex mu_;
    std::unordered_map<std::string, entry> by_name_;          // the dotted normalized name
    std::vector<std::vector<std::string>> unknown_prefixes_;  // of the catalogs that keep them
};

}  // namespace telecap
