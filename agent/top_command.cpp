// telecap top: a live view of a running telecap (docs/top.md). The snapshots, rates, sorting
// and text are control/top_model.hpp's and control/top_text.hpp's; this file is the terminal:
// raw mode and the alternate screen (plain ANSI escapes, restored on every way out), keys,
// SIGWINCH, and the plain one-shot print when there is no terminal.

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>

#include "agent/commands.hpp"
#include "control/client.hpp"
#include "control/top_model.hpp"
#include "control/top_text.hpp"

namespace telecap::agent {

namespace {

namespace top = control::top;
using clock = std::chrono::steady_clock;

// How long one status request may take before telecap counts as gone.
constexpr std::chrono::milliseconds reply_timeout{5000};

std::optional<std::string> fetch(const std::string& socket, top::snapshot& out) {
    std::string reply;
    if (auto e = control::exchange(socket, R"({"cmd":"status"})", reply_timeout, reply)) return e;
    if (auto e = top::parse_status(reply, out)) return "status refused: " + *e;
    return std::nullopt;
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n > 0)
            off += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EINTR && errno != EAGAIN)
            return;  // the terminal is gone; the next request or key ends the loop
    }
}

void sleep_for(std::chrono::milliseconds d) {
    timespec ts{static_cast<time_t>(d.count() / 1000),
                static_cast<long>(d.count() % 1000) * 1000000};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

// The terminal's width (and height), or 0 when fd is not a terminal.
std::pair<std::size_t, std::size_t> terminal_size(int fd) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return {0, 0};
    return {ws.ws_col, ws.ws_row};
}

// COLUMNS when it is a number, else 0 (no limit).
std::size_t columns_from_env() {
    const char* c = std::getenv("COLUMNS");
    if (!c || !*c) return 0;
    char* end = nullptr;
    const long n = std::strtol(c, &end, 10);
    return *end == '\0' && n > 0 ? static_cast<std::size_t>(n) : 0;
}

