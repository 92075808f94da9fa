#include "control/protocol.hpp"

#include "control/request.hpp"

namespace telecap::control {

std::string handle(std::string_view line, target& t) {
    request r;
    if (auto e = parse_request(line, r)) return error_reply(*e);
    int n = 0;
    std::optional<std::string> problem;
    switch (r.cmd) {
        case command::status: {
            const std::string s = status_json(t.status());  // an object with members: spliced in
            return "{\"ok\":true," + s.substr(1);
        }
        case command::stats: {
            auto m = t.metrics_json();
            if (!m) return error_reply("no registry to read");
            return ok_reply(",\"metrics\":" + *m);
        }
        case command::toggle:
        case command::sample:
        case command::filter:
        case command::rate_limit:
            problem = t.set_controls(r.where, r.update);
            if (!problem) n = t.workers_in(r.where);
            break;
        case command::reset:
            problem = t.reset_controls(r.where);
            if (!problem) n = t.workers_in(r.where);
            break;
        case command::start:
            problem = t.start_workers(r.where, &n);
            break;
        case command::stop:
            problem = t.stop_workers(r.where, &n);
            break;
        case command::restart:
            problem = t.restart_workers(r.where, &n);
            break;
        case command::reload: {
            auto reply = t.reload_config();
            if (!reply)
                return error_reply(
                    "telecap was started without --config: there is nothing to "
                    "reload");
            return *reply;
        }
        case command::reopen:
            if (auto p = t.reopen_files(&n)) return error_reply(*p);
            return ok_reply(",\"files\":" + std::to_string(n));
    }
    if (problem) return error_reply(*problem);
    return ok_reply(",\"workers\":" + std::to_string(n));
}

}  // namespace telecap::control
