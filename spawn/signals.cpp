#include "spawn/signals.hpp"

#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <charconv>

namespace telecap::spawn {
namespace {

// Parses a whole decimal number in [lo, hi], or returns -1.
int parse_number(std::string_view text, int lo, int hi) noexcept {
    int value = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < lo || value > hi) {
        return -1;
    }
    return value;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace

sigset_t loop_signal_set() noexcept {
    sigset_t set;
    ::sigemptyset(&set);
    for (int sig : forwarded_signals) ::sigaddset(&set, sig);
    ::sigaddset(&set, SIGCHLD);
    return set;
}

std::error_code block_signals(const sigset_t& set, sigset_t* old) noexcept {
    // pthread_sigmask returns the error number instead of setting errno.
    return errno_code(::pthread_sigmask(SIG_BLOCK, &set, old));
}

Result<unique_fd> make_signalfd(const sigset_t& set) noexcept {
    const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    return unique_fd(fd);
}

std::error_code forward_signal(pid_t target, int sig, bool to_group) noexcept {
    if (target <= 0 || (to_group && target == 1)) {
        return std::make_error_code(std::errc::invalid_argument);
    }
    if (::kill(to_group ? -target : target, sig) != 0 && errno != ESRCH) {
        return errno_code(errno);
    }
    return {};
}

std::string signal_name(int sig) {
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

int parse_signal(std::string_view text) noexcept {
    if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
        return parse_number(text, 1, NSIG - 1);
    }
    if (istarts_with(text, "SIG")) text.remove_prefix(3);
    if (istarts_with(text, "RTMIN+")) {
        const int offset = parse_number(text.substr(6), 0, SIGRTMAX - SIGRTMIN);
        return offset < 0 ? -1 : SIGRTMIN + offset;
    }
    if (iequals(text, "RTMIN")) return SIGRTMIN;
    if (iequals(text, "RTMAX")) return SIGRTMAX;
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        const char* abbrev = ::sigabbrev_np(sig);
        if (abbrev != nullptr && iequals(text, abbrev)) return sig;
    }
    return -1;
}

}  // namespace telecap::spawn
