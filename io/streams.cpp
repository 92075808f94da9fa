#include "io/streams.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace telecap {

stream_set::~stream_set() { close_all(std::chrono::steady_clock::now() + std::chrono::seconds(2)); }

stream_set::entry* stream_set::find(dev_t dev, ino_t ino) {
    for (auto& e : entries_) {
        if (!e.identified) continue;
        // A file follows its path through rotations: the file open now is the one to match.
        const auto [d, i] =
            e.is_file ? e.writer->file_id() : std::pair<std::uint64_t, std::uint64_t>{e.dev, e.ino};
        if (d == dev && i == ino) return &e;
    }
    return nullptr;
}

std::shared_ptr<stream_writer> stream_set::standard(int fd) {
    std::lock_guard lock(mu_);
    const std::string name = fd == 1 ? "stdout" : fd == 2 ? "stderr" : "fd " + std::to_string(fd);
    struct stat st {};
    const bool ok = ::fstat(fd, &st) == 0;
    if (ok)
        if (auto* e = find(st.st_dev, st.st_ino)) return e->writer;
    for (auto& e : entries_)  // an fd we could not identify: shared by name only
        if (!e.identified && e.use == name) return e.writer;
    entry e;
    e.dev = st.st_dev;
    e.ino = st.st_ino;
    e.identified = ok;
    e.use = name;
    e.writer = stream_writer::for_fd(fd, name, opts_);
    entries_.push_back(e);
    return e.writer;
}

const std::string* stream_set::claimed(dev_t dev, ino_t ino) const {
    for (const auto& [path, use] : claimed_) {
        struct stat c {};
        // Only a regular file is replaced at exit; /dev/stderr or a FIFO is written in place.
        if (::stat(path.c_str(), &c) == 0 && S_ISREG(c.st_mode) && c.st_dev == dev &&
            c.st_ino == ino)
            return &use;
    }
    return nullptr;
}

void stream_set::claim_output(const std::string& path, const std::string& use) {
    std::lock_guard lock(mu_);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        for (const auto& [id, input] : inputs_)
            if (id.first == st.st_dev && id.second == st.st_ino)
                throw std::invalid_argument(use + " " + path + " is the input " + input +
                                            ": it would be overwritten while it is read");
        if (const auto* e = find(st.st_dev, st.st_ino); e && e->is_file)
            throw std::invalid_argument(use + " and " + e->use + " are both " + path +
                                        ": give each its own file");
        if (const auto* other = claimed(st.st_dev, st.st_ino))
            throw std::invalid_argument(use + " and " + *other + " are both " + path +
                                        ": give each its own file");
    }
    claimed_.emplace_back(path, use);
}

std::shared_ptr<stream_writer> stream_set::file(const std::string& path, const std::string& use) {
    std::lock_guard lock(mu_);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (const auto* other = claimed(st.st_dev, st.st_ino))
            throw std::invalid_argument(use + " and " + *other + " are both " + path +
                                        ": give each its own file");
        for (const auto& [id, input] : inputs_)
            if (id.first == st.st_dev && id.second == st.st_ino)
                throw std::invalid_argument(use + " " + path + " is the input " + input +
                                            ": it would be overwritten while it is read");
        if (auto* e = find(st.st_dev, st.st_ino)) {
            if (e->is_file && e->writer.use_count() == 1) {
                // Its output went (a reload removed it): the file is free to take again,
                // with the writer and the counters it had.
                e->use = use;
                return e->writer;
            }
            if (e->is_file)
                throw std::invalid_argument(use + " and " + e->use + " are both " + path +
                                            ": give each its own file");
            return e->writer;  // the file stdout or stderr already goes to: one writer
        }
    }
    auto w = stream_writer::for_file(path, opts_);
    if (!w) throw std::system_error(w.error(), "cannot open " + path + " (" + use + ")");
    entry e;
    e.is_file = true;
    e.use = use;
    e.writer = *w;
    // The writer's thread may reopen its file already: its identity, not its fd, is read here.
    if (const auto [dev, ino] = (*w)->file_id(); dev != 0 || ino != 0) {
        st.st_dev = static_cast<dev_t>(dev);
        st.st_ino = static_cast<ino_t>(ino);
        if (const auto* other =
                claimed(st.st_dev, st.st_ino)) {  // created just now: it was a claimed name
            (*w)->close(std::chrono::steady_clock::now());
            ::unlink(path.c_str());
            throw std::invalid_argument(use + " and " + *other + " are both " + path +
                                        ": give each its own file");
        }
        if (auto* other = find(st.st_dev, st.st_ino)) {  // created just now via another name
            (*w)->close(std::chrono::steady_clock::now());
            if (other->is_file)
                throw std::invalid_argument(use + " and " + other->use + " are both " + path +
                                            ": give each its own file");
            return other->writer;
        }
        e.dev = st.st_dev;
        e.ino = st.st_ino;
        e.identified = true;
    }
    entries_.push_back(e);
    return e.writer;
}

void stream_set::claim_input(const std::string& path) {
    std::lock_guard lock(mu_);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;  // unreadable inputs are reported when read
    if (!S_ISREG(st.st_mode)) return;            // /dev/stdin, a FIFO: nothing to overwrite
    if (auto* e = find(st.st_dev, st.st_ino))
        throw std::invalid_argument("the input " + path + " is also " + e->use +
                                    ": it would be overwritten while it is read");
    if (const auto* use = claimed(st.st_dev, st.st_ino))
        throw std::invalid_argument("the input " + path + " is also " + *use +
                                    ": it would be overwritten while it is read");
    inputs_.push_back({{st.st_dev, st.st_ino}, path});
}

std::vector<std::shared_ptr<stream_writer>> stream_set::all() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<stream_writer>> out;
    for (const auto& e : entries_) out.push_back(e.writer);
    return out;
}

bool stream_set::lost() const {
    for (const auto& w : all())
        if (w->lost()) return true;
    return false;
}

int stream_set::reopen_files() {
    int n = 0;
    for (const auto& w : all())
        if (w->reopen()) ++n;
    return n;
}

void stream_set::close_all(std::chrono::steady_clock::time_point deadline) {
    auto writers = all();
    // telecap's own messages go to stderr: it closes last, so that what the others say as
    // they close (a loss) still reaches it.
    std::stable_partition(writers.begin(), writers.end(),
                          [](const auto& w) { return w->name() != "stderr"; });
    for (const auto& w : writers) w->drain(deadline);
    for (const auto& w : writers) w->close(deadline);
}

}  // namespace telecap
