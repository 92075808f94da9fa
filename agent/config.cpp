#include <yaml-cpp/yaml.h>

#include "agent/run.hpp"
#include "agent/validate.hpp"
#include "core/glob.hpp"
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

// The shared checks (agent/validate.hpp), reported at the value's line.
void need(const std::string& path, const YAML::Node& n, const char* key, const problem& p) {
    if (p) bad(path, n, std::string(key) + " " + *p);
}

long long integer(const std::string& path, const YAML::Node& n, const char* key,
                  problem (*check)(long long)) {
    const auto v = scalar<long long>(path, n, key);
    need(path, n, key, check(v));
    return v;
}

std::chrono::milliseconds millis(const std::string& path, const YAML::Node& n, const char* key) {
    const double s = scalar<double>(path, n, key);
    need(path, n, key, check_seconds(s));
    return to_millis(s);
}

std::vector<std::string> string_list(const std::string& path, const YAML::Node& n,
                                     const char* what) {
    if (!n.IsSequence()) bad(path, n, std::string(what) + " must be a list of strings");
    std::vector<std::string> out;
    for (const auto& item : n) out.push_back(scalar<std::string>(path, item, what));
    return out;
}

// Output specs, each checked (agent/validate.hpp check_output) at its own line.
std::vector<std::string> output_list(const std::string& path, const YAML::Node& n) {
    auto out = string_list(path, n, "outputs");
    for (std::size_t i = 0; i < out.size(); ++i)
        if (auto p = check_output(out[i])) bad(path, n[i], *p);
    return out;
}

void check_keys(const std::string& path, const YAML::Node& map,
                std::initializer_list<const char*> known) {
    for (const auto& kv : map) {
        const auto key = scalar<std::string>(path, kv.first, "a key");
        bool ok = false;
        for (const char* k : known) ok = ok || key == k;
        if (!ok) bad(path, kv.first, "unknown key \"" + key + "\"");
    }
}

void read_restart(const std::string& path, const YAML::Node& n, spawn::restart_options& r) {
    if (auto v = n["restart"]) {
        const auto text = scalar<std::string>(path, v, "restart");
        need(path, v, "restart", check_restart_mode(text));
        r.mode = *spawn::parse_restart_mode(text);
    }
    if (auto v = n["backoff_min"]) r.backoff_min = millis(path, v, "backoff_min");
    if (auto v = n["backoff_max"]) r.backoff_max = millis(path, v, "backoff_max");
    if (auto v = n["healthy_after"]) r.healthy_after = millis(path, v, "healthy_after");
    if (auto v = n["restart_window"]) r.restart_window = millis(path, v, "restart_window");
    if (auto v = n["max_restarts"])
        r.max_restarts = static_cast<int>(integer(path, v, "max_restarts", check_max_restarts));
    // Across keys: reported at the later key's line when it is there.
    const YAML::Node at_min = n["backoff_min"] ? n["backoff_min"] : n;
    if (auto p = check_backoff_min(r, spelling::yaml)) bad(path, at_min, *p);
    const YAML::Node at_max = n["backoff_max"] ? n["backoff_max"] : at_min;
    if (auto p = check_backoff_order(r, spelling::yaml)) bad(path, at_max, *p);
}

