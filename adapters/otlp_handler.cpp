#include "adapters/otlp_handler.hpp"
#include "core/clock.hpp"

#include <stdexcept>

#include "capture/event_json.hpp"
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

}  // namespace

otlp_logs_handler::otlp_logs_handler(exporting::otlp_settings settings,
                                     exporting::batch_sender_options tuning)
    : settings_(std::move(settings)),
      sender_([&] {
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
          // One record is one whole export; two may wait (one retrying, the next one). An
          // export that finds both slots taken is dropped: the later ones carry its totals.
          o.max_batch_records = 1;
          o.max_buffer_records = 2;
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
    std::size_t points = 0;
    std::string body =
        exporting::encode_metrics_request(families, settings_.resource, wall_clock_ns(), start_ns_, &points);
    sender_.push(std::move(body), points);
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

std::string otlp_metrics_handler::counters_json() const {
    return with_endpoint(settings_, sender_.counters().to_json("points"));
}

std::shared_ptr<handler> make_otlp_metrics_output(std::string_view url,
                                                  metrics::family_source source,
                                                  const exporting::env_lookup& env) {
    auto s = exporting::read_otlp_settings(exporting::otlp_signal::metrics, url, env);
    log_warnings(s);
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
    if (s.disabled) {
        logger()->info("otlp logs output disabled by OTEL_SDK_DISABLED");
        return std::make_shared<disabled_output>();
    }
    return std::make_shared<otlp_logs_handler>(std::move(s));
}

}  // namespace telecap
