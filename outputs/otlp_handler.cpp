#include "outputs/otlp_handler.hpp"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <stdexcept>

#include "capture/event_json.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "export/otlp_json.hpp"

namespace telecap {

namespace {

exporting::batch_sender_options sender_options(exporting::batch_sender_options o,
                                               const exporting::otlp_settings& s,
                                               std::string name) {
    o.name = std::move(name);
    o.target = s.endpoint;
    o.ca_file = s.ca_file;
    o.client_cert = s.client_cert;
    o.client_key = s.client_key;
    o.gzip = s.gzip;
    o.content_type = "application/json";
    o.headers = s.headers;
    o.timeout = s.timeout;
    return o;
}

std::string with_endpoint(const exporting::otlp_settings& s, std::string counters) {
    std::string out = "{\"endpoint\":";
    append_json_string(out, s.endpoint.str());
    out += ',';
    out.append(counters, 1);  // counters is an object: splice its members in
    return out;
}

// OTEL_SDK_DISABLED=true: the output exists (the command line stays valid) and does nothing.
class disabled_output final : public handler {
public:
    void handle(const event&) override {}
    std::string counters_json() const override { return "{\"disabled\":true}"; }
};

void log_warnings(const exporting::otlp_settings& s) {
    for (const auto& w : s.warnings) logger()->warn("otlp output: {}", w);
}

// One line per process, whatever the number of OTLP outputs.
void warn_unhonoured(const exporting::env_lookup& env) {
    static std::once_flag once;
    std::call_once(once, [&] {
        std::vector<std::string> set;
        for (auto& n : exporting::unhonoured_otel_variables(exporting::environment_names()))
            if (auto v = env(n); v && !v->empty()) set.push_back(std::move(n));
        if (set.empty()) return;
        std::string list;
        for (const auto& n : set) list += (list.empty() ? "" : ", ") + n;
        logger()->warn("otlp output: set but not honoured by telecap (ignored): {}", list);
    });
}

}  // namespace

otlp_logs_handler::otlp_logs_handler(exporting::otlp_settings settings,
                                     exporting::batch_sender_options tuning)
    : settings_(std::move(settings)), sender_([&] {
          auto o = sender_options(std::move(tuning), settings_, "otlp logs");
          o.build_body = [res = settings_.resource](const std::vector<std::string>& records) {
              return exporting::encode_logs_request(records, res);
          };
          o.count_rejected = [](const std::string& body, std::string& message) {
              return exporting::read_partial_success(body, "rejectedLogRecords", message);
          };
          return o;
      }()) {}

otlp_logs_handler::~otlp_logs_handler() = default;  // the sender's destructor finishes

void otlp_logs_handler::handle(const event& ev) {
    record_.clear();
    exporting::append_log_record(record_, ev, wall_clock_ns());
    sender_.push(std::string(record_));
}

std::string otlp_logs_handler::counters_json() const {
    return with_endpoint(settings_, sender_.counters().to_json("events"));
}

std::uint64_t otlp_logs_handler::events_dropped() const {
    return sender_.counters().dropped_total();
}

void otlp_logs_handler::finish(std::chrono::steady_clock::time_point deadline) {
    sender_.finish(deadline);
}

otlp_metrics_handler::otlp_metrics_handler(exporting::otlp_settings settings,
                                           metrics::family_source source,
                                           exporting::batch_sender_options tuning)
    : settings_(std::move(settings)),
      source_(std::move(source)),
      start_ns_(wall_clock_ns()),
      sender_([&] {
          if (!source_) throw std::invalid_argument("otlp metrics output: no family source");
          auto o = sender_options(std::move(tuning), settings_, "otlp metrics");
          // One record is one request of an export (at most otlp_points_per_request points).
          // A few exports' worth may wait (one retrying, the next ones); what finds the
          // buffer full is dropped: later exports carry its totals (cumulative).
          o.max_batch_records = 1;
          o.max_buffer_records = 64;
          // OTEL_METRIC_EXPORT_TIMEOUT: an export's retries end by then (each attempt is
          // bounded by it too: settings.timeout).
          o.retry.max_elapsed = std::min(o.retry.max_elapsed, settings_.export_timeout);
          o.build_body = [](const std::vector<std::string>& records) { return records.front(); };
          o.count_rejected = [](const std::string& body, std::string& message) {
              return exporting::read_partial_success(body, "rejectedDataPoints", message);
          };
          return o;
      }()) {
    thread_ = std::thread([this] { run(); });
}

otlp_metrics_handler::~otlp_metrics_handler() {
    finish(std::chrono::steady_clock::now() + sender_.options().shutdown_grace);
}

void otlp_metrics_handler::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        if (cv_.wait_for(lock, settings_.export_interval, [&] { return stop_; })) return;
        lock.unlock();
        export_now();
        lock.lock();
    }
}

