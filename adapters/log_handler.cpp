#include "adapters/log_handler.hpp"

#include <spdlog/spdlog.h>

#include "capture/event_json.hpp"

namespace telecap {

std::string log_handler::format(const event& ev) {
    std::string out = ev.dotted_name();
    for (const auto& [k, v] : ev.measurements) {
        out += ' ';
        out += k;
        out += '=';
        if (const auto* i = std::get_if<std::int64_t>(&v))
            out += std::to_string(*i);
        else if (const auto* d = std::get_if<double>(&v))
            append_json_double(out, *d);
        else
            append_json_string(out, std::get<std::string>(v));
    }
    out += " |";
    for (const auto& [k, v] : ev.metadata) {
        if (k == "timestamp_ns" || k == "node") continue;  // noise in a debug view
        out += ' ';
        out += k;
        out += '=';
        if (const auto* s = std::get_if<std::string>(&v))
            append_json_string(out, *s);
        else if (const auto* i = std::get_if<std::int64_t>(&v))
            out += std::to_string(*i);
        else
            out += "null";
    }
    return out;
}

void log_handler::handle(const event& ev) { logger_->info("{}", format(ev)); }

void log_handler::flush() { logger_->flush(); }

}  // namespace telecap
