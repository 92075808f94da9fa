#pragma once
// Sends records (encoded events, or whole metric exports) to one HTTP endpoint in batches,
// from a thread of its own, with the OTLP retry rule (export/retry.hpp). Shared by the OTLP
// outputs and the HTTP output.
// - push() never waits for the network: it appends to a buffer bounded by records and bytes
//   under a short lock. When the buffer is full the new record is dropped (drop newest) and
//   counted as dropped{buffer_full}; what is buffered keeps its order.
// - The thread sends a batch when max_batch_records or max_batch_bytes are buffered, or when
//   the oldest buffered record has waited max_batch_delay. While it retries a batch, push()
//   keeps buffering (and dropping when full).
// - finish(deadline) stops taking records and sends what is buffered until `deadline`; what
//   is still buffered or retrying then is dropped{shutdown}. The destructor calls
//   finish(now + shutdown_grace) unless finish() ran.
// - The first failure is logged as a warning (telecap::logger()), later ones at most every
//   30 s with the number left unsaid; likewise rejected items in a partial success. A reply
//   with an error status has the start of its body in the message (at most 512 bytes,
//   control characters and non-ASCII bytes escaped), which is where receivers say why.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "telecap/export/export_counters.hpp"
#include "telecap/export/retry.hpp"
#include "telecap/net/http_post.hpp"
#include "telecap/net/url.hpp"

namespace telecap::exporting {

struct batch_sender_options {
    std::string name;  // for messages: "otlp logs", "http output"
    net::url target;   // where to POST (its path included)
    std::string ca_file;
    std::string client_cert;  // PEM files for mutual TLS ("": none)
    std::string client_key;
    std::string content_type = "application/json";
    bool gzip = false;  // bodies gzip-compressed, sent with "Content-Encoding: gzip"
    net::http_headers headers;
    std::chrono::milliseconds timeout{10000};  // per attempt
    std::size_t max_batch_records = 512;
    std::size_t max_batch_bytes = std::size_t{1} << 20;
    std::chrono::milliseconds max_batch_delay{1000};
    std::size_t max_buffer_records = 8192;
    std::size_t max_buffer_bytes = std::size_t{16} << 20;
    std::chrono::milliseconds shutdown_grace{5000};
    retry_policy retry;
    // The request body for a batch of records, in push order. Required.
    std::function<std::string(const std::vector<std::string>& records)> build_body;
    // Reads a 2xx response body: how many items the receiver rejected (0 when none), with its
    // message in `message`. Optional (null: nothing is ever rejected).
    std::function<std::uint64_t(const std::string& body, std::string& message)> count_rejected;
    // Uniform [0, 1) for the backoff's jitter. Optional (null: a generator seeded from
    // std::random_device).
    std::function<double()> unit_random;
};

class batch_sender {
public:
    // Starts the thread. Throws std::invalid_argument without build_body or with a zero bound.
    explicit batch_sender(batch_sender_options opts);
    ~batch_sender();
    batch_sender(const batch_sender&) = delete;
    batch_sender& operator=(const batch_sender&) = delete;

    // Queues a record that stands for `items` events or points. False when it was dropped
    // (buffer full, or finish() has begun). Any thread.
    bool push(std::string record, std::uint64_t items = 1);
    // Asks the thread to send what is buffered now rather than after max_batch_delay.
    void send_now();
    // See above. Idempotent; later calls return at once.
    void finish(std::chrono::steady_clock::time_point deadline);

    const export_counters& counters() const noexcept { return counters_; }
    // The last problem warned about (a failed or retried request, a drop), "" when none. Any
    // thread.
    std::string last_problem() const;
    const batch_sender_options& options() const noexcept { return opts_; }
    std::size_t buffered_records() const;

private:
    struct record {
        std::string data;
        std::uint64_t items = 0;
    };

    void run();
    void send(std::vector<record> batch);
    void drop(std::uint64_t items, drop_reason why, std::string_view what);
    void warn(std::string_view what);
    double random01();

    batch_sender_options opts_;
    net::http_client client_;
    export_counters counters_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<record> buffer_;  // guarded by mu_
    std::size_t buffer_bytes_ = 0;
    std::chrono::steady_clock::time_point oldest_at_{};
    bool send_now_ = false;
    bool stopping_ = false;
    bool finished_ = false;  // finish() has returned or is running
    std::chrono::steady_clock::time_point deadline_{};

    mutable std::mutex log_mu_;
    std::string last_problem_;  // guarded by log_mu_
    std::chrono::steady_clock::time_point last_warn_{};
    bool warned_ = false;
    std::uint64_t unsaid_ = 0;

    std::uint64_t rng_state_;
    std::thread thread_;
};

}  // namespace telecap::exporting
