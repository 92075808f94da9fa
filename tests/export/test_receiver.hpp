#pragma once
// A real HTTP receiver for the exporter tests: an httplib::Server on 127.0.0.1 with an
// ephemeral port, on its own thread. It records every request (arrival time, path, headers,
// body, Content-Encoding, User-Agent) and answers with what `respond(n)` returns for the n-th
// request (0-based): a status, optional Retry-After and body; a respond() may block (a slow
// receiver) on a gate.

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace telecap::test {

struct received {
    std::chrono::steady_clock::time_point at;
    std::string path;
    std::string content_type;
    std::string authorization;
    std::string custom_header;  // X-Test
    std::string body;           // as received; httplib's server has already undone a gzip encoding
    std::string content_encoding;
    std::string user_agent;
    int answered = 0;
};

struct reply {
    int status = 200;
    std::string retry_after;
    std::string body;
};

class test_receiver {
public:
    explicit test_receiver(std::function<reply(std::size_t)> respond = {})
        : respond_(std::move(respond)) {
        server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
            std::size_t n;
            {
                std::lock_guard lock(mu_);
                n = requests_.size();
                requests_.push_back({std::chrono::steady_clock::now(), req.path,
                                     req.get_header_value("Content-Type"),
                                     req.get_header_value("Authorization"),
                                     req.get_header_value("X-Test"), req.body,
                                     req.get_header_value("Content-Encoding"),
                                     req.get_header_value("User-Agent"), 0});
            }
            cv_.notify_all();
            const reply r = respond_ ? respond_(n) : reply{};
            res.status = r.status;
            if (!r.retry_after.empty()) res.set_header("Retry-After", r.retry_after);
            res.set_content(r.body, "application/json");
            {
                std::lock_guard lock(mu_);
                requests_[n].answered = r.status;
            }
            cv_.notify_all();
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        // The socket listens already (bind_to_any_port); this only spares stop() a race with
        // a loop that has not started yet.
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!server_.is_running() && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~test_receiver() {
        server_.stop();
        thread_.join();
    }

    int port() const { return port_; }
    std::string url(const std::string& path = "/ingest") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::vector<received> requests() const {
        std::lock_guard lock(mu_);
        return requests_;
    }
    // Waits until pred(requests) holds or `timeout` passes.
    bool wait_for(const std::function<bool(const std::vector<received>&)>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return pred(requests_); });
    }

private:
    std::function<reply(std::size_t)> respond_;
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<received> requests_;
};

}  // namespace telecap::test
