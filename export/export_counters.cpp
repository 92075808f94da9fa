#include "export/export_counters.hpp"

namespace telecap::exporting {

std::string_view to_string(drop_reason r) noexcept {
    switch (r) {
        case drop_reason::buffer_full:
            return "buffer_full";
        case drop_reason::http_4xx:
            return "http_4xx";
        case drop_reason::http_5xx:
            return "http_5xx";
        case drop_reason::transport:
            return "transport";
        case drop_reason::timeout:
            return "timeout";
        case drop_reason::shutdown:
            return "shutdown";
        case drop_reason::rejected:
            return "rejected";
    }
    return "transport";
}

drop_reason drop_reason_for(failure_reason r) noexcept {
    switch (r) {
        case failure_reason::http_4xx:
            return drop_reason::http_4xx;
        case failure_reason::http_5xx:
            return drop_reason::http_5xx;
        case failure_reason::transport:
            return drop_reason::transport;
        case failure_reason::timeout:
            return drop_reason::timeout;
        case failure_reason::shutdown:
            return drop_reason::shutdown;
    }
    return drop_reason::transport;
}

std::uint64_t export_counters::dropped_total() const noexcept {
    std::uint64_t n = 0;
    for (const auto& d : dropped) n += d.load();
    return n;
}

std::string export_counters::to_json(std::string_view items) const {
    std::string out = "{\"requests\":" + std::to_string(requests.load()) +
                      ",\"ok\":" + std::to_string(ok.load()) +
                      ",\"retried\":" + std::to_string(retried.load()) + ",\"failed\":{";
    for (std::size_t i = 0; i < failure_reason_count; ++i) {
        if (i) out += ',';
        out += '"';
        out += to_string(static_cast<failure_reason>(i));
        out += "\":" + std::to_string(failed[i].load());
    }
    out += "},\"";
    out += items;
    out += "_sent\":" + std::to_string(items_sent.load()) + ",\"";
    out += items;
    out += "_dropped\":{";
    for (std::size_t i = 0; i < drop_reason_count; ++i) {
        if (i) out += ',';
        out += '"';
        out += to_string(static_cast<drop_reason>(i));
        out += "\":" + std::to_string(dropped[i].load());
    }
    out += "}}";
    return out;
}

}  // namespace telecap::exporting
