#pragma once
// Output: events POSTed to an HTTP(S) endpoint as JSON lines (`-o http:URL`), in batches:
// Content-Type application/x-ndjson, one event per line exactly as the jsonl output writes it
// (capture/event_json.hpp), `Authorization: Bearer <token>` when a token is given
// (TELECAP_HTTP_TOKEN for the factory). Each request waits at most `timeout` (default
// 1500 ms). Batching, the bounded buffer, retries (429/502/503/504 and transport errors,
// never other statuses) and counters are export/batch_sender.hpp's: handle() never waits for
// the network, a full buffer drops new events and counts them.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "telecap/capture/handler.hpp"
#include "telecap/export/batch_sender.hpp"
#include "telecap/export/otlp_env.hpp"
#include "telecap/net/url.hpp"

namespace telecap {

class http_handler final : public handler {
public:
    static constexpr std::chrono::milliseconds default_timeout{1500};

    // `timeout`: per request. `tuning`: batch and buffer bounds, retry policy, shutdown grace;
    // its target, headers, timeout, content type and body function are set here.
    http_handler(net::url target, std::string bearer_token,
                 std::chrono::milliseconds timeout = default_timeout,
                 exporting::batch_sender_options tuning = {});
    ~http_handler() override;

    void handle(const event& ev) override;
    void flush() override {}
    // {"endpoint":"...","requests":N,"ok":N,"retried":N,"failed":{...},
    //  "events_sent":N,"events_dropped":{...}}
    std::string counters_json() const override;
    std::uint64_t events_dropped() const override;
    std::uint64_t errors() const override { return sender_.counters().errors(); }
    std::string last_error() const override { return sender_.last_problem(); }

    void finish(std::chrono::steady_clock::time_point deadline) override;
    const exporting::export_counters& counters() const noexcept { return sender_.counters(); }

private:
    net::url target_;
    exporting::batch_sender sender_;
};

// `-o http:URL`: `url` is what follows "http:" (e.g. "https://ingest.example/v1/events").
// The token comes from TELECAP_HTTP_TOKEN through `env`. Throws std::runtime_error with a
// message fit for the user for a bad URL.
std::shared_ptr<handler> make_http_output(
    std::string_view url, const exporting::env_lookup& env = exporting::process_env());

}  // namespace telecap
