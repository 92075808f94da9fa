#include <yaml-cpp/yaml.h>

#include "agent/run.hpp"
#include "spawn/signals.hpp"

namespace telecap::agent {

namespace {

[[noreturn]] void bad(const std::string& path, const YAML::Node& n, const std::string& what) {
    const auto mark = n.Mark();
    throw usage_error(path + ":" + std::to_string(mark.line + 1) + ": " + what);
}

template <typename T>
T scalar(const std::string& path, const YAML::Node& n, const char* what) {
    try {
        return n.as<T>();
    } catch (const YAML::Exception&) {
        bad(path, n, std::string(what) + " has the wrong type");
    }
}

std::chrono::milliseconds millis(const std::string& path, const YAML::Node& n, const char* what) {
    const double s = scalar<double>(path, n, what);
    if (s < 0) bad(path, n, std::string(what) + " must not be negative");
    return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

std::vector<std::string> string_list(const std::string& path, const YAML::Node& n,
                                     const char* what) {
    if (!n.IsSequence()) bad(path, n, std::string(what) + " must be a list of strings");
    std::vector<std::string> out;
    for (const auto& item : n) out.push_back(scalar<std::string>(path, item, what));
    return out;
}

void check_keys(const std::string& path, const YAML::Node& map,
                std::initializer_list<const char*> known) {
    for (const auto& kv : map) {
        const auto key = kv.first.as<std::string>();
        bool ok = false;
        for (const char* k : known) ok = ok || key == k;
        if (!ok) bad(path, kv.first, "unknown key \"" + key + "\"");
    }
}

void read_restart(const std::string& path, const YAML::Node& n, spawn::restart_options& r) {
    if (auto v = n["restart"]) {
        const auto mode = spawn::parse_restart_mode(scalar<std::string>(path, v, "restart"));
        if (!mode) bad(path, v, "restart must be never, on-failure or always");
        r.mode = *mode;
    }
    if (auto v = n["backoff_min"]) r.backoff_min = millis(path, v, "backoff_min");
    if (auto v = n["backoff_max"]) r.backoff_max = millis(path, v, "backoff_max");
    if (auto v = n["healthy_after"]) r.healthy_after = millis(path, v, "healthy_after");
    if (auto v = n["restart_window"]) r.restart_window = millis(path, v, "restart_window");
    if (auto v = n["max_restarts"]) r.max_restarts = scalar<int>(path, v, "max_restarts");
}

}  // namespace

void load_config(const std::string& path, run_options& o) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        throw usage_error(path + ": cannot read config file");
    } catch (const YAML::ParserException& e) {
        throw usage_error(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!root.IsMap()) bad(path, root, "the config must be a mapping with a \"pools\" list");
    check_keys(path, root,
               {"pools", "outputs", "passthrough", "catalog", "node", "queue", "queue_bytes", "overflow",
                "grace", "stop_signal", "label", "stats", "rejects", "prefix", "max_line"});
    auto& c = o.capture;
    if (auto v = root["outputs"]) {
        auto list = string_list(path, v, "outputs");
        c.outputs.insert(c.outputs.end(), list.begin(), list.end());
    }
    if (auto v = root["passthrough"]) c.passthrough = scalar<std::string>(path, v, "passthrough");
    if (auto v = root["catalog"]) c.catalog_path = scalar<std::string>(path, v, "catalog");
    if (auto v = root["node"]) c.node = scalar<std::string>(path, v, "node");
    if (auto v = root["stats"]) c.stats_path = scalar<std::string>(path, v, "stats");
    if (auto v = root["rejects"]) c.rejects_path = scalar<std::string>(path, v, "rejects");
    if (auto v = root["prefix"]) c.prefix = scalar<std::string>(path, v, "prefix");
    if (auto v = root["max_line"]) c.max_line = scalar<std::size_t>(path, v, "max_line");
    if (auto v = root["queue"]) o.queue = scalar<std::size_t>(path, v, "queue");
    if (auto v = root["queue_bytes"]) o.queue_bytes = scalar<std::size_t>(path, v, "queue_bytes");
    if (auto v = root["label"]) o.label = scalar<bool>(path, v, "label");
    if (auto v = root["grace"]) o.grace = millis(path, v, "grace");
    if (auto v = root["stop_signal"]) {
        o.stop_signal = spawn::parse_signal(scalar<std::string>(path, v, "stop_signal"));
        if (o.stop_signal <= 0) bad(path, v, "stop_signal is not a signal name");
    }
    if (auto v = root["overflow"]) {
        const auto s = scalar<std::string>(path, v, "overflow");
        if (s == "drop-newest") o.overflow = overflow_policy::drop_newest;
        else if (s == "block") o.overflow = overflow_policy::block;
        else bad(path, v, "overflow must be drop-newest or block");
    }

    const auto pools = root["pools"];
    if (!pools || !pools.IsSequence() || pools.size() == 0)
        bad(path, pools ? pools : root, "\"pools\" must be a non-empty list");
    for (const auto& p : pools) {
        if (!p.IsMap()) bad(path, p, "each pool must be a mapping");
        check_keys(path, p,
                   {"name", "command", "env", "cwd", "instances", "restart", "backoff_min",
                    "backoff_max", "healthy_after", "restart_window", "max_restarts", "outputs",
                    "catalog", "capture_stdout", "telemetry_fd"});
        pool_spec spec;
        spec.restart.mode = spawn::restart_mode::on_failure;  // the default in a config
        if (auto v = p["name"]) spec.name = scalar<std::string>(path, v, "name");
        for (const auto& other : o.pools)
            if (other.name == spec.name) bad(path, p, "duplicate pool name \"" + spec.name + "\"");
        if (!p["command"]) bad(path, p, "pool \"" + spec.name + "\" has no command");
        spec.command = string_list(path, p["command"], "command");
        if (spec.command.empty()) bad(path, p["command"], "command must not be empty");
        if (auto v = p["env"]) {
            if (!v.IsMap()) bad(path, v, "env must be a mapping");
            for (const auto& kv : v)
                spec.env[kv.first.as<std::string>()] = scalar<std::string>(path, kv.second, "env");
        }
        if (auto v = p["cwd"]) spec.cwd = scalar<std::string>(path, v, "cwd");
        if (auto v = p["instances"]) {
            spec.instances = scalar<int>(path, v, "instances");
            if (spec.instances < 1 || spec.instances > 10000)
                bad(path, v, "instances must be between 1 and 10000");
        }
        read_restart(path, p, spec.restart);
        if (auto v = p["outputs"]) spec.outputs = string_list(path, v, "outputs");
        if (auto v = p["catalog"]) spec.catalog_path = scalar<std::string>(path, v, "catalog");
        if (auto v = p["capture_stdout"])
            spec.capture_stdout = scalar<bool>(path, v, "capture_stdout");
        if (auto v = p["telemetry_fd"]) {
            spec.telemetry_fd = scalar<int>(path, v, "telemetry_fd");
            if (spec.telemetry_fd < 3) bad(path, v, "telemetry_fd must be 3 or more");
        }
        o.pools.push_back(std::move(spec));
    }
}

}  // namespace telecap::agent
