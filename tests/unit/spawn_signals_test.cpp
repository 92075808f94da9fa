// The pure parts of spawn/: signal names, status and error mapping. No processes.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>

#include "spawn/reaper.hpp"
#include "spawn/signals.hpp"
#include "spawn/spawner.hpp"

namespace ts = telecap::spawn;

TEST(signal_name, names_standard_and_realtime_signals) {
    EXPECT_EQ(ts::signal_name(SIGTERM), "SIGTERM");
    EXPECT_EQ(ts::signal_name(SIGKILL), "SIGKILL");
    EXPECT_EQ(ts::signal_name(SIGUSR2), "SIGUSR2");
    EXPECT_EQ(ts::signal_name(SIGRTMIN), "SIGRTMIN+0");
    EXPECT_EQ(ts::signal_name(SIGRTMIN + 3), "SIGRTMIN+3");
    EXPECT_EQ(ts::signal_name(0), "signal 0");
    EXPECT_EQ(ts::signal_name(1000), "signal 1000");
}

TEST(parse_signal, accepts_names_prefixes_and_numbers) {
    EXPECT_EQ(ts::parse_signal("TERM"), SIGTERM);
    EXPECT_EQ(ts::parse_signal("SIGTERM"), SIGTERM);
    EXPECT_EQ(ts::parse_signal("sigterm"), SIGTERM);
    EXPECT_EQ(ts::parse_signal("15"), SIGTERM);
    EXPECT_EQ(ts::parse_signal("9"), SIGKILL);
    EXPECT_EQ(ts::parse_signal("HUP"), SIGHUP);
    EXPECT_EQ(ts::parse_signal("SIGUSR1"), SIGUSR1);
    EXPECT_EQ(ts::parse_signal("RTMIN+2"), SIGRTMIN + 2);
    EXPECT_EQ(ts::parse_signal("SIGRTMAX"), SIGRTMAX);
}

TEST(parse_signal, rejects_bad_input) {
    for (const char* bad : {"", "SIG", "FOO", "SIGFOO", "0", "-1", "15x", " 15", "TERM ",
                            "99999999999", "65", "RTMIN+99", "RTMIN+", "SIGSIGTERM"}) {
        EXPECT_EQ(ts::parse_signal(bad), -1) << '"' << bad << '"';
    }
}

TEST(parse_signal, round_trips_every_named_signal) {
    for (int sig = 1; sig <= SIGRTMAX; ++sig) {
        const std::string name = ts::signal_name(sig);
        if (name.starts_with("signal ")) continue;  // glibc-internal 32 and 33
        EXPECT_EQ(ts::parse_signal(name), sig) << name;
        EXPECT_EQ(ts::parse_signal(std::to_string(sig)), sig);
    }
}

TEST(forwarded_signals, loop_set_adds_sigchld) {
    const sigset_t set = ts::loop_signal_set();
    for (int sig : ts::forwarded_signals) EXPECT_EQ(sigismember(&set, sig), 1) << sig;
    EXPECT_EQ(sigismember(&set, SIGCHLD), 1);
    EXPECT_EQ(sigismember(&set, SIGKILL), 0);
    EXPECT_EQ(sigismember(&set, SIGPIPE), 0);
}

TEST(exit_code_from_status, maps_exits_signals_and_stops) {
    EXPECT_EQ(ts::exit_code_from_status(W_EXITCODE(0, 0)), 0);
    EXPECT_EQ(ts::exit_code_from_status(W_EXITCODE(3, 0)), 3);
    EXPECT_EQ(ts::exit_code_from_status(W_EXITCODE(255, 0)), 255);
    EXPECT_EQ(ts::exit_code_from_status(W_EXITCODE(0, SIGTERM)), 143);
    EXPECT_EQ(ts::exit_code_from_status(W_EXITCODE(0, SIGKILL) | WCOREFLAG), 137);
    EXPECT_EQ(ts::exit_code_from_status(W_STOPCODE(SIGSTOP)), -1);
}

TEST(exit_code_for_spawn_error, not_found_is_127_else_126) {
    const auto sys = [](int e) { return std::error_code(e, std::system_category()); };
    EXPECT_EQ(ts::exit_code_for_spawn_error(sys(ENOENT)), 127);
    EXPECT_EQ(ts::exit_code_for_spawn_error(sys(ENOTDIR)), 127);
    EXPECT_EQ(
        ts::exit_code_for_spawn_error(std::make_error_code(std::errc::no_such_file_or_directory)),
        127);
    EXPECT_EQ(ts::exit_code_for_spawn_error(sys(EACCES)), 126);
    EXPECT_EQ(ts::exit_code_for_spawn_error(sys(EPERM)), 126);
    EXPECT_EQ(ts::exit_code_for_spawn_error(sys(ENOEXEC)), 126);
    EXPECT_EQ(ts::exit_code_for_spawn_error(sys(E2BIG)), 126);
}
