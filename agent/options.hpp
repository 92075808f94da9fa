#pragma once
// Options shared by the commands that capture (parse, lint, run), and the wiring of outputs.

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "capture/bus.hpp"
#include "capture/catalog.hpp"
#include "capture/normalizer.hpp"
#include "capture/pipeline.hpp"
#include "core/fd_writer.hpp"

namespace telecap::agent {

// A startup problem the user can fix: printed as "telecap: <what>", exit 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct capture_options {
    std::string catalog_path;  // empty: the built-in catalog
    std::string prefix{default_telemetry_prefix};
    std::size_t max_line = std::size_t{1} << 20;
    std::string node;  // empty: the hostname
    std::optional<std::string> worker_id;
    std::string pool = "default";
    std::optional<std::int64_t> pid;
    std::vector<std::string> outputs;  // empty: {"jsonl"}
    std::string passthrough = "stderr";
    std::string rejects_path;
    std::string stats_path;
};

std::string hostname();
catalog load_catalog(const capture_options& o);  // throws usage_error
pipeline_options make_pipeline_options(const capture_options& o);
worker_context make_context(const capture_options& o);

// Creates each output named by a spec ("jsonl", "jsonl:PATH", "unix:PATH", "log", "null") and
// attaches it to the bus as "output.N"; throws usage_error for a bad spec, a file that cannot be
// opened or a socket that cannot be listened on.
void attach_outputs(const std::vector<std::string>& specs, handler_bus& bus);
std::shared_ptr<handler> make_output(const std::string& spec);  // throws usage_error

// Pass-through to stderr, stdout, nothing, or a file. Write errors are counted, never fatal.
class passthrough_writer final : public passthrough_sink {
public:
    static std::unique_ptr<passthrough_writer> open(const std::string& spec);  // throws
    explicit passthrough_writer(fd_writer out) : out_(std::move(out)) {}

    void write(std::string_view bytes, bool starts_line, bool ends_line) override;
    void flush() { out_.flush(); }
    std::uint64_t dropped_bytes() const noexcept { return out_.dropped_bytes(); }

private:
    fd_writer out_;
};

// --rejects: each rejected telemetry line as one JSON object per line.
class rejects_writer final : public reject_sink {
public:
    explicit rejects_writer(fd_writer out) : out_(std::move(out)) {}
    static std::unique_ptr<rejects_writer> open(const std::string& path);  // throws
    void set_source(std::string source) { source_ = std::move(source); }
    void on_reject(const reject_info& r) override;
    void flush() { out_.flush(); }

private:
    fd_writer out_;
    std::string source_;
};

// Writes --stats at exit; returns false (after saying why on stderr) if it cannot.
// `outputs`: the bus's counters_json() (see stats_to_json).
bool write_stats_file(const std::string& path, const capture_stats& s,
                      std::string_view outputs = {});

}  // namespace telecap::agent
