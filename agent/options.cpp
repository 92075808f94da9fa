#include "agent/options.hpp"

#include <unistd.h>

#include <climits>

#include "adapters/jsonl_handler.hpp"
#include "adapters/log_handler.hpp"
#include "adapters/unix_socket_handler.hpp"
#include "capture/event_json.hpp"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace telecap::agent {

std::string hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

catalog load_catalog(const capture_options& o) {
    try {
        return o.catalog_path.empty() ? catalog::builtin() : catalog::from_file(o.catalog_path);
    } catch (const catalog_error& e) {
        throw usage_error(std::string("bad catalog: ") + e.what());
    }
}

pipeline_options make_pipeline_options(const capture_options& o) {
    pipeline_options p;
    p.prefix = o.prefix;
    p.max_line = o.max_line;
    return p;
}

worker_context make_context(const capture_options& o) {
    worker_context ctx;
    ctx.node = o.node.empty() ? hostname() : o.node;
    ctx.worker_id = o.worker_id;
    ctx.pool_name = o.pool;
    ctx.pid = o.pid;
    return ctx;
}

std::shared_ptr<handler> make_output(const std::string& spec) {
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (kind == "jsonl") {
        if (arg.empty() || arg == "-") return std::make_shared<jsonl_handler>(fd_writer(1));
        try {
            return jsonl_handler::open(arg);
        } catch (const std::system_error& e) {
            throw usage_error(std::string(e.what()));
        }
    }
    if (kind == "log" && arg.empty()) {
        auto logger = spdlog::get("telecap.events");
        if (!logger) logger = spdlog::stderr_logger_mt("telecap.events");
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
        logger->set_level(spdlog::level::info);  // the debug view is on whatever --log-level
        return std::make_shared<log_handler>(std::move(logger));
    }
    if (kind == "null" && arg.empty()) return std::make_shared<null_handler>();
    if (kind == "unix") {
        if (arg.empty()) throw usage_error("output \"unix\" needs a socket path: unix:PATH");
        try {
            return std::make_shared<unix_socket_handler>(arg);
        } catch (const std::runtime_error& e) {
            throw usage_error(e.what());
        }
    }
    throw usage_error("unknown output \"" + spec +
                      "\": use jsonl, jsonl:PATH, unix:PATH, log or null");
}

void attach_outputs(const std::vector<std::string>& specs, handler_bus& bus) {
    const std::vector<std::string> defaults{"jsonl"};
    const auto& list = specs.empty() ? defaults : specs;
    for (std::size_t i = 0; i < list.size(); ++i)
        bus.attach("output." + std::to_string(i) + ":" + list[i], {}, make_output(list[i]));
}

std::unique_ptr<passthrough_writer> passthrough_writer::open(const std::string& spec) {
    if (spec == "stderr") return std::make_unique<passthrough_writer>(fd_writer(2));
    if (spec == "stdout") return std::make_unique<passthrough_writer>(fd_writer(1));
    if (spec == "none") return nullptr;
    auto w = fd_writer::open_file(spec);
    if (!w) throw usage_error("cannot open pass-through file " + spec + ": " + w.error().message());
    return std::make_unique<passthrough_writer>(std::move(*w));
}

void passthrough_writer::write(std::string_view bytes, bool, bool) { out_.write(bytes); }

std::unique_ptr<rejects_writer> rejects_writer::open(const std::string& path) {
    auto w = fd_writer::open_file(path);
    if (!w) throw usage_error("cannot open rejects file " + path + ": " + w.error().message());
    return std::make_unique<rejects_writer>(std::move(*w));
}

void rejects_writer::on_reject(const reject_info& r) {
    std::string& out = out_.buffer();
    out += "{\"source\":";
    append_json_string(out, source_);
    out += ",\"line\":" + std::to_string(r.line_no);
    out += ",\"reason\":\"";
    out += to_string(r.reason);
    out += "\",\"detail\":";
    append_json_string(out, r.detail);
    out += ",\"offset\":" + std::to_string(r.offset);
    out += ",\"text\":";
    append_json_string(out, r.text);
    out += r.truncated ? ",\"truncated\":true}\n" : ",\"truncated\":false}\n";
    out_.commit();
}

bool write_stats_file(const std::string& path, const capture_stats& s, std::string_view outputs) {
    auto w = fd_writer::open_file(path);
    if (!w) {
        spdlog::error("cannot write stats to {}: {}", path, w.error().message());
        return false;
    }
    w->write(stats_to_json(s, outputs));
    if (auto ec = w->flush()) {
        spdlog::error("cannot write stats to {}: {}", path, ec.message());
        return false;
    }
    return true;
}

}  // namespace telecap::agent
