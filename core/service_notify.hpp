#pragma once
// The service manager's readiness protocol (sd_notify(3)) without libsystemd: under systemd with
// Type=notify, NOTIFY_SOCKET names a datagram socket (a path, or "@name" in the abstract
// namespace) that takes newline-separated KEY=VALUE states: READY=1, RELOADING=1, STOPPING=1.
// Without NOTIFY_SOCKET every call does nothing.

#include <string>
#include <string_view>

namespace telecap {

class service_notifier {
public:
    service_notifier() = default;
    // Takes NOTIFY_SOCKET and removes it from the environment, so that the processes telecap
    // starts do not inherit it (systemd would refuse or misread their messages). Call before
    // any thread exists (setenv/unsetenv are not thread-safe).
    static service_notifier from_environment();
    explicit service_notifier(std::string address) : address_(std::move(address)) {}

    bool active() const noexcept { return !address_.empty(); }
    // Sends `state` in one datagram. False when inactive or the send failed: the service manager
    // then never hears it, and the caller decides whether to say so.
    bool send(std::string_view state) const noexcept;

private:
    std::string address_;
};

}  // namespace telecap