// A `control:` mapping (top level or a pool's): the gates' defaults, each value checked at
// its own line with the same checks as the control socket's commands.
control::controls read_controls(const std::string& path, const YAML::Node& n) {
    if (!n.IsMap()) bad(path, n, "control must be a mapping");
    check_keys(path, n,
               {"enabled", "sampling_rate", "sampling_patterns", "allow", "deny", "rate_limit"});
    control::controls c;
    const auto globs = [&](const YAML::Node& v, const char* key) {
        auto list = string_list(path, v, key);
        for (std::size_t i = 0; i < list.size(); ++i)
            if (auto e = glob_error(list[i])) bad(path, v[i], std::string(key) + ": " + *e);
        return list;
    };
    if (auto v = n["enabled"]) c.enabled = scalar<bool>(path, v, "enabled");
    if (n["sampling_rate"] || n["sampling_patterns"]) {
        control::sampling s;
        if (auto v = n["sampling_rate"]) {
            s.rate = scalar<double>(path, v, "sampling_rate");
            if (auto e = control::check(s)) bad(path, v, *e);
        }
        if (auto v = n["sampling_patterns"]) s.patterns = globs(v, "sampling_patterns");
        c.sample = std::move(s);
    }
    if (n["allow"] || n["deny"]) {
        control::filter f;
        if (auto v = n["allow"]) f.allow = globs(v, "allow");
        if (auto v = n["deny"]) f.deny = globs(v, "deny");
        c.filt = std::move(f);
    }
    if (auto v = n["rate_limit"]) {
        if (!v.IsMap()) bad(path, v, "rate_limit must be a mapping {events_per_second, burst}");
        check_keys(path, v, {"events_per_second", "burst"});
        control::rate_limit r;
        if (!v["events_per_second"]) bad(path, v, "rate_limit needs events_per_second");
        r.events_per_second = scalar<double>(path, v["events_per_second"], "events_per_second");
        if (auto b = v["burst"]) r.burst = scalar<double>(path, b, "burst");
        if (auto e = control::check(r)) bad(path, v, *e);
        c.limit = r;
    }
    return c;
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
               {"pools", "outputs", "passthrough", "catalog", "node", "queue", "queue_bytes",
                "line_budget", "overflow", "grace", "stop_signal", "label", "stats", "rejects",
                "prefix", "max_line", "metrics", "control", "unknown_events"});
    auto& c = o.capture;
    if (auto v = root["outputs"]) {
        auto list = output_list(path, v);
        c.outputs.insert(c.outputs.end(), list.begin(), list.end());
    }
    if (auto v = root["passthrough"]) c.passthrough = scalar<std::string>(path, v, "passthrough");
    if (auto v = root["catalog"]) c.catalog_path = scalar<std::string>(path, v, "catalog");
    if (auto v = root["node"]) c.node = scalar<std::string>(path, v, "node");
    if (auto v = root["stats"]) c.stats_path = scalar<std::string>(path, v, "stats");
    if (auto v = root["rejects"]) c.rejects_path = scalar<std::string>(path, v, "rejects");
    if (auto v = root["metrics"]) c.metrics_path = scalar<std::string>(path, v, "metrics");
    if (auto v = root["unknown_events"]) {
        c.unknown_events = scalar<std::string>(path, v, "unknown_events");
        need(path, v, "unknown_events", check_unknown_events(c.unknown_events));
    }
    if (auto v = root["prefix"]) {
        c.prefix = scalar<std::string>(path, v, "prefix");
        need(path, v, "prefix", check_prefix(c.prefix));
    }
    if (auto v = root["max_line"])
        c.max_line = static_cast<std::size_t>(integer(path, v, "max_line", check_max_line));
    if (auto v = root["queue"])
        o.queue = static_cast<std::size_t>(integer(path, v, "queue", check_queue));
    if (auto v = root["queue_bytes"])
        o.queue_bytes =
            static_cast<std::size_t>(integer(path, v, "queue_bytes", check_queue_bytes));
    if (auto v = root["line_budget"])
        o.line_budget =
            static_cast<std::size_t>(integer(path, v, "line_budget", check_line_budget));
    if (auto v = root["label"]) o.label = scalar<bool>(path, v, "label");
    if (auto v = root["grace"]) o.grace = millis(path, v, "grace");
    if (auto v = root["stop_signal"]) {
        const auto text = scalar<std::string>(path, v, "stop_signal");
        need(path, v, "stop_signal", check_stop_signal(text));
        o.stop_signal = spawn::parse_signal(text);
    }
    if (auto v = root["overflow"]) {
        const auto text = scalar<std::string>(path, v, "overflow");
        need(path, v, "overflow", check_overflow(text));
        o.overflow = parse_overflow(text);
    }

    if (auto v = root["control"]) control::merge(o.controls.global, read_controls(path, v));

    const auto pools = root["pools"];
    if (!pools || !pools.IsSequence() || pools.size() == 0)
        bad(path, pools ? pools : root, "\"pools\" must be a non-empty list");
    for (const auto& p : pools) {
        if (!p.IsMap()) bad(path, p, "each pool must be a mapping");
        check_keys(path, p,
                   {"name", "command", "env", "cwd", "instances", "restart", "backoff_min",
                    "backoff_max", "healthy_after", "restart_window", "max_restarts", "outputs",
                    "catalog", "capture_stdout", "telemetry_fd", "control"});
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
            for (const auto& kv : v) {
                const auto key = scalar<std::string>(path, kv.first, "env key");
                need(path, kv.first, "env key", check_env_key(key));
                const auto value = scalar<std::string>(path, kv.second, "env");
                if (auto e = check_env_value(value))
                    bad(path, kv.second, "env value of \"" + key + "\" " + *e);
                spec.env[key] = value;
            }
        }
        if (auto v = p["cwd"]) {
            // Checked now, not at the first spawn, so the error has a line number.
            spec.cwd = scalar<std::string>(path, v, "cwd");
            need(path, v, "cwd", check_cwd(spec.cwd));
        }
        if (auto v = p["instances"])
            spec.instances = static_cast<int>(integer(path, v, "instances", check_instances));
        read_restart(path, p, spec.restart);
        if (auto v = p["outputs"]) spec.outputs = output_list(path, v);
        if (auto v = p["catalog"]) spec.catalog_path = scalar<std::string>(path, v, "catalog");
        if (auto v = p["capture_stdout"])
            spec.capture_stdout = scalar<bool>(path, v, "capture_stdout");
        if (auto v = p["telemetry_fd"])
            spec.telemetry_fd =
                static_cast<int>(integer(path, v, "telemetry_fd", check_telemetry_fd));
        if (auto v = p["control"]) o.controls.pools[spec.name] = read_controls(path, v);
        o.pools.push_back(std::move(spec));
    }
    // A net for rules without a line of their own; everything above has one.
    if (auto e = validate(o, spelling::yaml)) throw usage_error(path + ": " + *e);
}

}  // namespace telecap::agent
