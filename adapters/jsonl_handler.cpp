#include "adapters/jsonl_handler.hpp"

#include "capture/event_json.hpp"

namespace telecap {

std::shared_ptr<jsonl_handler> jsonl_handler::open(const std::string& path) {
    auto w = fd_writer::open_file(path);
    if (!w) throw std::system_error(w.error(), "cannot open output " + path);
    return std::make_shared<jsonl_handler>(std::move(*w));
}

void jsonl_handler::handle(const event& ev) {
    append_event_json(out_.buffer(), ev);
    if (auto ec = out_.commit()) throw std::system_error(ec, "jsonl output");
}

void jsonl_handler::flush() {
    if (auto ec = out_.flush()) throw std::system_error(ec, "jsonl output");
}

}  // namespace telecap
