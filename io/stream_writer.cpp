#include "io/stream_writer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.hpp"

namespace telecap {

namespace {

constexpr std::size_t max_write = std::size_t{1} << 20;
// The written head of a line kept to rewrite it whole after a file error, at most.
constexpr std::size_t max_kept_head = std::size_t{64} << 10;
// Pending bytes from which the writer writes at once instead of lingering for more.
constexpr std::size_t linger_skip_default = std::size_t{16} << 10;

std::uint64_t count_lines(std::string_view s) {
    // memchr's vector loop is several times faster than std::count's (which widens every
    // byte to a 64-bit lane) on lines of a few hundred bytes.
    std::uint64_t n = 0;
    const char* p = s.data();
    const char* const end = p + s.size();
    while (p < end) {
        p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (!p) break;
        ++n;
        ++p;
    }
    return n;
}

// Errors after which nobody will ever read what we write.
bool permanent(int err) {
    return err == EPIPE || err == EBADF || err == EINVAL || err == ECONNRESET;
}

// A pipe or a terminal we were handed (stdout, stderr) is opened anew through /proc, as a
// file description of our own that can be non-blocking without changing the one we share
// with the shell and other processes: so a stalled reader can never hold the writer thread in
// write(2) past a deadline. Files and sockets keep the fd as it is.
unique_fd own_description(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) return {};
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    return unique_fd(::open(proc.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
}

}  // namespace

stream_writer::stream_writer(int fd, unique_fd owned, std::string name, std::string path,
                             stream_writer_options o)
    : name_(std::move(name)), path_(std::move(path)), opts_(o), owned_(std::move(owned)), fd_(fd) {
    if (!path_.empty()) note_file_id();
    thread_ = std::thread([this] { run(); });
    // Named for top -H, perf and strace: which stream's writer is busy.
    ::pthread_setname_np(thread_.native_handle(), ("tc-w:" + name_).substr(0, 15).c_str());
}

std::shared_ptr<stream_writer> stream_writer::for_fd(int fd, std::string name,
                                                     stream_writer_options o) {
    unique_fd own = own_description(fd);
    const int use = own ? own.get() : fd;
    return std::shared_ptr<stream_writer>(
        new stream_writer(use, std::move(own), std::move(name), {}, o));
}

Result<std::shared_ptr<stream_writer>> stream_writer::for_file(const std::string& path,
                                                               stream_writer_options o) {
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!fd) return errno_code(errno);
    const int raw = fd.get();
    return std::shared_ptr<stream_writer>(new stream_writer(raw, std::move(fd), path, path, o));
}

stream_writer::~stream_writer() {
    close(std::chrono::steady_clock::now() + std::chrono::seconds(2));
}

void stream_writer::on_room(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    on_room_ = std::move(fn);
}

void stream_writer::set_log_hook(log_hook hook) {
    std::lock_guard lock(mu_);
    log_ = std::move(hook);
}

void stream_writer::say(bool error, const std::string& message) {
    log_hook hook;
    {
        std::lock_guard lock(mu_);
        hook = log_;
        if (error) last_error_ = message;
    }
    if (hook) {
        hook(error, message);
    } else if (error) {
        logger()->error("{}", message);
    } else {
        logger()->warn("{}", message);
    }
}

void stream_writer::drop(std::string_view text, std::uint64_t lines) {
    counters_.dropped_lines.fetch_add(lines, std::memory_order_relaxed);
    counters_.dropped_bytes.fetch_add(text.size(), std::memory_order_relaxed);
}

bool stream_writer::append(std::string_view text, std::uint64_t lines, bool force) {
    if (text.empty()) return true;
    {
        std::lock_guard lock(mu_);
        if (!closing_ && !dead_.load(std::memory_order_relaxed) &&
            (force || buffered_.load(std::memory_order_relaxed) + text.size() <= opts_.hard_limit ||
             buffered_.load(std::memory_order_relaxed) == 0)) {
            if (part_open_) {
                held_.append(text);
                held_lines_ += lines;
            } else {
                if (pending_.empty() || (pending_.size() < opts_.linger_bytes &&
                                         pending_.size() + text.size() >= opts_.linger_bytes))
                    work_.notify_one();
                pending_.append(text);
                pending_lines_ += lines;
            }
            const auto b =
                buffered_.fetch_add(text.size(), std::memory_order_relaxed) + text.size();
            if (b > opts_.soft_limit) was_congested_ = true;
            return true;
        }
    }
    drop(text, lines);
    return false;
}

bool stream_writer::append_owned(std::string& text, std::uint64_t lines) {
    bool taken = false;
    {
        std::lock_guard lock(mu_);
        if (!text.empty() && pending_.empty() && !part_open_ && !closing_ &&
            !dead_.load(std::memory_order_relaxed) &&
            buffered_.load(std::memory_order_relaxed) + text.size() <= opts_.hard_limit) {
            const auto size = text.size();
            pending_.swap(text);
            pending_lines_ += lines;
            const auto b = buffered_.fetch_add(size, std::memory_order_relaxed) + size;
            if (b > opts_.soft_limit) was_congested_ = true;
            text.clear();
            taken = true;
        }
    }
    if (taken) {
        // Outside the lock: the writer thread it wakes finds the lock free.
        work_.notify_one();
        return true;
    }
    const bool ok = append(std::string_view(text), lines);
    text.clear();
    return ok;
}

bool stream_writer::append_part(std::string_view text, bool ends) {
    {
        std::lock_guard lock(mu_);
        if (!closing_ && !dead_.load(std::memory_order_relaxed)) {
            // A part is always taken: its line has begun, dropping the rest would cut it.
            if (pending_.empty() || (pending_.size() < opts_.linger_bytes &&
                                     pending_.size() + text.size() >= opts_.linger_bytes))
                work_.notify_one();
            pending_.append(text);
            pending_lines_ += ends ? 1 : 0;
            part_open_ = !ends;
            if (ends && !held_.empty()) {
                pending_.append(held_);
                pending_lines_ += held_lines_;
                held_.clear();
                held_lines_ = 0;
            }
            const auto b =
                buffered_.fetch_add(text.size(), std::memory_order_relaxed) + text.size();
            if (b > opts_.soft_limit) was_congested_ = true;
            return true;
        }
    }
    drop(text, ends ? 1 : 0);
    return false;
}

bool stream_writer::given_up() const noexcept {
    if (dead()) return true;
    const auto since = failing_since_.load(std::memory_order_relaxed);
    if (since == 0) return false;
    const auto now = std::chrono::steady_clock::now().time_since_epoch();
    return std::chrono::nanoseconds(now.count() - since) > opts_.give_up_after;
}

bool stream_writer::wait_room(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return room_.wait_until(lock, deadline, [&] {
        return dead_.load() || closing_ ||
               buffered_.load(std::memory_order_relaxed) <= opts_.soft_limit;
    }) && !dead_.load();
}

void stream_writer::wait_for_room(const std::function<bool()>& stop) {
    while (congested() && !given_up() && !closing() && !(stop && stop()))
        wait_room(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
}

bool stream_writer::drain(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return room_.wait_until(lock, deadline, [&] {
        return dead_.load() || buffered_.load(std::memory_order_relaxed) == 0;
    }) && buffered_.load() == 0;
}

void stream_writer::close(std::chrono::steady_clock::time_point deadline) {
    if (!thread_.joinable()) return;
    {
        std::unique_lock lock(mu_);
        closing_ = true;
        work_.notify_all();
        // The writer thread drains what it can until the deadline; then it drops the rest.
        while (!room_.wait_until(lock,
                                 std::min(deadline, std::chrono::steady_clock::now() +
                                                        std::chrono::milliseconds(100)),
                                 [&] {
                                     return dead_.load() ||
                                            buffered_.load(std::memory_order_relaxed) == 0;
                                 }) &&
               std::chrono::steady_clock::now() < deadline && !given_up()) {
        }
        deadline_passed_.store(true);
        work_.notify_all();
    }
    thread_.join();  // its writes wait at most 100 ms at a time (non-blocking fds)
}

std::size_t stream_writer::write_some(std::string_view data, int& err) {
    std::size_t done = 0;
    while (done < data.size()) {
        const std::size_t n = std::min(data.size() - done, max_write);
        const ssize_t w = ::write(fd_, data.data() + done, n);
        if (w > 0) {
            done += static_cast<std::size_t>(w);
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {  // a non-blocking fd we were handed: wait until it drains
            pollfd p{fd_, POLLOUT, 0};
            ::poll(&p, 1, 100);
            if (deadline_passed_.load()) {
                err = EAGAIN;
                return done;
            }
            continue;
        }
        err = w < 0 ? errno : EIO;
        return done;
    }
    return done;
}

bool stream_writer::reopen() {
    if (path_.empty()) return false;
    {
        std::lock_guard lock(mu_);
        reopen_asked_.store(true);
    }
    work_.notify_one();
    return true;
}

void stream_writer::note_file_id() {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return;
    file_dev_.store(st.st_dev, std::memory_order_relaxed);
    file_ino_.store(st.st_ino, std::memory_order_relaxed);
}

bool stream_writer::path_moved() const {
    struct stat open_st {};
    struct stat path_st {};
    // A device or a FIFO named by path (/dev/null): nothing rotates it.
    if (::fstat(fd_, &open_st) != 0 || !S_ISREG(open_st.st_mode)) return false;
    if (::stat(path_.c_str(), &path_st) != 0) return errno == ENOENT || errno == ENOTDIR;
    return path_st.st_dev != open_st.st_dev || path_st.st_ino != open_st.st_ino;
}

bool stream_writer::reopen_path(const char* why) {
    if (path_.empty()) return false;
    // O_NONBLOCK: a FIFO put at the path must not hold this thread in open(2) until a reader
    // comes (ENXIO instead); on a regular file it changes nothing.
    unique_fd fd(
        ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644));
    if (!fd) {
        const int err = errno;
        if (why && !reopen_failing_)
            say(true, name_ + ": cannot reopen (" + why + "): " + std::strerror(err) +
                          "; still writing to the file it was, retrying");
        if (why) reopen_failing_ = true;
        return false;
    }
    owned_ = std::move(fd);
    fd_ = owned_.get();
    note_file_id();
    counters_.reopens.fetch_add(1, std::memory_order_relaxed);
    if (why) {
        if (reopen_failing_) say(false, name_ + ": reopened at last");
        reopen_failing_ = false;
        logger()->info("{}: reopened ({})", name_, why);
    }
    return true;
}

void stream_writer::run() {
    // A write to a closed pipe must fail with EPIPE, not kill the host process: SIGPIPE goes to
    // the thread that wrote, so blocking it here is enough, whatever the host's disposition.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    std::string buf;  // taken from pending_; buf[0, partial_) is the written head of a line
    std::uint64_t todo_lines = 0;  // lines in buf after partial_, as the producers counted them
    bool todo_lines_known = true;
    auto backoff = opts_.retry_min;
    bool tail_complete = true;
    const bool checks = !path_.empty() && opts_.reopen_check.count() > 0;
    auto next_check = std::chrono::steady_clock::now() + opts_.reopen_check;
    for (;;) {
        // Between two lines: where a reopen may switch files without cutting a line.
        const bool boundary = partial_ == 0 && head_gone_ == 0;
        bool closing = false;
        bool give_up = false;
        {
            std::unique_lock lock(mu_);
            if (failing_) {
                work_.wait_for(lock, backoff, [&] { return deadline_passed_.load(); });
            } else {
                const auto ready = [&] {
                    return closing_ || !pending_.empty() || buf.size() > partial_ ||
                           (boundary && reopen_asked_.load());
                };
                // Mid-line the check waits for the line's end: no timed wake-ups meanwhile.
                if (checks && boundary)
                    work_.wait_until(lock, next_check, ready);
                else
                    work_.wait(lock, ready);
                // Lingering gathers small appends (lines one by one); a batch handed over whole
                // (an output's turn of events) is worth a write(2) at once, and waiting for
                // more would only cost the timed wait.
                if (!closing_ && !pending_.empty() && buf.size() <= partial_ &&
                    pending_.size() < std::min(opts_.linger_bytes, linger_skip_default) &&
                    opts_.linger.count() > 0)
                    work_.wait_for(lock, opts_.linger, [&] {
                        return closing_ || pending_.size() >= opts_.linger_bytes;
                    });
            }
            if (closing_ && pending_.empty() && !held_.empty()) {
                // Closing with a streamed line still open: what waited for it goes out now.
                pending_.swap(held_);
                pending_lines_ = held_lines_;
                held_lines_ = 0;
                part_open_ = false;
            }
            // Bounded by what is still to write, not by buf's size: buf also keeps the written
            // head of a streamed line (to write it whole again after a file error). Testing
            // buf.size() here left a line longer than max_write stuck for good once its first
            // max_write bytes were out: pending_ was never taken, and this loop spun at full CPU
            // (close() then never returned).
            if (buf.size() - partial_ < max_write && !pending_.empty()) {
                tail_complete = !part_open_;  // the last append ended a unit
                if (buf.empty()) {
                    buf.swap(pending_);  // the common case: no copy
                    todo_lines = pending_lines_;
                    todo_lines_known = true;
                } else {
                    buf += pending_;
                    todo_lines += pending_lines_;
                }
                pending_.clear();
                pending_lines_ = 0;
            }
            closing = closing_;
            give_up = deadline_passed_.load() || dead_.load();
            if (buf.size() == partial_ && pending_.empty() && closing) break;
        }
        if (give_up && (failing_ || dead_.load())) break;
        if (failing_ && !path_.empty()) reopen_path(nullptr);
        if (boundary && !path_.empty()) {
            const auto now = std::chrono::steady_clock::now();
            if (reopen_asked_.exchange(false)) {
                reopen_path("asked");
                next_check = now + opts_.reopen_check;
            } else if (checks && now >= next_check) {
                next_check = now + opts_.reopen_check;
                if (path_moved() || reopen_failing_) reopen_path("the file was renamed or deleted");
            }
        }

        int err = 0;
        const std::string_view todo(buf.data() + partial_, buf.size() - partial_);
        const std::size_t n = write_some(todo, err);
        if (n > 0) {
            const std::string_view written = todo.substr(0, n);
            counters_.written_bytes.fetch_add(n, std::memory_order_relaxed);
            // The producers said how many lines they appended: when all of it went out at once
            // (the usual case), no pass over the bytes to count them.
            const bool all = n == todo.size() && todo_lines_known;
            counters_.written_lines.fetch_add(all ? todo_lines : count_lines(written),
                                              std::memory_order_relaxed);
            todo_lines = 0;
            todo_lines_known = all;  // after a partial write, counted from the bytes
            const std::size_t end = partial_ + n;
            const void* nl = ::memrchr(buf.data(), '\n', end);
            if (nl) {
                const std::size_t cut =
                    static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data()) + 1;
                buf.erase(0, cut);
                partial_ = end - cut;
                head_gone_ = 0;
            } else {
                partial_ = end;
            }
            buffered_.fetch_sub(n, std::memory_order_relaxed);
            if (partial_ == buf.size()) {
                // All written: the bytes after the last newline are a whole unit (a last line
                // without one) unless a streamed line is still open.
                if (tail_complete) {
                    buf.clear();
                    partial_ = 0;
                    head_gone_ = 0;
                }
            }
            if (partial_ > max_kept_head) {
                // A line longer than max_kept_head: keeping its written head to rewrite it after
                // a file error would hold the whole line (1 GiB for a 1 GiB line).
                buf.erase(0, partial_);
                head_gone_ += partial_;
                partial_ = 0;
            }
        }
        if (err == EAGAIN && deadline_passed_.load()) break;  // stalled reader at close: below
        if (err) {
            if (err == EPIPE) {  // take the blocked SIGPIPE back: it stays with this thread
                const timespec now{0, 0};
                ::sigtimedwait(&pipe_signal, nullptr, &now);
            }
            counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
            if (partial_ > 0 && head_gone_ == 0 && !path_.empty()) {
                // A line half written to a file: take it back, it is written whole on retry.
                struct stat st {};
                if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) &&
                    static_cast<std::uint64_t>(st.st_size) >= partial_ &&
                    ::ftruncate(fd_, st.st_size - static_cast<off_t>(partial_)) == 0) {
                    counters_.written_bytes.fetch_sub(partial_, std::memory_order_relaxed);
                    buffered_.fetch_add(partial_, std::memory_order_relaxed);
                    partial_ = 0;
                }
            }
            if (!failing_) {
                failing_since_.store(std::chrono::steady_clock::now().time_since_epoch().count());
                say(true, name_ + ": write failed: " + std::strerror(err) +
                              (permanent(err) ? "; further output to it is dropped"
                                              : "; retrying, output is kept meanwhile"));
            }
            failing_ = true;
            if (permanent(err)) dead_.store(true);
            backoff = std::min(backoff * 2, opts_.retry_max);
        } else if (failing_) {
            failing_ = false;
            failing_since_.store(0);
            backoff = opts_.retry_min;
            say(false, name_ + ": writing again");
        }
        if (dead_.load()) break;
        std::function<void()> room_fn;
        {
            std::lock_guard lock(mu_);
            if (was_congested_ && buffered_.load(std::memory_order_relaxed) <= opts_.soft_limit) {
                was_congested_ = false;
                room_fn = on_room_;
            }
        }
        // Waiters want the buffer under the soft limit (wait_room) or empty (drain): waking
        // them for every write while it stays above only makes them sleep again.
        if (dead_.load() || buffered_.load(std::memory_order_relaxed) <= opts_.soft_limit)
            room_.notify_all();
        if (room_fn) room_fn();
    }
    // What is left is lost: count it, and never leave half a line at the end of a file.
    std::uint64_t lost_lines = 0, lost_bytes = 0;
    {
        std::lock_guard lock(mu_);
        const std::string_view left(buf.data() + partial_, buf.size() - partial_);
        lost_lines = count_lines(left) + pending_lines_ + held_lines_;
        lost_bytes = left.size() + pending_.size() + held_.size();
        drop(left, count_lines(left));
        drop(pending_, pending_lines_);
        drop(held_, held_lines_);
        pending_.clear();
        held_.clear();
        pending_lines_ = held_lines_ = 0;
        buffered_.store(0);
        const std::uint64_t begun = partial_ + head_gone_;  // the unfinished line, all of it
        if (begun > 0 && !path_.empty()) {
            struct stat st {};
            if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) &&
                static_cast<std::uint64_t>(st.st_size) >= begun &&
                ::ftruncate(fd_, st.st_size - static_cast<off_t>(begun)) == 0)
                counters_.written_bytes.fetch_sub(begun, std::memory_order_relaxed);
        }
        partial_ = 0;
        head_gone_ = 0;
    }
    room_.notify_all();
    if (lost_bytes > 0 && !dead_.load())
        say(true, fmt::format("{}: {} lines ({} bytes) could not be written before the end: "
                              "dropped",
                              name_, lost_lines, lost_bytes));
}

}  // namespace telecap
