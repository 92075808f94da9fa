#pragma once
// The one writer of an output stream (stdout, stderr, a file). Every producer that writes to
// the same stream (events, pass-through, rejects, telecap's own messages) appends whole lines
// to the same stream_writer, so lines never cut into each other, whatever thread they come from.
//
// Producers never block: append() copies into a buffer and a writer thread does the write(2).
// The buffer has two marks: above `soft_limit` the stream is "congested" (the run loop stops
// reading workers, the dispatcher waits: back-pressure); above `hard_limit` new lines are
// dropped whole and counted. So a reader that stalls costs bounded memory and never stops the
// caller's thread.
//
// Faults:
// - A write error is logged once per failure episode (through the log hook, never through
//   this writer's own lock) and counted.
// - EPIPE, EBADF, EINVAL (nobody will ever read): the writer is dead; everything after is
//   dropped and counted.
// - Anything else (ENOSPC, EDQUOT, EIO, ...) may pass: the writer keeps its buffer, retries with
//   backoff (files are reopened by path, which also follows a rotation), and resumes. Lines
//   beyond the hard limit meanwhile are dropped and counted.
// - Never a partial line: a line half written when a file fails is cut off again
//   (ftruncate), and written whole on the retry. On a pipe a half line cannot be taken back;
//   the rest of it is written first when the pipe accepts data again.
// Files are opened with O_APPEND: earlier content stays, and logrotate's copytruncate leaves
// no hole of NUL bytes.
// Rotation: a file renamed or deleted under the writer (logrotate's `create`) is reopened by
// path within `reopen_check` (the writer thread compares the path's device and inode with the
// open fd's), and reopen() asks for it at once (`telecap ctl reopen`, SIGUSR1). The switch
// happens between two lines, so each line lands whole in one file, once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "telecap/core/result.hpp"
#include "telecap/core/unique_fd.hpp"

namespace telecap {

struct stream_writer_options {
    std::size_t soft_limit = std::size_t{1} << 20;   // congested above this
    std::size_t hard_limit = std::size_t{16} << 20;  // dropped above this
    std::chrono::milliseconds retry_min{50};
    std::chrono::milliseconds retry_max{2000};
    // A failure that lasts this long makes waiting producers give up waiting (they drop and
    // count instead), and ends the drain at close.
    std::chrono::milliseconds give_up_after{5000};
    // Small writes are gathered for at most `linger` (or until `linger_bytes` wait), so a
    // stream of small lines costs one write(2) per batch, not one per line; 0: write at once.
    std::chrono::microseconds linger{1000};
    std::size_t linger_bytes = std::size_t{64} << 10;
    // How often a file's path is checked for a rotation (renamed or deleted: reopened);
    // 0: never.
    std::chrono::milliseconds reopen_check{1000};
};

// Counters of one stream, readable at any time from any thread.
struct stream_counters {
    std::atomic<std::uint64_t> written_lines{0};
    std::atomic<std::uint64_t> written_bytes{0};
    std::atomic<std::uint64_t> dropped_lines{0};  // never written: stream dead or full
    std::atomic<std::uint64_t> dropped_bytes{0};
    std::atomic<std::uint64_t> write_errors{0};  // failed write(2) calls
    std::atomic<std::uint64_t> reopens{0};  // files reopened: after an error, a rotation, or asked
};

class stream_writer {
public:
    // How a failure is said (the first one of each episode, and the recovery). Called from the
    // writer thread without any lock held. Default: spdlog's default logger.
    using log_hook = std::function<void(bool error, const std::string& message)>;

    // Writes to an fd it does not own (1, 2, an inherited one).
    static std::shared_ptr<stream_writer> for_fd(int fd, std::string name,
                                                 stream_writer_options o = {});
    // Opens (creates, mode 0644) a file for appending; reopened by path after an error.
    static Result<std::shared_ptr<stream_writer>> for_file(const std::string& path,
                                                           stream_writer_options o = {});

    ~stream_writer();
    stream_writer(const stream_writer&) = delete;
    stream_writer& operator=(const stream_writer&) = delete;

    // Appends `text`, which holds `lines` whole lines (or the pieces of a line that is
    // streamed: pass lines = 0 for the pieces and 1 with the piece that ends it). Never
    // blocks. False when it was dropped (stream dead, or above the hard limit), counted.
    // `force` ignores the hard limit (the rest of a line whose start was accepted).
    bool append(std::string_view text, std::uint64_t lines = 1, bool force = false);
    // The same for a buffer the caller gives up: taken without a copy when nothing is
    // pending. `text` is left empty (with some capacity) either way.
    bool append_owned(std::string& text, std::uint64_t lines);

    // A piece of a line longer than a producer can hold (pass-through of an over-long line):
    // until the piece that ends it, whole lines from other producers are held back (bounded
    // by the hard limit) and follow it, so nothing cuts into it. Only one producer streams
    // parts at a time (the pass-through mux of this stream).
    bool append_part(std::string_view text, bool ends);

