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
    std::string_view text = r.text;
    if (r.truncated && text.size() > max_head) {
        std::size_t cut = max_head;
        // At a character boundary: a cut sequence would show as U+FFFD.
        while (cut > max_head - 3 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        text = text.substr(0, cut);
    }
    append_json_string(out, text);
    out += r.truncated ? ",\"truncated\":true}\n" : ",\"truncated\":false}\n";
    if (wait_) out_->wait_for_room(stop_);
    out_->append(out, 1);
}

}  // namespace telecap
