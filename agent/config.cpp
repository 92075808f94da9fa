#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <type_traits>

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

bool variable_name(std::string_view name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

// ${VAR} and ${VAR:-default} in a value, from telecap's environment (as docker compose does):
// the default when VAR is unset or empty; VAR unset without a default is an error at the
// value's line. $${ stands for a literal ${ (a shell script in a command).
std::string expand(const std::string& path, const YAML::Node& n, const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        if (text.compare(i, 3, "$${") == 0) {
            out += "${";
            i += 3;
            continue;
        }
        if (text.compare(i, 2, "${") != 0) {
            out += text[i++];
            continue;
        }
        const auto close = text.find('}', i + 2);
        if (close == std::string::npos) bad(path, n, "\"${\" without a closing \"}\"");
        const std::string inner = text.substr(i + 2, close - i - 2);
        const auto sep = inner.find(":-");
        const std::string name = inner.substr(0, sep);
        if (!variable_name(name))
            bad(path, n,
                "\"${" + inner +
                    "}\" is not a variable (${NAME} or ${NAME:-default}; $${ for a "
                    "literal ${)");
        const char* v = std::getenv(name.c_str());
        if (sep != std::string::npos && (!v || !*v))
            out += inner.substr(sep + 2);
        else if (v)
            out += v;
        else
            bad(path, n,
                "${" + name + "} is not set (export it, or give a default: ${" + name +
                    ":-VALUE})");
        i = close + 1;
    }
    return out;
}

// A value, with ${VAR} expanded (agent/config.cpp expand), as T.
template <typename T>
T scalar(const std::string& path, const YAML::Node& n, const char* what) {
    try {
        if (n.IsScalar() && n.Scalar().find("${") != std::string::npos) {
            std::string text = expand(path, n, n.Scalar());
            if constexpr (std::is_same_v<T, std::string>)
                return text;
            else
                return YAML::Node(text).as<T>();
        }
        return n.as<T>();
    } catch (const YAML::Exception&) {
        bad(path, n, std::string(what) + " has the wrong type");
    }
}

// A mapping's key, as written (keys are names: no ${VAR}).
std::string key_of(const std::string& path, const YAML::Node& n, const char* what) {
    try {
        return n.as<std::string>();
    } catch (const YAML::Exception&) {
        bad(path, n, std::string(what) + " has the wrong type");
    }
}

// A relative path in the config is relative to the config file's folder, wherever telecap
// is started from; an absolute one (and "", "-") stays.
struct paths_from {
    std::filesystem::path dir;
    std::string operator()(const std::string& p) const {
        if (p.empty() || p == "-" || p.front() == '/') return p;
        return (dir / p).lexically_normal().string();
    }
    // The file of an output spec: jsonl:PATH and unix:PATH[?options]; the others stay.
    std::string output(const std::string& spec) const {
        for (const char* kind : {"jsonl:", "unix:"})
            if (spec.starts_with(kind)) {
                const std::size_t n = std::strlen(kind);
                return kind + (*this)(spec.substr(n));
            }
        return spec;
    }
    // --passthrough: a file, or one of the names.
    std::string passthrough(const std::string& p) const {
        return p == "stderr" || p == "stdout" || p == "none" ? p : (*this)(p);
    }
};

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

// Seconds, checked (check_seconds unless a narrower check is given), as milliseconds.
std::chrono::milliseconds millis(const std::string& path, const YAML::Node& n, const char* key,
                                 problem (*check)(double) = check_seconds) {
    const double s = scalar<double>(path, n, key);
    need(path, n, key, check(s));
    return to_millis(s);
}

std::vector<std::string> string_list(const std::string& path, const YAML::Node& n,
                                     const char* what) {
    if (!n.IsSequence()) bad(path, n, std::string(what) + " must be a list of strings");
    std::vector<std::string> out;
    for (const auto& item : n) out.push_back(scalar<std::string>(path, item, what));
    return out;
}

// Output specs, each checked (agent/validate.hpp check_output) at its own line, their files
// relative to the config's folder.
std::vector<std::string> output_list(const std::string& path, const YAML::Node& n,
                                     const paths_from& from) {
    auto out = string_list(path, n, "outputs");
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = from.output(out[i]);
        if (auto p = check_output(out[i])) bad(path, n[i], *p);
    }
    return out;
}

