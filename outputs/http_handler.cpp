#include "outputs/http_handler.hpp"

#include <stdexcept>

#include "capture/event_json.hpp"

namespace telecap {

http_handler::http_handler(net::url target, std::string bearer_token,
                           std::chrono::milliseconds timeout,
                           exporting::batch_sender_options tuning)
    : target_(std::move(target)), sender_([&] {
          auto o = std::move(tuning);
          o.name = "http output";
          o.target = target_;
          o.content_type = "application/x-ndjson";
          o.headers.clear();
          if (!bearer_token.empty())
              o.headers.emplace_back("Authorization", "Bearer " + bearer_token);
          o.timeout = timeout;
          o.build_body = [](const std::vector<std::string>& lines) {
              std::size_t n = 0;
              for (const auto& l : lines) n += l.size();
              std::string body;
              body.reserve(n);
              for (const auto& l : lines) body += l;
              return body;
          };
          return o;
      }()) {}

http_handler::~http_handler() = default;  // the sender's destructor finishes

void http_handler::handle(const event& ev) {
    // Another output's line when there is one; not published: the sender's thread owns it next.
    std::string line(shared_event_json::find(ev));
    if (line.empty()) append_event_json(line, ev);  // ends with "\n"
    sender_.push(std::move(line));
}

std::string http_handler::counters_json() const {
    std::string out = "{\"endpoint\":";
    append_json_string(out, target_.str());
    out += ',';
    out.append(sender_.counters().to_json("events"), 1);
    return out;
}

std::uint64_t http_handler::events_dropped() const { return sender_.counters().dropped_total(); }

void http_handler::finish(std::chrono::steady_clock::time_point deadline) {
    sender_.finish(deadline);
}

std::shared_ptr<handler> make_http_output(std::string_view url, const exporting::env_lookup& env) {
    std::string error;
    auto target = net::parse_url(url, &error);
    if (!target) throw std::runtime_error("http output: " + error);
    if (target->path.empty()) target->path = "/";
    std::string token;
    if (auto t = env("TELECAP_HTTP_TOKEN")) token = *t;
    // A newline (a secret file read with its last line's end) would inject into the request.
    if (auto why = net::header_problem("Authorization", "Bearer " + token); !why.empty())
        throw std::runtime_error(
            "TELECAP_HTTP_TOKEN: holds a control character (CR, LF, NUL, ...)");
    return std::make_shared<http_handler>(std::move(*target), std::move(token));
}

}  // namespace telecap
