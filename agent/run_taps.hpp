#pragma once
// `telecap ctl tap` in telecap run (docs/control.md, "Tap"): the tap hub (control/tap.hpp)
// wired to the bus (through the dispatcher, between two batches), to the wire names of the
// catalogs in use, to the log output's formatter, and to the registry (telecap_tap_*).

#include <memory>
#include <string>
#include <vector>

#include "capture/wire_names.hpp"
#include "control/tap.hpp"
#include "dispatch/dispatcher.hpp"
#include "metrics/registry.hpp"
#include "telecap/capture/catalog.hpp"

namespace telecap::agent {

// One line of the log output (-o log) for `ev`, with its newline: the same pattern
// ("%Y-%m-%dT%H:%M:%S.%e " in local time, then log_handler::format).
void append_log_line(std::string& out, const event& ev);
// One pass-through line in the log format, with its newline: the same time, then
// "[WORKER STREAM] " and the line, its control characters and backslashes escaped (\xNN, \\)
// so that it stays one line; "[...]" ends the head of a longer line.
void append_log_passthrough(std::string& out, const passthrough_line& line);

class run_taps {
public:
    // `bus` is driven by `events`; both, and `registry`, outlive this object.
    // `passthrough`: the run starts or stops carrying pass-through lines for the taps
    // (supervisor::tap_passthrough); optional.
    run_taps(handler_bus& bus, dispatcher& events, metrics::registry& registry,
             std::shared_ptr<wire_names> names, std::function<void(bool)> passthrough = {});
    ~run_taps();
    run_taps(const run_taps&) = delete;
    run_taps& operator=(const run_taps&) = delete;

    control::tap_hub& hub() noexcept { return *hub_; }

private:
    metrics::registry& registry_;
    std::unique_ptr<control::tap_hub> hub_;
    metrics::registry::collector_id series_ = 0;
};

}  // namespace telecap::agent