void check_keys(const std::string& path, const YAML::Node& map,
                std::initializer_list<const char*> known) {
    for (const auto& kv : map) {
        const auto key = key_of(path, kv.first, "a key");
        bool ok = false;
        for (const char* k : known) ok = ok || key == k;
        if (!ok) bad(path, kv.first, "unknown key \"" + key + "\"");
    }
}

// A file telecap will write (an output, pass-through, rejects, stats): it must be writable, or
// creatable in an existing folder. access(2) only: nothing is created or opened.
void need_writable_file(const std::string& path, const YAML::Node& n, const char* key,
                        const std::string& file) {
    if (::access(file.c_str(), F_OK) == 0) {
        if (::access(file.c_str(), W_OK) != 0)
            bad(path, n, std::string(key) + ": cannot write " + file + ": " + std::strerror(errno));
        return;
    }
    const auto dir = std::filesystem::path(file).parent_path();
    const std::string d = dir.empty() ? "." : dir.string();
    if (::access(d.c_str(), W_OK | X_OK) != 0)
        bad(path, n,
            std::string(key) + ": cannot create " + file + ": " + d + ": " + std::strerror(errno));
}

// The file of a jsonl output (unix sockets are made at start: their folder must exist).
void need_output_files(const std::string& path, const YAML::Node& n,
                       const std::vector<std::string>& specs) {
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& spec = specs[i];
        if (spec.starts_with("jsonl:") && spec.size() > 6 && spec != "jsonl:-")
            need_writable_file(path, n[i], "outputs", spec.substr(6));
    }
}

// A catalog file, loaded as a start would: its problem at the key's line.
void need_catalog(const std::string& path, const YAML::Node& n, const std::string& file) {
    try {
        (void)catalog::from_file(file);
    } catch (const catalog_error& e) {
        bad(path, n, std::string("bad catalog: ") + e.what());
    }
}

// The first word of a command: a path (from the pool's cwd) or a program on PATH.
problem command_problem(const std::vector<std::string>& command, const std::string& cwd) {
    const std::string& prog = command.front();
    const auto runnable = [](const std::string& f) {
        struct stat st {};
        return ::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(f.c_str(), X_OK) == 0;
    };
    if (prog.find('/') != std::string::npos) {
        const std::string f = prog.front() == '/' || cwd.empty() ? prog : cwd + "/" + prog;
        if (runnable(f)) return std::nullopt;
        return "command \"" + prog + "\" is not an executable file";
    }
    const char* env_path = std::getenv("PATH");
    std::string_view dirs = env_path ? env_path : "/usr/local/bin:/usr/bin:/bin";
    while (true) {
        const auto colon = dirs.find(':');
        std::string dir(dirs.substr(0, colon));
        if (runnable((dir.empty() ? "." : dir) + "/" + prog)) return std::nullopt;
        if (colon == std::string_view::npos) break;
        dirs.remove_prefix(colon + 1);
    }
    return "command \"" + prog + "\" is not found on PATH";
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
        if (auto b = v["burst"]) {
            r.burst = scalar<double>(path, b, "burst");
            if (r.burst == 0)  // 0 would silently mean the default
                bad(path, b, "burst must be at least 1 (leave it out for the default)");
        }
        if (auto e = control::check(r)) bad(path, v, *e);
        c.limit = r;
    }
    return c;
}

}  // namespace

