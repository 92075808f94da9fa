#pragma once
// For tests that drive a running `telecap run --control PATH` through `telecap ctl`.

#include <sys/stat.h>

#include <regex>
#include <string>
#include <vector>

#include "support/subprocess.hpp"

namespace telecap::test {

inline bool socket_ready(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// `telecap ctl --socket SOCK ARGS...` (TELECAP_BIN), run to its end.
inline result ctl(const std::string& sock, std::vector<std::string> args) {
    std::vector<std::string> argv{TELECAP_BIN, "ctl", "--socket", sock};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, "ctl");
}

// One field of one worker in a `ctl --json status` reply: a number, or a quoted word.
inline std::string worker_field(const std::string& status, const std::string& worker,
                                const std::string& field) {
    std::smatch m;
    const std::regex re("\"" + worker + "\":\\{\"pool\"[^{]*\"" + field + "\":(\"[a-z]+\"|[0-9]+)");
    return std::regex_search(status, m, re) ? std::string(m[1]) : "";
}

}  // namespace telecap::test