// Raw keys, no echo, the alternate screen and no cursor while it lives; the terminal as it
// was afterwards. Signals that end or stop top are blocked and read from a signalfd, so each
// way out goes through the destructor (SIGKILL aside).
class terminal_session {
public:
    terminal_session() {
        sigemptyset(&mask_);
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGTSTP}) sigaddset(&mask_, s);
        ::sigprocmask(SIG_BLOCK, &mask_, &old_mask_);
        sigfd_ = ::signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
        keys_ = ::isatty(0) && ::tcgetattr(0, &saved_) == 0;
        enter();
    }
    ~terminal_session() {
        leave();
        if (sigfd_ >= 0) ::close(sigfd_);
        ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    terminal_session(const terminal_session&) = delete;
    terminal_session& operator=(const terminal_session&) = delete;

    int signal_fd() const noexcept { return sigfd_; }
    bool keys() const noexcept { return keys_; }

    // Ctrl-Z: the terminal back as it was, stop; on SIGCONT, raw again.
    void suspend() {
        leave();
        std::signal(SIGTSTP, SIG_DFL);
        sigset_t tstp;
        sigemptyset(&tstp);
        sigaddset(&tstp, SIGTSTP);
        ::sigprocmask(SIG_UNBLOCK, &tstp, nullptr);
        ::raise(SIGTSTP);  // stops here until SIGCONT
        ::sigprocmask(SIG_BLOCK, &tstp, nullptr);
        enter();
    }

private:
    void enter() {
        if (keys_) {
            termios raw = saved_;
            raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // ISIG stays: Ctrl-C, Ctrl-Z
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            ::tcsetattr(0, TCSANOW, &raw);
        }
        write_all(1, "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
    }
    void leave() {
        write_all(1, "\x1b[?25h\x1b[?1049l");
        if (keys_) ::tcsetattr(0, TCSANOW, &saved_);
    }

    sigset_t mask_{}, old_mask_{};
    int sigfd_ = -1;
    bool keys_ = false;
    termios saved_{};
};

int run_once(const top_options& o) {
    top::snapshot before, now;
    if (auto e = fetch(o.socket, before)) {
        std::fprintf(stderr, "telecap: top: %s\n", e->c_str());
        return 1;
    }
    sleep_for(o.interval);
    if (auto e = fetch(o.socket, now)) {
        std::fprintf(stderr, "telecap: top: %s\n", e->c_str());
        return 1;
    }
    top::view_options vo;
    vo.pool = o.pool;
    const auto v = top::make_view(&before, now, vo);
    top::text_options t;
    t.width = ::isatty(1) ? terminal_size(1).first : columns_from_env();
    t.title = o.socket;
    std::string text;
    for (const auto& line : top::render(v, vo, t)) text += line + '\n';
    write_all(1, text);
    return 0;
}

int run_interactive(const top_options& o) {
    top::snapshot snaps[2];
    int cur = 0;
    // Before the screen is taken: a wrong socket is one line on the normal screen.
    if (auto e = fetch(o.socket, snaps[cur])) {
        std::fprintf(stderr, "telecap: top: %s\n", e->c_str());
        return 1;
    }
    std::optional<std::string> lost;
    {
        terminal_session term;
        bool have_before = false;
        top::view_options vo;
        vo.pool = o.pool;
        const auto draw = [&] {
            const auto [width, height] = terminal_size(1);
            top::text_options t;
            t.width = width;
            t.height = height;
            t.title = o.socket;
            t.keys = term.keys();
            const auto v = top::make_view(have_before ? &snaps[1 - cur] : nullptr, snaps[cur], vo);
            const auto lines = top::render(v, vo, t);
            std::string frame = "\x1b[H";
            for (std::size_t i = 0; i < lines.size(); ++i) {
                frame += lines[i];
                frame += "\x1b[K";
                if (i + 1 < lines.size()) frame += "\r\n";  // no newline after the last: no scroll
            }
            frame += "\x1b[J";
            write_all(1, frame);
        };
        draw();
        // The next status request goes out at next_at; while its reply is awaited (at most
        // reply_timeout) its socket is polled with the keys and signals, so a stalled telecap
        // never delays `q`.
        control::pending_exchange pending;
        clock::time_point reply_by{};
        auto next_at = clock::now() + o.interval;
        while (true) {
            const auto until = pending.active() ? reply_by : next_at;
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
            pollfd fds[3] = {{term.signal_fd(), POLLIN, 0},
                             {term.keys() ? 0 : -1, POLLIN, 0},
                             {pending.active() ? pending.fd() : -1, pending.events(), 0}};
            const int r = ::poll(fds, 3, static_cast<int>(std::max<long long>(0, left.count())));
            if (r < 0) {
                if (errno == EINTR) continue;  // not the interval's end
                break;
            }
            if (r == 0 && !pending.active()) {
                if ((lost = pending.start(o.socket, R"({"cmd":"status"})"))) break;
                reply_by = clock::now() + reply_timeout;
                continue;
            }
            if (r == 0) {
                lost = "timed out waiting for the reply";
                break;
            }
            if (fds[2].revents) {
                std::string reply;
                if (auto e = pending.step(reply)) {
                    if (!e->empty()) {
                        lost = std::move(e);
                        break;
                    }
                    if (auto bad = top::parse_status(reply, snaps[1 - cur])) {
                        lost = "status refused: " + *bad;
                        break;
                    }
                    cur = 1 - cur;
                    have_before = true;
                    draw();
                    next_at += o.interval;
                    if (next_at < clock::now()) next_at = clock::now() + o.interval;
                }
            }
            if (fds[0].revents & POLLIN) {
                signalfd_siginfo si{};
                bool quit = false;
                while (::read(term.signal_fd(), &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGWINCH) continue;
                    if (si.ssi_signo == SIGTSTP) {
                        term.suspend();
                        continue;
                    }
                    quit = true;
                }
                if (quit) break;
                draw();
            }
            if (fds[1].revents & (POLLHUP | POLLERR)) break;  // the terminal went away
            if (fds[1].revents & POLLIN) {
                char keys[64];
                const ssize_t n = ::read(0, keys, sizeof keys);
                if (n == 0) break;
                bool quit = false;
                for (ssize_t i = 0; i < n; ++i) {
                    switch (keys[i]) {
                        case 'q':
                        case 'Q':
                            quit = true;
                            break;
                        case 's':
                            vo.sort = top::next(vo.sort);
                            break;
                        case 'r':
                            vo.reverse = !vo.reverse;
                            break;
                        case 'p':
                            vo.pool = top::next_pool(snaps[cur], vo.pool);
                            break;
                        default:
                            break;
                    }
                }
                if (quit) break;
                draw();
            }
        }
    }
    if (lost) {
        std::fprintf(stderr, "telecap: top: lost %s: %s\n", o.socket.c_str(), lost->c_str());
        return 1;
    }
    return 0;
}

}  // namespace

int run_top(const top_options& o) {
    if (o.once || !::isatty(1)) return run_once(o);
    return run_interactive(o);
}

}  // namespace telecap::agent
