#pragma once
// Outputs to an OpenTelemetry receiver over OTLP/HTTP with JSON bodies (export/otlp_json.hpp),
// settings from the OTEL_* variables (export/otlp_env.hpp), sending, retries, bounded buffers
// and counters from export/batch_sender.hpp.
// - otlp_metrics_handler: every export_interval a thread takes the families from a
//   family_source and queues one ExportMetricsServiceRequest (cumulative, so a lost export
//   loses no totals: the next one carries them). finish(deadline) (or the destructor) makes a
//   last export and sends it before `deadline`. It ignores events (handle() does nothing).
// - otlp_logs_handler: each event becomes one logRecord, queued without waiting for the
//   network; batches of up to 512 records (or what came in 1 s) go in one request. When the
//   buffer is full new events are dropped and counted (events_dropped{buffer_full}).
// Neither handle() nor flush() waits for the network: a receiver that is down or slow never
// slows capture or the other outputs.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "telecap/capture/handler.hpp"
#include "telecap/export/batch_sender.hpp"
#include "telecap/export/otlp_env.hpp"
#include "telecap/metrics/family.hpp"

namespace telecap {

class otlp_logs_handler final : public handler {
public:
    // `tuning`: batch and buffer bounds, retry policy, shutdown grace; its target, headers,
    // timeout, content type and body functions are replaced by the settings'.
    explicit otlp_logs_handler(exporting::otlp_settings settings,
                               exporting::batch_sender_options tuning = {});
    ~otlp_logs_handler() override;

    void handle(const event& ev) override;
    // Batches leave on size or age (1 s), not on every dry spell of the dispatcher.
    void flush() override {}
    // {"endpoint":"...","requests":N,"ok":N,"retried":N,"failed":{...},
    //  "events_sent":N,"events_dropped":{"buffer_full":N,...}}
    std::string counters_json() const override;
    std::uint64_t events_dropped() const override;
    std::uint64_t errors() const override { return sender_.counters().errors(); }
    std::string last_error() const override { return sender_.last_problem(); }

    // Sends what is queued until `deadline`, then drops the rest (counted). Idempotent.
    void finish(std::chrono::steady_clock::time_point deadline) override;
    const exporting::export_counters& counters() const noexcept { return sender_.counters(); }
    const exporting::otlp_settings& settings() const noexcept { return settings_; }

private:
    exporting::otlp_settings settings_;
    exporting::batch_sender sender_;
    std::string record_;  // handle()'s scratch
};

// Points per OTLP metrics request: an export of more series goes out in several requests.
inline constexpr std::size_t otlp_points_per_request = 2000;

class otlp_metrics_handler final : public handler {
public:
    // Throws std::invalid_argument when `source` is empty.
    otlp_metrics_handler(exporting::otlp_settings settings, metrics::family_source source,
                         exporting::batch_sender_options tuning = {});
    ~otlp_metrics_handler() override;

    void handle(const event&) override {}
    bool takes_events() const override { return false; }
    // {"endpoint":"...","requests":N,...,"points_sent":N,"points_dropped":{...}}
    std::string counters_json() const override;
    // Points dropped (not sent, or rejected): data lost, exit status 3.
    std::uint64_t items_lost() const override;
    std::uint64_t errors() const override { return sender_.counters().errors(); }
    std::string last_error() const override { return sender_.last_problem(); }

    // Takes the families now and queues an export (tests, and a final export).
    void export_now();
    // Stops the interval thread, makes a last export and sends it until `deadline`. Idempotent.
    void finish(std::chrono::steady_clock::time_point deadline) override;
    const exporting::export_counters& counters() const noexcept { return sender_.counters(); }
    const exporting::otlp_settings& settings() const noexcept { return settings_; }

private:
    void run();

    exporting::otlp_settings settings_;
    metrics::family_source source_;
    std::int64_t start_ns_;
    exporting::batch_sender sender_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;  // guarded by mu_
    bool finished_ = false;
    std::thread thread_;
};

// Factories for `-o otlp[:URL]`: `url` is what follows "otlp:" ("" = from the environment).
// They read the OTEL_* variables through `env`, log their warnings (telecap::logger()), and
// return a handler that does nothing when OTEL_SDK_DISABLED=true. Throw std::runtime_error
// with a message fit for the user for a bad URL or setting, std::invalid_argument for an
// empty source.
std::shared_ptr<handler> make_otlp_metrics_output(
    std::string_view url, metrics::family_source source,
    const exporting::env_lookup& env = exporting::process_env());
std::shared_ptr<handler> make_otlp_logs_output(
    std::string_view url, const exporting::env_lookup& env = exporting::process_env());

}  // namespace telecap
