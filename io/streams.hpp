#pragma once
// The output streams of one telecap process, each with its one stream_writer. Everything that
// writes to stdout, stderr or a file asks this set for the writer, so two producers that end
// up on the same stream (stdout and stderr on one terminal or pipe, `-o jsonl:/dev/stdout`,
// `2>&1`) share one writer and never cut each other's lines.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "telecap/io/stream_writer.hpp"

namespace telecap {

class stream_set {
public:
    explicit stream_set(stream_writer_options o = {}) : opts_(o) {}
    ~stream_set();
    stream_set(const stream_set&) = delete;
    stream_set& operator=(const stream_set&) = delete;

    // fd 1 / fd 2 (names "stdout", "stderr"), shared with any other target on the same stream.
    std::shared_ptr<stream_writer> standard(int fd);
    // A file opened for appending. A file named a second time (or one that is an input, see
    // claim_input) is an error: std::invalid_argument with a message naming both uses, unless
    // nothing holds its writer any more (its output was removed by a reload); a file that
    // cannot be opened: std::system_error. `use` says what it is for ("output 2").
    std::shared_ptr<stream_writer> file(const std::string& path, const std::string& use);
    // Notes an input file, so that no output may be it (that would empty or loop it).
    // std::invalid_argument when an output is that file already.
    void claim_input(const std::string& path);

    // Notes a file telecap writes by other means (--stats, written whole at exit), so that no
    // output, other file or input may be it. std::invalid_argument when one is already. Only a
    // regular file (or one not there yet) counts: /dev/stderr is written in place.
    void claim_output(const std::string& path, const std::string& use);

    std::vector<std::shared_ptr<stream_writer>> all() const;
    bool lost() const;
    // Every file (outputs, pass-through, rejects) reopened by path before its next line
    // (`telecap ctl reopen`, SIGUSR1); the count of files.
    int reopen_files();
    // Drains every stream until the deadline, then closes it (the rest is dropped, counted).
    void close_all(std::chrono::steady_clock::time_point deadline);

private:
    struct entry {
        dev_t dev = 0;
        ino_t ino = 0;
        bool identified = false;
        bool is_file = false;  // named by path (not a standard stream)
        std::string use;
        std::shared_ptr<stream_writer> writer;
    };
    entry* find(dev_t dev, ino_t ino);

    stream_writer_options opts_;
    mutable std::mutex mu_;
    std::vector<entry> entries_;
    // The claimed path (by name: the file may not exist yet) with what it is for, if it is
    // the file (dev, ino).
    const std::string* claimed(dev_t dev, ino_t ino) const;

    std::vector<std::pair<std::pair<dev_t, ino_t>, std::string>> inputs_;
    std::vector<std::pair<std::string, std::string>> claimed_;  // path, use
};

}  // namespace telecap