    // Above the soft limit: producers that can wait should.
    bool congested() const noexcept {
        return buffered_.load(std::memory_order_relaxed) > opts_.soft_limit;
    }
    // A line is being streamed in parts (append_part) and has not ended: its parts are taken
    // whatever the limits, so only its producer can bound what it costs (by waiting).
    bool streaming() const {
        std::lock_guard lock(mu_);
        return part_open_;
    }
    // Waits until not congested, or dead, or the deadline. True when there is room.
    bool wait_room(std::chrono::steady_clock::time_point deadline);
    // For a producer whose input can wait (telecap parse: a file or a pipe it reads): waits
    // while congested, until there is room, the stream gives up or closes, or `stop` (optional,
    // asked every 100 ms) says to stop waiting. So such a producer never drops for lack of
    // room, and what it buffers here stays near soft_limit, whatever the length of a line.
    void wait_for_room(const std::function<bool()>& stop = {});
    // Called (from the writer thread) each time the buffer falls back under the soft limit
    // after having been above it. Set before producers start.
    void on_room(std::function<void()> fn);
    void set_log_hook(log_hook hook);

    // A file: reopens its path (creating it) before the next line, or at once when idle;
    // counted in `reopens`. False (nothing done) for a stream that is not a file of ours.
    bool reopen();
    // The device and inode of the file open now (0, 0 when not a file of ours or unknown):
    // a rotation changes them.
    std::pair<std::uint64_t, std::uint64_t> file_id() const noexcept {
        return {file_dev_.load(std::memory_order_relaxed),
                file_ino_.load(std::memory_order_relaxed)};
    }

    // Waits until everything appended so far is written, or the deadline. True when drained.
    bool drain(std::chrono::steady_clock::time_point deadline);
    // Stops the writer thread after draining until the deadline; what is left is dropped and
    // counted, and a partial line at the end of a file is cut off. Idempotent.
    void close(std::chrono::steady_clock::time_point deadline);

    // Whole lines wait for a streamed line (append_part) to end.
    bool holding() const {
        std::lock_guard lock(mu_);
        return !held_.empty();
    }
    bool dead() const noexcept { return dead_.load(std::memory_order_relaxed); }
    // close() has begun: a producer waiting for room should stop waiting.
    bool closing() const {
        std::lock_guard lock(mu_);
        return closing_;
    }
    // Failing for longer than give_up_after (or dead): nobody should wait for it.
    bool given_up() const noexcept;
    std::size_t buffered() const noexcept { return buffered_.load(std::memory_order_relaxed); }
    const stream_counters& counters() const noexcept { return counters_; }
    const std::string& name() const noexcept { return name_; }
    // The last failure said (a write or reopen error, lines lost at the end), "" when none.
    std::string last_error() const {
        std::lock_guard lock(mu_);
        return last_error_;
    }
    // The fd written to. For a file it changes when the writer thread reopens it: read
    // file_id() from other threads instead.
    int fd() const noexcept { return fd_; }
    // Lines or bytes lost so far.
    bool lost() const noexcept {
        return counters_.dropped_lines.load() > 0 || counters_.dropped_bytes.load() > 0;
    }

private:
    stream_writer(int fd, unique_fd owned, std::string name, std::string path,
                  stream_writer_options o);
    void run();
    // Writes `data` (whole lines, maybe preceded by the rest of a line already begun).
    // Returns the number of bytes written; sets err on failure.
    std::size_t write_some(std::string_view data, int& err);
    void fail(int err, std::string_view unwritten);
    // Opens path_ again in place of fd_ (writer thread). `why` for the log; quiet: no log.
    bool reopen_path(const char* why);
    // The path no longer names the open file (renamed or deleted), writer thread.
    bool path_moved() const;
    void note_file_id();
    void drop(std::string_view text, std::uint64_t lines);
    void say(bool error, const std::string& message);

    const std::string name_;
    const std::string path_;  // empty: not a file of ours
    const stream_writer_options opts_;
    unique_fd owned_;
    int fd_;

    mutable std::mutex mu_;
    std::condition_variable work_;  // the writer thread waits for data
    std::condition_variable room_;  // producers and drain() wait for progress
    std::string pending_;           // appended, not yet taken by the writer thread
    std::string held_;              // whole lines waiting for a streamed line to end
    std::uint64_t held_lines_ = 0;
    bool part_open_ = false;
    std::uint64_t pending_lines_ = 0;
    std::uint64_t appended_seq_ = 0;  // bytes ever appended
    std::uint64_t done_seq_ = 0;      // bytes ever written or dropped
    bool closing_ = false;
    bool was_congested_ = false;
    std::function<void()> on_room_;
    log_hook log_;
    std::string last_error_;

    std::atomic<std::size_t> buffered_{0};
    std::atomic<bool> dead_{false};
    std::atomic<bool> reopen_asked_{false};
    std::atomic<std::uint64_t> file_dev_{0};
    std::atomic<std::uint64_t> file_ino_{0};
    bool reopen_failing_ = false;  // a rotation's reopen failed: said once (writer thread)
    stream_counters counters_;
    std::uint64_t partial_ = 0;  // bytes of the current line already written (writer thread)
    // Bytes of the current line written and no longer kept (writer thread): the head of a line
    // longer than 64 KiB is let go, so memory stays bounded; a file error can then no
    // longer take the line back, and its rest is written on the retry (as on a pipe).
    std::uint64_t head_gone_ = 0;
    bool failing_ = false;  // in a failure episode (writer thread)
    std::atomic<bool> deadline_passed_{false};
    std::atomic<std::int64_t> failing_since_{
        0};  // steady clock ns; 0: not failing  // close(): stop retrying, drop the rest
    std::thread thread_;
};

}  // namespace telecap
