#pragma once
// Helpers shared by the unit tests: bounded waits on state (never sleeps as handshakes),
// pipes, temporary directories, file contents, and a logger that keeps telecap's messages.

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "capture/handler.hpp"
#include "core/log.hpp"
#include "core/unique_fd.hpp"

namespace telecap::test {

// A write to a pipe nobody reads must fail with EPIPE, not kill the test binary.
inline const bool sigpipe_ignored = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
}();

using namespace std::chrono_literals;

// The upper bound of every wait in the unit tests: far above what a loaded machine needs, so
// reaching it means the behaviour is broken, not slow.
inline constexpr std::chrono::seconds patience{10};

inline std::chrono::steady_clock::time_point deadline_in(
    std::chrono::steady_clock::duration d = patience) {
    return std::chrono::steady_clock::now() + d;
}

// Waits until pred() holds (re-checked every millisecond) or `timeout` passes; returns pred().
// For state a test can only read (atomic counters of a thread it does not own).
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::steady_clock::duration timeout = patience) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end) return pred();
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// A gate threads wait at until the test opens it; counts who arrived.
class gate {
public:
    void wait() {
        std::unique_lock lock(mu_);
        ++arrived_;
        cv_.notify_all();
        cv_.wait(lock, [&] { return open_; });
    }
    void open() {
        std::lock_guard lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    // True once n waits have begun, false after `timeout`.
    bool wait_arrived(int n, std::chrono::steady_clock::duration timeout = patience) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return arrived_ >= n; });
    }
    int arrived() {
        std::lock_guard lock(mu_);
        return arrived_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int arrived_ = 0;
    bool open_ = false;
};

struct pipe_fds {
    unique_fd read, write;
};

inline pipe_fds make_pipe(int flags = O_CLOEXEC) {
    int fds[2] = {-1, -1};
    if (::pipe2(fds, flags) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

// Writes into a non-blocking fd until it is full (a pipe nobody reads). Returns the bytes.
inline std::size_t fill(int fd, char c = 'P') {
    const int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    const std::string chunk(4096, c);
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::write(fd, chunk.data(), chunk.size());
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::fcntl(fd, F_SETFL, fl);
    return total;
}

// Everything readable from fd now, without blocking.
inline std::string read_available(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::fcntl(fd, F_SETFL, fl);
    return out;
}

// Reads fd until end of file (all write ends closed). Blocking: run it where EOF will come.
inline std::string read_to_eof(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return out;
    }
}

inline std::string file_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A fresh directory under TMPDIR (or /tmp), removed with its contents at the end.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/telecap-unit-XXXXXX";
        if (!::mkdtemp(tmpl.data()))
            throw std::system_error(errno, std::system_category(), "mkdtemp");
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// Puts back the logger that was current at construction.
class logger_guard {
public:
    logger_guard() : previous_(telecap::logger()) {}
    ~logger_guard() { telecap::set_logger(previous_); }
    logger_guard(const logger_guard&) = delete;
    logger_guard& operator=(const logger_guard&) = delete;

private:
    std::shared_ptr<spdlog::logger> previous_;
};

// An spdlog sink that keeps the messages in memory, readable from any thread.
class memory_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::string text() {
        std::lock_guard lock(mutex_);
        return text_;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        text_.append(formatted.data(), formatted.size());
    }
    void flush_() override {}

private:
    std::string text_;
};

// Installs a logger that keeps telecap's messages (set_logger) and puts the previous one back.
class log_capture {
public:
    log_capture() : previous_(telecap::logger()), sink_(std::make_shared<memory_sink>()) {
        sink_->set_pattern("%l: %v");
        auto l = std::make_shared<spdlog::logger>("unit_test", sink_);
        l->set_level(spdlog::level::trace);
        telecap::set_logger(std::move(l));
    }
    ~log_capture() { telecap::set_logger(previous_); }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;

    std::string text() { return sink_->text(); }
    bool contains(const std::string& s) { return text().find(s) != std::string::npos; }

private:
    std::shared_ptr<spdlog::logger> previous_;
    std::shared_ptr<memory_sink> sink_;
};

// An output that counts what it is given and flushed, and says it is behind (handler::congested)
// when the test says so. Driven by one thread (the bus's).
struct behind_output final : handler {
    std::atomic<bool> behind{false};
    std::size_t events = 0;
    int flushes = 0;
    void handle(const event&) override { ++events; }
    void flush() override { ++flushes; }
    bool congested() const override { return behind.load(); }
    std::atomic<bool> dropping{false};
    bool about_to_drop() const override { return dropping.load(); }
};

}  // namespace telecap::test
