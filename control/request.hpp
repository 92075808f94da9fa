#pragma once
// The control protocol's requests (docs/control.md): one JSON object per line, such as
// {"cmd":"sample","rate":0.1,"patterns":["python.call.*"],"pool":"p"}. Parsing is strict (an
// unknown command or field, a wrong type, both pool and worker: an error naming it) and
// checks the controls as the config does, so a refused request changes nothing. Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "telecap/control/controls.hpp"

namespace telecap::control {

enum class command {
    status,
    stats,
    toggle,
    sample,
    filter,
    rate_limit,
    reset,
    start,
    stop,
    restart,
    reload,
    reopen
};
std::string_view to_string(command c) noexcept;

struct request {
    command cmd = command::status;
    scope where;      // "pool" or "worker"; neither: every worker
    controls update;  // toggle, sample, filter, rate-limit: the one kind they set
};

// The request on one line (without its newline), or the problem.
std::optional<std::string> parse_request(std::string_view line, request& out);

// Replies, each one JSON object without the newline.
std::string error_reply(std::string_view why);
// {"ok":true} plus `members` (each `,"key":value`).
std::string ok_reply(std::string_view members = {});

// {"enabled":..,"sampling_rate":..,"sampling_patterns":[..],"allow":[..],"deny":[..],
//  "rate_limit":{"events_per_second":..,"burst":..}}
void append_controls_json(std::string& out, const effective_controls& c);
// One line of a worker's control pipe (docs/control.md, "The control pipe"), without the
// newline: {"seq":N,"enabled":..,"sampling_rate":..,"sampling_patterns":[..],"allow":[..],
// "deny":[..]}. The rate limit stays in telecap and is not sent.
void append_emitter_controls_json(std::string& out, const effective_controls& c, std::uint64_t seq);

}  // namespace telecap::control