void otlp_metrics_handler::export_now() {
    std::vector<metrics::family> families;
    try {
        families = source_();
    } catch (const std::exception& e) {
        logger()->warn("otlp metrics: reading the metrics failed: {}", e.what());
        return;
    }
    // An export goes out in requests of at most otlp_points_per_request points: one body of
    // every series could pass the sender's byte bound and be dropped whole at every interval.
    const auto now = wall_clock_ns();
    std::vector<metrics::family> chunk;
    std::size_t in_chunk = 0;
    bool sent_any = false;
    const auto send = [&] {
        std::size_t points = 0;
        std::string body =
            exporting::encode_metrics_request(chunk, settings_.resource, now, start_ns_, &points);
        sender_.push(std::move(body), points);
        chunk.clear();
        in_chunk = 0;
        sent_any = true;
    };
    for (auto& f : families) {
        std::size_t from = 0;
        do {  // a family without points still goes once, as its metric
            const std::size_t take =
                std::min(f.points.size() - from, otlp_points_per_request - in_chunk);
            metrics::family part;
            part.name = f.name;
            part.description = f.description;
            part.unit = f.unit;
            part.type = f.type;
            part.bounds = f.bounds;
            part.points.assign(
                std::make_move_iterator(f.points.begin() + static_cast<std::ptrdiff_t>(from)),
                std::make_move_iterator(f.points.begin() +
                                        static_cast<std::ptrdiff_t>(from + take)));
            chunk.push_back(std::move(part));
            in_chunk += take;
            from += take;
            if (in_chunk >= otlp_points_per_request) send();
        } while (from < f.points.size());
    }
    if (!chunk.empty() || !sent_any) send();  // nothing to say is said too: the receiver sees us
}

void otlp_metrics_handler::finish(std::chrono::steady_clock::time_point deadline) {
    {
        std::lock_guard lock(mu_);
        if (finished_) return;
        finished_ = true;
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    export_now();  // the last values: what changed since the last interval
    sender_.finish(deadline);
}

std::uint64_t otlp_metrics_handler::items_lost() const {
    return sender_.counters().dropped_total();
}

std::string otlp_metrics_handler::counters_json() const {
    return with_endpoint(settings_, sender_.counters().to_json("points"));
}

std::shared_ptr<handler> make_otlp_metrics_output(std::string_view url,
                                                  metrics::family_source source,
                                                  const exporting::env_lookup& env) {
    auto s = exporting::read_otlp_settings(exporting::otlp_signal::metrics, url, env);
    log_warnings(s);
    warn_unhonoured(env);
    if (s.disabled) {
        logger()->info("otlp metrics output disabled by OTEL_SDK_DISABLED");
        return std::make_shared<disabled_output>();
    }
    return std::make_shared<otlp_metrics_handler>(std::move(s), std::move(source));
}

std::shared_ptr<handler> make_otlp_logs_output(std::string_view url,
                                               const exporting::env_lookup& env) {
    auto s = exporting::read_otlp_settings(exporting::otlp_signal::logs, url, env);
    log_warnings(s);
    warn_unhonoured(env);
    if (s.disabled) {
        logger()->info("otlp logs output disabled by OTEL_SDK_DISABLED");
        return std::make_shared<disabled_output>();
    }
    return std::make_shared<otlp_logs_handler>(std::move(s));
}

}  // namespace telecap
