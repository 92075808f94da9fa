#include "export/batch_sender.hpp"

#include <cctype>
#include <random>
#include <stdexcept>
#include <string_view>

#include "core/log.hpp"
#include "net/gzip.hpp"

namespace telecap::exporting {

namespace {
using clock = std::chrono::steady_clock;
constexpr std::chrono::seconds warn_every{30};

// The start of an error reply's body, quoted and escaped, for the log ("" for none).
std::string reply_excerpt(const net::http_result& res) {
    if (res.status >= 200 && res.status < 300) return {};
    std::string_view body = res.body;
    while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back())))
        body.remove_suffix(1);
    if (body.empty()) return {};
    constexpr std::size_t most = 512;
    std::string out = ": \"";
    for (const char c : body.substr(0, most)) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            static constexpr char digits[] = "0123456789abcdef";
            out += "\\x";
            out += digits[u >> 4];
            out += digits[u & 15];
        } else {
            out += c;
        }
    }
    out += body.size() > most ? "\"..." : "\"";
    return out;
}

}  // namespace

batch_sender::batch_sender(batch_sender_options opts)
    : opts_(std::move(opts)),
      client_(opts_.target, opts_.ca_file, opts_.client_cert, opts_.client_key),
      rng_state_(std::random_device{}()) {
    if (!opts_.build_body) throw std::invalid_argument(opts_.name + ": no body builder");
    if (opts_.gzip) opts_.headers.emplace_back("Content-Encoding", "gzip");
    if (opts_.max_batch_records == 0 || opts_.max_batch_bytes == 0 ||
        opts_.max_buffer_records == 0 || opts_.max_buffer_bytes == 0)
        throw std::invalid_argument(opts_.name + ": batch and buffer bounds must be positive");
    thread_ = std::thread([this] { run(); });
}

batch_sender::~batch_sender() { finish(clock::now() + opts_.shutdown_grace); }

bool batch_sender::push(std::string rec, std::uint64_t items) {
    std::unique_lock lock(mu_);
    if (stopping_) {
        lock.unlock();
        counters_.add_dropped(drop_reason::shutdown, items);
        return false;
    }
    if (buffer_.size() >= opts_.max_buffer_records ||
        buffer_bytes_ + rec.size() > opts_.max_buffer_bytes) {
        lock.unlock();
        counters_.add_dropped(drop_reason::buffer_full, items);
        return false;
    }
    const bool was_empty = buffer_.empty();
    if (was_empty) oldest_at_ = clock::now();
    buffer_bytes_ += rec.size();
    buffer_.push_back({std::move(rec), items});
    // Wake the thread only when it has something new to decide: a first record starts the
    // batch delay, a full batch goes at once. Not on every record: handle() stays cheap.
    const bool full =
        buffer_.size() == opts_.max_batch_records || buffer_bytes_ >= opts_.max_batch_bytes;
    lock.unlock();
    if (was_empty || full) cv_.notify_one();
    return true;
}

void batch_sender::send_now() {
    {
        std::lock_guard lock(mu_);
        send_now_ = true;
    }
    cv_.notify_one();
}

std::size_t batch_sender::buffered_records() const {
    std::lock_guard lock(mu_);
    return buffer_.size();
}

void batch_sender::finish(clock::time_point deadline) {
    {
        std::lock_guard lock(mu_);
        if (finished_) return;
        finished_ = true;
        stopping_ = true;
        deadline_ = deadline;
    }
    cv_.notify_one();
    // A request in flight past the deadline is cut short: shutdown must not hang on a
    // receiver that accepted the connection and went silent.
    std::mutex m;
    std::condition_variable done_cv;
    bool done = false;
    std::thread watchdog([&] {
        std::unique_lock lock(m);
        if (!done_cv.wait_until(lock, deadline, [&] { return done; })) client_.cancel();
    });
    thread_.join();
    {
        std::lock_guard lock(m);
        done = true;
    }
    done_cv.notify_one();
    watchdog.join();
}

void batch_sender::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        if (buffer_.empty()) {
            if (stopping_) return;
            cv_.wait(lock, [&] { return stopping_ || !buffer_.empty(); });
            continue;
        }
        if (stopping_ && clock::now() >= deadline_) {
            std::uint64_t items = 0;
            for (const auto& r : buffer_) items += r.items;
            buffer_.clear();
            buffer_bytes_ = 0;
            lock.unlock();
            drop(items, drop_reason::shutdown, "shutdown deadline passed with data queued");
            return;
        }
        const bool ready = stopping_ || send_now_ || buffer_.size() >= opts_.max_batch_records ||
                           buffer_bytes_ >= opts_.max_batch_bytes ||
                           clock::now() >= oldest_at_ + opts_.max_batch_delay;
        if (!ready) {
            cv_.wait_until(lock, oldest_at_ + opts_.max_batch_delay, [&] {
                return stopping_ || send_now_ || buffer_.size() >= opts_.max_batch_records ||
                       buffer_bytes_ >= opts_.max_batch_bytes;
            });
            continue;
        }
        send_now_ = false;
        std::vector<record> batch;
        std::size_t bytes = 0;
        while (!buffer_.empty() && batch.size() < opts_.max_batch_records &&
               (batch.empty() || bytes + buffer_.front().data.size() <= opts_.max_batch_bytes)) {
            bytes += buffer_.front().data.size();
            batch.push_back(std::move(buffer_.front()));
            buffer_.pop_front();
        }
        buffer_bytes_ -= bytes;
        if (!buffer_.empty()) oldest_at_ = clock::now();
        lock.unlock();
        send(std::move(batch));
        lock.lock();
    }
}