void load_config(const std::string& path, run_options& o, bool check) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        throw usage_error(path + ": cannot read config file");
    } catch (const YAML::ParserException& e) {
        throw usage_error(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!root.IsMap()) bad(path, root, "the config must be a mapping with a \"pools\" list");
    std::error_code ec;
    const paths_from from{std::filesystem::absolute(path, ec).parent_path()};
    check_keys(path, root, {"pools",     "outputs",     "passthrough", "catalog",  "node",
                            "queue",     "queue_bytes", "line_budget", "overflow", "dispatch",
                            "grace",     "stop_signal", "label",       "stats",    "rejects",
                            "prefix",    "max_line",    "metrics",     "control",  "unknown_events",
                            "burst_hold"});
    auto& c = o.capture;
    if (auto v = root["outputs"]) {
        auto list = output_list(path, v, from);
        need_output_files(path, v, list);
        c.outputs.insert(c.outputs.end(), list.begin(), list.end());
    }
    if (auto v = root["passthrough"]) {
        c.passthrough = from.passthrough(scalar<std::string>(path, v, "passthrough"));
        if (c.passthrough != "stderr" && c.passthrough != "stdout" && c.passthrough != "none")
            need_writable_file(path, v, "passthrough", c.passthrough);
    }
    if (auto v = root["catalog"]) {
        c.catalog_path = from(scalar<std::string>(path, v, "catalog"));
        need_catalog(path, v, c.catalog_path);
    }
    if (auto v = root["node"]) c.node = scalar<std::string>(path, v, "node");
    if (auto v = root["stats"]) {
        c.stats_path = from(scalar<std::string>(path, v, "stats"));
        need_writable_file(path, v, "stats", c.stats_path);
    }
    if (auto v = root["rejects"]) {
        c.rejects_path = from(scalar<std::string>(path, v, "rejects"));
        need_writable_file(path, v, "rejects", c.rejects_path);
    }
    if (auto v = root["metrics"]) {
        c.metrics_path = from(scalar<std::string>(path, v, "metrics"));
        try {
            (void)load_metrics(c.metrics_path);
        } catch (const usage_error& e) {
            bad(path, v, e.what());
        }
    }
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
    if (auto v = root["burst_hold"]) o.burst_hold = millis(path, v, "burst_hold", check_burst_hold);
    if (auto v = root["dispatch"]) {
        const auto text = scalar<std::string>(path, v, "dispatch");
        need(path, v, "dispatch", check_dispatch(text));
        o.dispatch = parse_dispatch(text);
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
                    "catalog", "capture_stdout", "telemetry_fd", "control", "grpc"});
        pool_spec spec;
        spec.restart.mode = spawn::restart_mode::on_failure;  // the default in a config
        if (auto v = p["name"]) spec.name = scalar<std::string>(path, v, "name");
        for (const auto& other : o.pools)
            if (other.name == spec.name) bad(path, p, "duplicate pool name \"" + spec.name + "\"");
        // Without a command the pool is a gRPC worker telecap dials but does not start.
        if (!p["command"] && !p["grpc"])
            bad(path, p,
                "pool \"" + spec.name +
                    "\" has no command (nor grpc: an address to dial a worker running elsewhere)");
        if (p["command"]) {
            spec.command = string_list(path, p["command"], "command");
            if (spec.command.empty()) bad(path, p["command"], "command must not be empty");
        }
        if (auto v = p["env"]) {
            if (!v.IsMap()) bad(path, v, "env must be a mapping");
            for (const auto& kv : v) {
                const auto key = key_of(path, kv.first, "env key");
                need(path, kv.first, "env key", check_env_key(key));
                const auto value = scalar<std::string>(path, kv.second, "env");
                if (auto e = check_env_value(value))
                    bad(path, kv.second, "env value of \"" + key + "\" " + *e);
                spec.env[key] = value;
            }
        }
        if (auto v = p["cwd"]) {
            // Checked now, not at the first spawn, so the error has a line number.
            spec.cwd = from(scalar<std::string>(path, v, "cwd"));
            need(path, v, "cwd", check_cwd(spec.cwd));
        }
        if (auto v = p["instances"])
            spec.instances = static_cast<int>(integer(path, v, "instances", check_instances));
        read_restart(path, p, spec.restart);
        if (auto v = p["outputs"]) {
            spec.outputs = output_list(path, v, from);
            need_output_files(path, v, spec.outputs);
        }
        if (auto v = p["catalog"]) {
            spec.catalog_path = from(scalar<std::string>(path, v, "catalog"));
            need_catalog(path, v, spec.catalog_path);
        }
        // A start would run it and see it fail (127); --check says so now.
        if (check && !spec.command.empty())
            if (auto e = command_problem(spec.command, spec.cwd)) bad(path, p["command"], *e);
        if (auto v = p["capture_stdout"])
            spec.capture_stdout = scalar<bool>(path, v, "capture_stdout");
        if (auto v = p["telemetry_fd"])
            spec.telemetry_fd =
                static_cast<int>(integer(path, v, "telemetry_fd", check_telemetry_fd));
        if (auto v = p["grpc"]) {
            spec.grpc = scalar<std::string>(path, v, "grpc");
            need(path, v, "grpc", check_grpc_address(spec.grpc));
            if (spec.remote()) need(path, v, "grpc", check_remote_worker(spec));
        }
        if (auto v = p["control"]) o.controls.pools[spec.name] = read_controls(path, v);
        o.pools.push_back(std::move(spec));
    }
    // A net for rules without a line of their own; everything above has one.
    if (auto e = validate(o, spelling::yaml)) throw usage_error(path + ": " + *e);
}

}  // namespace telecap::agent
