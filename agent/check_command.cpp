// telecap run --check: everything a start would check, without starting anything (no worker,
// no file opened, no port bound): the config (its own checks, at their lines, in load_config),
// the catalogs, the metrics file, the files to write and whether two uses share one.

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "agent/commands.hpp"
#include "agent/reload.hpp"
#include "agent/run.hpp"
#include "agent/validate.hpp"

namespace telecap::agent {

namespace {

// The file a use writes ("" when it writes none: stdout, a socket, the network).
std::string file_of_output(const std::string& spec) {
    if (spec.starts_with("jsonl:") && spec != "jsonl:-") return spec.substr(6);
    return {};
}

}  // namespace

int run_check(const run_options& ro, const std::string& config_path) {
    run_options o = ro;
    resolve_catalog_paths(o);
    std::set<std::string> catalogs{o.capture.catalog_path};
    for (const auto& pool : o.pools) catalogs.insert(pool.catalog_path);
    for (const auto& path : catalogs) {
        capture_options co = o.capture;
        co.catalog_path = path;
        (void)load_catalog(co);
    }
    (void)load_metrics(o.capture.metrics_path);

    // Each file written, by one use only (as stream_set checks when they are opened).
    std::vector<std::pair<std::string, std::string>> files;  // path, use
    for (const auto& spec : o.capture.outputs)
        if (auto f = file_of_output(spec); !f.empty()) files.emplace_back(f, "output " + spec);
    for (const auto& pool : o.pools)
        for (const auto& spec : pool.outputs)
            if (auto f = file_of_output(spec); !f.empty())
                files.emplace_back(f, "pool \"" + pool.name + "\" output " + spec);
    const auto& pt = o.capture.passthrough;
    if (pt != "stderr" && pt != "stdout" && pt != "none") files.emplace_back(pt, "--passthrough");
    if (!o.capture.rejects_path.empty()) files.emplace_back(o.capture.rejects_path, "--rejects");
    if (!o.capture.stats_path.empty()) files.emplace_back(o.capture.stats_path, "--stats");
    std::map<std::string, std::string> seen;  // canonical path -> use
    for (const auto& [path, use] : files) {
        std::error_code ec;
        auto canon = std::filesystem::weakly_canonical(path, ec).string();
        if (ec) canon = path;
        const auto [it, fresh] = seen.emplace(canon, use);
        // A pool's output may name the file of a top-level one only once: the same rule.
        if (!fresh)
            throw usage_error(use + " and " + it->second + " are both " + path +
                              ": give each its own file");
    }
    if (!o.capture.stats_path.empty())
        if (auto p = check_writable(o.capture.stats_path))
            throw usage_error("cannot write stats to " + o.capture.stats_path + ": " + *p);

    std::size_t outputs = o.capture.outputs.empty() ? 1 : o.capture.outputs.size();
    std::string names;
    for (const auto& pool : o.pools) {
        outputs += pool.outputs.size();
        names +=
            (names.empty() ? "" : ", ") + pool.name + " (" + std::to_string(pool.instances) + ")";
    }
    std::printf("%s: ok: %zu pool%s: %s; %zu output%s\n",
                config_path.empty() ? "command line" : config_path.c_str(), o.pools.size(),
                o.pools.size() == 1 ? "" : "s", names.c_str(), outputs, outputs == 1 ? "" : "s");
    return 0;
}

}  // namespace telecap::agent