void batch_sender::send(std::vector<record> batch) {
    std::uint64_t items = 0;
    std::vector<std::string> records;
    records.reserve(batch.size());
    for (auto& r : batch) {
        items += r.items;
        records.push_back(std::move(r.data));
    }
    const std::string body =
        opts_.gzip ? net::gzip_compress(opts_.build_body(records)) : opts_.build_body(records);
    records.clear();
    const auto first = clock::now();
    unsigned retries = 0;
    for (;;) {
        auto timeout = opts_.timeout;
        {
            std::lock_guard lock(mu_);
            if (stopping_) {
                const auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - clock::now());
                if (left <= std::chrono::milliseconds(0)) {
                    counters_.add_failed(failure_reason::shutdown);
                    drop(items, drop_reason::shutdown, "shutdown deadline passed before sending");
                    return;
                }
                timeout = std::min(timeout, left);
            }
        }
        counters_.requests.fetch_add(1);
        net::http_result res =
            client_.post(opts_.target.path, body, opts_.content_type, opts_.headers, timeout);
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - first);
        const decision d = decide(opts_.retry, res, retries, elapsed, random01(),
                                  std::chrono::system_clock::now());
        const std::string what =
            res.transport_failed() ? std::string(net::to_string(res.error)) + ": " + res.error_text
                                   : "HTTP " + std::to_string(res.status) + reply_excerpt(res);
        if (d.what == verdict::ok) {
            counters_.ok.fetch_add(1);
            std::uint64_t rejected = 0;
            std::string message;
            if (opts_.count_rejected)
                rejected = std::min(opts_.count_rejected(res.body, message), items);
            counters_.items_sent.fetch_add(items - rejected);
            if (rejected > 0)
                drop(rejected, drop_reason::rejected,
                     "receiver rejected " + std::to_string(rejected) + " of " +
                         std::to_string(items) + (message.empty() ? "" : ": " + message));
            return;
        }
        if (d.what == verdict::drop) {
            counters_.add_failed(d.reason);
            drop(items, drop_reason_for(d.reason),
                 what + (classify(res.status, res.error).retryable ? ", retries exhausted"
                                                                   : ", not retryable"));
            return;
        }
        // Retry after d.delay, unless shutdown's deadline comes first.
        const auto retry_at = clock::now() + d.delay;
        std::unique_lock lock(mu_);
        if (cv_.wait_until(lock, retry_at, [&] { return stopping_ && deadline_ < retry_at; })) {
            lock.unlock();
            counters_.add_failed(failure_reason::shutdown);
            drop(items, drop_reason::shutdown, what + ", shutdown before the retry");
            return;
        }
        lock.unlock();
        counters_.retried.fetch_add(1);
        ++retries;
        warn(what + ", retrying in " + std::to_string(d.delay.count()) + " ms");
    }
}

void batch_sender::drop(std::uint64_t items, drop_reason why, std::string_view what) {
    if (items == 0) return;
    counters_.add_dropped(why, items);
    warn(std::string(what) + ": dropped " + std::to_string(items));
}

void batch_sender::warn(std::string_view what) {
    std::lock_guard lock(log_mu_);
    last_problem_ = what;
    const auto now = clock::now();
    if (warned_ && now - last_warn_ < warn_every) {
        ++unsaid_;
        return;
    }
    if (unsaid_ > 0)
        logger()->warn("{} to {}: {} ({} more problems since the last message)", opts_.name,
                       opts_.target.str(), what, unsaid_);
    else
        logger()->warn("{} to {}: {}", opts_.name, opts_.target.str(), what);
    warned_ = true;
    last_warn_ = now;
    unsaid_ = 0;
}

std::string batch_sender::last_problem() const {
    std::lock_guard lock(log_mu_);
    return last_problem_;
}

double batch_sender::random01() {
    if (opts_.unit_random) return opts_.unit_random();
    // splitmix64: the sender thread is the only caller, a full mt19937 is not worth its state.
    std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace telecap::exporting
