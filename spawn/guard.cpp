#include "spawn/guard.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <string_view>

#ifndef TELECAP_GUARD_RELDIR
#define TELECAP_GUARD_RELDIR "../libexec/telecap"
#endif

namespace telecap::spawn {
namespace {

// 0 if `path` is an executable regular file, else the errno that says why not.
int check_executable(const std::string& path) noexcept {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EACCES;
    if (::access(path.c_str(), X_OK) != 0) return errno;
    return 0;
}

Result<std::string> find_impl(const char* name, const char* path_env) {
    if (const char* env = path_env ? std::getenv(path_env) : nullptr;
        env != nullptr && *env != '\0') {
        std::string path = env;
        if (path.front() != '/') {
            char cwd[4096];
            if (::getcwd(cwd, sizeof cwd) == nullptr) return errno_code(errno);
            path = std::string(cwd) + "/" + path;
        }
        if (const int err = check_executable(path)) return errno_code(err);
        return path;
    }

    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) return errno_code(errno);
    std::string_view self(exe, static_cast<std::size_t>(n));
    const std::string dir(self.substr(0, self.rfind('/') + 1));  // keeps the final '/'
    for (std::string path : {dir + name, dir + TELECAP_GUARD_RELDIR + "/" + name}) {
        if (check_executable(path) == 0) return path;
    }
    return std::make_error_code(std::errc::no_such_file_or_directory);
}

}  // namespace

int guard_kill_signal() noexcept { return SIGRTMAX; }

Result<std::string> find_telecap_executable(const char* name, const char* path_env) noexcept {
    try {
        return find_impl(name, path_env);
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    }
}

Result<std::string> find_guard_executable() noexcept {
    return find_telecap_executable(guard_executable_name, guard_path_env);
}

}  // namespace telecap::spawn
