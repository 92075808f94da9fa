#include "io/rejects_writer.hpp"

#include "capture/event_json.hpp"

namespace telecap {

void rejects_writer::write(const reject_info& r, std::string_view source) {
    std::string& out = line_;
    out.assign("{\"source\":");
    append_json_string(out, source);
    out += ",\"line\":" + std::to_string(r.line_no);
    out += ",\"reason\":\"";
    out += to_string(r.reason);
    out += "\",\"detail\":";
    append_json_string(out, r.detail);
    out += ",\"offset\":" + std::to_string(r.offset);
    out += ",\"text\":";
    append_json_string(out, r.text);
    out += r.truncated ? ",\"truncated\":true}\n" : ",\"truncated\":false}\n";
    if (wait_) out_->wait_for_room(stop_);
    out_->append(out, 1);
}

}  // namespace telecap
