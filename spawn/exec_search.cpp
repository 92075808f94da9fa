#include "spawn/exec_search.hpp"

#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace telecap::spawn {

std::vector<std::string> exec_candidates(const std::string& file, const char* path) {
    std::vector<std::string> out;
    if (file.find('/') != std::string::npos) {
        out.push_back(file);
        return out;
    }
    if (file.empty()) return out;  // matches nothing: ENOENT
    std::string_view rest = path != nullptr ? path : "/bin:/usr/bin";
    while (true) {
        const std::size_t colon = rest.find(':');
        const std::string_view dir = rest.substr(0, colon);
        out.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + file);
        if (colon == std::string_view::npos) break;
        rest.remove_prefix(colon + 1);
    }
    return out;
}

int exec_candidates_errno(const char* const* candidates, std::size_t count, char* const argv[],
                          char* const envp[]) noexcept {
    bool saw_eacces = false;
    int last_err = ENOENT;  // with no candidates at all (empty argv[0])
    for (std::size_t i = 0; i < count; ++i) {
        ::execve(candidates[i], argv, envp);
        const int err = last_err = errno;
        if (err == EACCES) {
            saw_eacces = true;
        } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
                   err != ETIMEDOUT) {
            return err;
        }
    }
    return saw_eacces ? EACCES : last_err;
}

}  // namespace telecap::spawn
