// The telecap binary on files: parse, lint, catalog, and the usage errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;

const std::string telecap_bin = TELECAP_BIN;
const std::string data_dir = TELECAP_TESTDATA;

std::string data(const std::string& name) { return data_dir + "/" + name; }

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct run_result {
    int code = -1;       // exit status, or 128 + signal
    long maxrss_kb = 0;  // telecap's peak RSS
    std::string out;
    std::string err;
};

std::ostream& operator<<(std::ostream& os, const run_result& r) {
    return os << "exit " << r.code << "\n--- stdout ---\n"
              << r.out.substr(0, 2000) << "\n--- stderr ---\n"
              << r.err.substr(0, 2000);
}

// A scratch directory per test, removed afterwards.
class CliTest : public testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/telecap-cli-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    // Runs telecap with `args`; stdin from `stdin_path` (default /dev/null). stdout and stderr
    // go to files (no pipe deadlocks whatever the sizes).
    // `closed`: fds among 0-2 to leave closed instead.
    run_result telecap(const std::vector<std::string>& args,
                       const std::string& stdin_path = "/dev/null",
                       const std::vector<int>& closed = {}) {
        const std::string out_path = path("stdout." + std::to_string(runs_));
        const std::string err_path = path("stderr." + std::to_string(runs_));
        ++runs_;
        std::vector<std::string> argv_s{telecap_bin};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        for (int fd : closed) posix_spawn_file_actions_addclose(&fa, fd);
        pid_t pid = -1;
        const int rc = ::posix_spawn(&pid, telecap_bin.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        run_result r;
        if (rc != 0) {
            ADD_FAILURE() << "posix_spawn " << telecap_bin << ": " << std::strerror(rc);
            return r;
        }
        int status = 0;
        struct rusage ru {};
        while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
        }
        r.maxrss_kb = ru.ru_maxrss;
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r.out = read_file(out_path);
        r.err = read_file(err_path);
        return r;
    }

    // Runs with `input` written to a file and given on stdin.
    run_result telecap_stdin(const std::vector<std::string>& args, std::string_view input) {
        const std::string in = path("stdin." + std::to_string(runs_));
        write_file(in, input);
        return telecap(args, in);
    }

    std::string dir_;
    int runs_ = 0;
};

// With --log-level error: these runs compare stderr with the pass-through byte for byte, and
// sample.log's unknown event would add its warning (UnknownEvents* tests check it).
const std::vector<std::string> fixed_context{"--node",      "test-node", "--pool", "test-pool",
                                             "--worker-id", "w-1",       "--pid",  "4242",
                                             "--log-level", "error"};

std::vector<std::string> args(std::initializer_list<std::string> a, bool with_context = true) {
    std::vector<std::string> v(a);
    if (with_context) v.insert(v.end(), fixed_context.begin(), fixed_context.end());
    return v;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto nl = text.find('\n', start);
        if (nl == std::string::npos) {
            out.push_back(text.substr(start));
            break;
        }
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

std::string json_error(const std::string& text, rapidjson::Document& doc) {
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
    if (!doc.HasParseError()) return "";
    return std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at " +
           std::to_string(doc.GetErrorOffset());
}

// --- parse ------------------------------------------------------------------------------

TEST_F(CliTest, ParseFileEventsOnStdoutPassThroughOnStderr) {
    const auto r = telecap(args({"parse", data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, read_file(data("sample.expected.jsonl")));
    EXPECT_EQ(r.err, read_file(data("sample.passthrough")));
}

TEST_F(CliTest, ParseDashReadsStdin) {
    const auto r = telecap(args({"parse", "-"}), data("sample.log"));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, read_file(data("sample.expected.jsonl")));
    EXPECT_EQ(r.err, read_file(data("sample.passthrough")));
}

TEST_F(CliTest, ParseWithoutInputsReadsStdin) {
    const auto r = telecap(args({"parse"}), data("sample.log"));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, read_file(data("sample.expected.jsonl")));
    EXPECT_EQ(r.err, read_file(data("sample.passthrough")));
}

TEST_F(CliTest, ParseSeveralInputsInOrder) {
    const auto r =
        telecap(args({"parse", data("sample.log"), "-", data("clean.log")}), data("sample.log"));
    ASSERT_EQ(r.code, 0) << r;
    const std::string ev = read_file(data("sample.expected.jsonl"));
    EXPECT_EQ(r.out, ev + ev + ev);
    const std::string pass = read_file(data("sample.passthrough"));
    // clean.log is sample.log minus its two rejected lines. Each input's last line has no
    // newline: it gets one, so the next input's first line does not glue to it.
    EXPECT_EQ(r.err, pass + pass +
                         "starting worker\nINFO loading model\n"
                         "TELEMETRY_ERROR: cannot serialize payload\nworker done\n");
}

TEST_F(CliTest, ParseDefaultContextUsesHostnameAndDefaultPool) {
    const auto r = telecap({"parse", data("clean.log")});
    ASSERT_EQ(r.code, 0) << r;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 3u);
    rapidjson::Document doc;
    ASSERT_EQ(json_error(lines[0], doc), "");
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    EXPECT_STREQ(doc["metadata"]["node"].GetString(), host);
    EXPECT_STREQ(doc["metadata"]["pool_name"].GetString(), "default");
    EXPECT_FALSE(doc["metadata"].HasMember("worker_id"));
    EXPECT_FALSE(doc["metadata"].HasMember("python_pid"));
}

// The nothing-is-lost rule on the real binary: \r, NUL, invalid UTF-8, oversize lines, a
// last line without newline, across read boundaries (more than 64 KiB of input).
TEST_F(CliTest, ParsePassThroughIsByteExact) {
    const std::string event =
        R"(TELEMETRY:{"event": "python.call.stop", "measurements": {"duration": 5}, )"
        R"("metadata": {}, "timestamp_ns": 1, "correlation_id": ""})";
    std::string input, expected;
    std::size_t events = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string pass_line;
        switch (i % 9) {
            case 0:
                ++events;
                input += event + "\n";
                continue;
            case 1:
                ++events;
                input += event + "\r\n";
                continue;
            case 2:
                pass_line = "log " + std::to_string(i) + " with\rcr\r\n";
                break;
            case 3:
                pass_line = "nul\0" + std::to_string(i) + "\0\n"s;
                break;
            case 4:
                pass_line = "bad \xff\xfe\xc3 utf8\n";
                break;
            case 5:
                pass_line = "TELEMETRY:{\"event\": \"nope\"}\n";
                break;
            case 6:
                pass_line = "TELEMETRY:" + std::string(300, '{') + "\n";
                break;
            case 7:
                pass_line = std::string(250, 'x') + "\n";
                break;
            case 8:
                pass_line = "\n";
                break;
        }
        input += pass_line;
        expected += pass_line;
    }
    // Oversize at --max-line 200: a telemetry line and a plain one, whole.
    const std::string long_event =
        R"(TELEMETRY:{"event": "python.call.stop", "metadata": {"pad": ")" + std::string(300, 'p') +
        "\"}}\r\n";
    input += long_event + std::string(70000, 'L') + "\n";
    expected += long_event + std::string(70000, 'L') + "\n";
    input += "tail \xff no newline";
    expected += "tail \xff no newline\n";  // a last line gets the newline it lacked, counted
    ASSERT_GT(input.size(), 3u * 65536);
    write_file(path("in.log"), input);

    const auto r = telecap(args({"parse", "--max-line", "200", "-o", "null", "--stats",
                                 path("stats.json"), path("in.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_TRUE(r.out.empty());
    EXPECT_EQ(r.err.size(), expected.size());
    EXPECT_TRUE(r.err == expected) << "pass-through differs from the input minus events";
    rapidjson::Document st;
    ASSERT_EQ(json_error(read_file(path("stats.json")), st), "");
    EXPECT_EQ(st["events"].GetUint64(), events);
    EXPECT_EQ(st["bytes"].GetUint64(), input.size());
    EXPECT_EQ(st["rejected"]["oversize"].GetUint64(), 1u + 3000u / 9);  // long_event + case 6
    EXPECT_EQ(st["partial_lines"].GetUint64(), 1u);
    EXPECT_EQ(st["long_lines_split"].GetUint64(), 0u);
    EXPECT_EQ(st["lines"].GetUint64(),
              st["events"].GetUint64() + st["passthrough_lines"].GetUint64());
}

// A 64 MiB telemetry line (oversize), then ordinary lines: parse's input can wait, so it waits
// for its pass-through file instead of dropping what follows the long line (it dropped `after`
// and often the 1,000 lines too, exit 3), and its memory stays bounded (it held the line: RSS
// above the line's size).
TEST_F(CliTest, ParseNeverDropsAfterAHugeLineAndKeepsMemoryBounded) {
    // Written and compared in pieces: the child's peak RSS (wait4) starts from this process's
    // own peak (a spawned child shares its memory until exec), which must stay small.
    const std::size_t huge = std::size_t{64} << 20;
    const std::string chunk(std::size_t{1} << 20, 'x');
    std::string tail = "\nafter\n";
    for (int i = 0; i < 1000; ++i) tail += "ordinary line " + std::to_string(i) + "\n";
    {
        std::ofstream in(path("in.log"), std::ios::binary);
        in << "TELEMETRY:";
        for (std::size_t n = 0; n < huge; n += chunk.size()) in << chunk;
        in << tail;
    }
    for (const bool rejects : {false, true}) {
        std::vector<std::string> a{"parse",   "--passthrough",    path("pass.log"),
                                   "--stats", path("stats.json"), path("in.log")};
        if (rejects) a.insert(a.end(), {"--rejects", path("rej.jsonl")});
        std::filesystem::remove(path("pass.log"));
        const auto p = telecap(a);
        ASSERT_EQ(p.code, 0) << p;
        std::ifstream pass(path("pass.log"), std::ios::binary);
        std::string piece(10, '\0');
        ASSERT_TRUE(pass.read(piece.data(), 10));
        EXPECT_EQ(piece, "TELEMETRY:");
        piece.resize(chunk.size());
        for (std::size_t n = 0; n < huge; n += chunk.size()) {
            ASSERT_TRUE(pass.read(piece.data(), static_cast<std::streamsize>(chunk.size())));
            ASSERT_TRUE(piece == chunk) << "the long line differs near byte " << n;
        }
        std::string rest((std::istreambuf_iterator<char>(pass)), std::istreambuf_iterator<char>());
        EXPECT_EQ(rest, tail);  // `after` and the 1,000 lines, none dropped
        rapidjson::Document st;
        ASSERT_EQ(json_error(read_file(path("stats.json")), st), "");
        EXPECT_EQ(st["rejected"]["oversize"].GetUint64(), 1u);
        EXPECT_EQ(st["streams"][path("pass.log").c_str()]["dropped_lines"].GetUint64(), 0u);
        // What telecap holds of the line is bounded by its limits (1 MiB head, the stream's
        // soft limit), not by the line. (ASan's shadow memory and quarantine are not.)
#if !defined(__SANITIZE_ADDRESS__)
        EXPECT_LT(p.maxrss_kb, 32 * 1024) << "peak RSS " << p.maxrss_kb << " kB";
#endif
    }
}

TEST_F(CliTest, MultipleJsonlOutputsGetIdenticalFiles) {
    const auto r = telecap(args({"parse", "-o", "jsonl:" + path("a.jsonl"), "-o",
                                 "jsonl:" + path("b.jsonl"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, "");
    const std::string expected = read_file(data("sample.expected.jsonl"));
    EXPECT_EQ(read_file(path("a.jsonl")), expected);
    EXPECT_EQ(read_file(path("b.jsonl")), expected);
}

TEST_F(CliTest, JsonlToStdoutAndFileTogether) {
    const auto r = telecap(args({"parse", "-o", "jsonl", "--output", "jsonl:" + path("a.jsonl"),
                                 "-o", "null", data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    const std::string expected = read_file(data("sample.expected.jsonl"));
    EXPECT_EQ(r.out, expected);
    EXPECT_EQ(read_file(path("a.jsonl")), expected);
}

TEST_F(CliTest, OutputNullDiscardsEvents) {
    const auto r = telecap(args({"parse", "-o", "null", data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, read_file(data("sample.passthrough")));
}

TEST_F(CliTest, OutputLogWritesHumanReadableLines) {
    const auto r =
        telecap(args({"parse", "-o", "log", "--passthrough", "none", data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(lines_of(r.err).size(), 3u) << r;
    EXPECT_NE(r.err.find("snakepit.python.tool.execution.stop"), std::string::npos) << r;
}

TEST_F(CliTest, PassthroughNone) {
    const auto r = telecap(args({"parse", "--passthrough", "none", data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, read_file(data("sample.expected.jsonl")));
    EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, PassthroughStdout) {
    const auto r = telecap(args({"parse", "--passthrough", "stdout", "-o",
                                 "jsonl:" + path("ev.jsonl"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, read_file(data("sample.passthrough")));
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(read_file(path("ev.jsonl")), read_file(data("sample.expected.jsonl")));
}

TEST_F(CliTest, PassthroughStderrIsTheDefaultAndExplicit) {
    const auto r = telecap(args({"parse", "--passthrough", "stderr", data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.err, read_file(data("sample.passthrough")));
}

TEST_F(CliTest, PassthroughPath) {
    const auto r = telecap(args({"parse", "--passthrough", path("pass.log"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, read_file(data("sample.expected.jsonl")));
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(read_file(path("pass.log")), read_file(data("sample.passthrough")));
}

TEST_F(CliTest, StatsFileCarriesTheSocketOutputsCounters) {
    const std::string sock = path("events.sock");
    const auto r = telecap(args({"parse", "-o", "null", "-o", "unix:" + sock, "--stats",
                                 path("stats.json"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    const std::string text = read_file(path("stats.json"));
    rapidjson::Document doc;
    ASSERT_EQ(json_error(text, doc), "") << text;
    ASSERT_TRUE(doc.HasMember("outputs") && doc["outputs"].IsObject()) << text;
    const std::string id = "output.1:unix:" + sock;
    ASSERT_TRUE(doc["outputs"].HasMember(id.c_str())) << text;
    const auto& o = doc["outputs"][id.c_str()];
    EXPECT_EQ(o["clients_accepted"].GetUint64(), 0u);  // nobody connected: nothing to send
    EXPECT_EQ(o["events_sent"].GetUint64(), 0u);
    EXPECT_EQ(o["events_missed"].GetUint64(), 0u);
    EXPECT_EQ(doc["outputs"].MemberCount(), 1u);  // null keeps no counters
}

TEST_F(CliTest, StatsFileHasEveryCounter) {
    const auto r =
        telecap(args({"parse", "-o", "null", "--stats", path("stats.json"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    const std::string text = read_file(path("stats.json"));
    rapidjson::Document doc;
    ASSERT_EQ(json_error(text, doc), "") << text;
    ASSERT_TRUE(doc.IsObject());
    for (const char* k : {"bytes", "lines", "telemetry_lines", "events", "passthrough_lines",
                          "emitter_errors", "handler_failures"}) {
        ASSERT_TRUE(doc.HasMember(k)) << k << " in " << text;
        EXPECT_TRUE(doc[k].IsUint64()) << k;
    }
    ASSERT_TRUE(doc.HasMember("rejected") && doc["rejected"].IsObject()) << text;
    for (const char* k : {"invalid_json", "bad_shape", "invalid_utf8", "oversize", "too_deep",
                          "unknown_event", "unknown_measurement", "bad_measurement"}) {
        ASSERT_TRUE(doc["rejected"].HasMember(k)) << k;
        EXPECT_TRUE(doc["rejected"][k].IsUint64()) << k;
    }
    ASSERT_TRUE(doc.HasMember("dropped") && doc["dropped"].IsObject()) << text;
    EXPECT_TRUE(doc["dropped"].HasMember("queue_full"));
    EXPECT_FALSE(doc.HasMember("outputs")) << text;  // -o null keeps no counters

    EXPECT_EQ(doc["bytes"].GetUint64(), read_file(data("sample.log")).size());
    EXPECT_EQ(doc["lines"].GetUint64(), 9u);
    EXPECT_EQ(doc["telemetry_lines"].GetUint64(), 5u);
    EXPECT_EQ(doc["events"].GetUint64(), 3u);
    EXPECT_EQ(doc["passthrough_lines"].GetUint64(), 6u);
    EXPECT_EQ(doc["emitter_errors"].GetUint64(), 1u);
    EXPECT_EQ(doc["rejected"]["unknown_event"].GetUint64(), 1u);
    EXPECT_EQ(doc["rejected"]["invalid_json"].GetUint64(), 1u);
    EXPECT_EQ(doc["rejected"]["oversize"].GetUint64(), 0u);
    EXPECT_EQ(doc["handler_failures"].GetUint64(), 0u);
}

TEST_F(CliTest, RejectsFileRecordsEachRejectedLine) {
    const auto r = telecap(
        args({"parse", "-o", "null", "--rejects", path("rejects.jsonl"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    const auto recs = lines_of(read_file(path("rejects.jsonl")));
    ASSERT_EQ(recs.size(), 2u);
    rapidjson::Document a, b;
    ASSERT_EQ(json_error(recs[0], a), "") << recs[0];
    ASSERT_EQ(json_error(recs[1], b), "") << recs[1];
    EXPECT_STREQ(a["reason"].GetString(), "unknown_event");
    EXPECT_EQ(a["line"].GetUint64(), 5u);
    EXPECT_STREQ(a["source"].GetString(), data("sample.log").c_str());
    EXPECT_EQ(std::string(a["text"].GetString()) + "\n",
              lines_of(read_file(data("sample.log")))[4] + "\n");
    EXPECT_FALSE(a["truncated"].GetBool());
    EXPECT_NE(std::string(a["detail"].GetString()).find("unknown.thing"), std::string::npos);
    EXPECT_STREQ(b["reason"].GetString(), "invalid_json");
    EXPECT_EQ(b["line"].GetUint64(), 6u);
    EXPECT_EQ(b["offset"].GetUint64(), 73u);
}

TEST_F(CliTest, RejectsFileIsValidUtf8ForBinaryLines) {
    const std::string input = "TELEMETRY:{\"event\": \"\xff\xfe\"}\nTELEMETRY:{\0}\n"s;
    write_file(path("in.log"), input);
    const auto r = telecap(args({"parse", "--rejects", path("rej.jsonl"), path("in.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.err, input);
    const auto recs = lines_of(read_file(path("rej.jsonl")));
    ASSERT_EQ(recs.size(), 2u);
    for (const auto& rec : recs) {
        rapidjson::Document d;
        EXPECT_EQ(json_error(rec, d), "") << rec;
    }
}

TEST_F(CliTest, MaxLineMakesALongTelemetryLineOversize) {
    const std::string line =
        R"(TELEMETRY:{"event": "python.call.stop", "measurements": {"duration": 1}, "metadata": )"
        R"({"tool": "a-tool-name-long-enough-to-pass-64-bytes"}})";
    ASSERT_GT(line.size(), 64u);
    write_file(path("in.log"), line + "\n");
    // Accepted at the default limit.
    auto r = telecap(args({"parse", "--passthrough", "none", path("in.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(lines_of(r.out).size(), 1u);
    // Rejected as oversize at 64, and passed through whole.
    r = telecap(args({"parse", "--max-line", "64", "--stats", path("stats.json"), "--rejects",
                      path("rej.jsonl"), path("in.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, line + "\n");
    rapidjson::Document st;
    ASSERT_EQ(json_error(read_file(path("stats.json")), st), "");
    EXPECT_EQ(st["rejected"]["oversize"].GetUint64(), 1u);
    EXPECT_EQ(st["events"].GetUint64(), 0u);
    rapidjson::Document rej;
    ASSERT_EQ(json_error(lines_of(read_file(path("rej.jsonl")))[0], rej), "");
    EXPECT_STREQ(rej["reason"].GetString(), "oversize");
    EXPECT_TRUE(rej["truncated"].GetBool());
    // Lint says so too.
    r = telecap({"lint", "--max-line", "64", path("in.log")});
    EXPECT_EQ(r.code, 1) << r;
    EXPECT_EQ(r.out.rfind(path("in.log") + ":1:65: oversize: ", 0), 0u) << r;
}

TEST_F(CliTest, FailingOutputRetriesThenCountsItsLoss) {
    // /dev/full: every write fails with ENOSPC, which may pass, so the output keeps its events
    // and retries; at the end it gets 5 s more, then its events are counted as dropped and the
    // exit status says data was lost. The other output and the pass-through are unaffected.
    const auto r =
        telecap(args({"parse", "-o", "jsonl:/dev/full", "-o", "jsonl:" + path("ok.jsonl"),
                      "--stats", path("stats.json"), data("sample.log")}));
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.code, 3) << r;
    EXPECT_EQ(read_file(path("ok.jsonl")), read_file(data("sample.expected.jsonl")));
    // The pass-through is whole and in order; telecap's own messages (whole lines, on the
    // same stream) may come between its lines, or right after its last line, which has no
    // newline.
    EXPECT_EQ(std::regex_replace(r.err, std::regex("telecap: [^\n]*\n"), ""),
              read_file(data("sample.passthrough")))
        << r;
    EXPECT_NE(r.err.find("/dev/full: write failed: No space left on device"), std::string::npos)
        << r;
    rapidjson::Document st;
    ASSERT_EQ(json_error(read_file(path("stats.json")), st), "") << r;
    EXPECT_EQ(st["events"].GetUint64(), 3u);
    const auto& full = st["streams"]["/dev/full"];
    EXPECT_EQ(full["dropped_lines"].GetUint64(), 3u) << r;
    EXPECT_EQ(full["written_lines"].GetUint64(), 0u);
    EXPECT_GE(full["write_errors"].GetUint64(), 1u);
    EXPECT_EQ(st["outputs"]["output.0:jsonl:/dev/full"]["events_accepted"].GetUint64(), 3u)
        << "handed to the stream (which then dropped them)";
}

TEST_F(CliTest, MaxLineBelow64IsAUsageError) {
    const auto r = telecap({"parse", "--max-line", "10", data("sample.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, CustomPrefix) {
    write_file(path("in.log"),
               "@T:{\"event\": \"python.call.start\", \"timestamp_ns\": 5}\n"
               "TELEMETRY:{\"event\": \"python.call.start\", \"timestamp_ns\": 5}\n");
    const auto r = telecap(args({"parse", "--prefix", "@T:", path("in.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(lines_of(r.out).size(), 1u);
    EXPECT_EQ(r.err, "TELEMETRY:{\"event\": \"python.call.start\", \"timestamp_ns\": 5}\n");
}

TEST_F(CliTest, ParseMissingInputFailsWithExit1) {
    const auto r = telecap(args({"parse", path("missing.log")}));
    EXPECT_EQ(r.code, 1) << r;
    EXPECT_NE(r.err.find("missing.log"), std::string::npos) << r;
}

// --- lint -------------------------------------------------------------------------------

TEST_F(CliTest, LintPrintsFileLineColReasonAndExits1) {
    const std::string file = data("sample.log");
    const auto r = telecap({"lint", file});
    EXPECT_EQ(r.code, 1) << r;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 2u) << r;
    EXPECT_EQ(lines[0], file + ":5:1: unknown_event: unknown event \"unknown.thing\"");
    EXPECT_EQ(lines[1].rfind(file + ":6:74: invalid_json: ", 0), 0u) << lines[1];
    EXPECT_EQ(r.err, "");  // lint prints no pass-through
}

TEST_F(CliTest, LintCleanFileExits0) {
    const auto r = telecap({"lint", data("clean.log")});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, LintMissingFileExits2) {
    const auto r = telecap({"lint", path("missing.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("missing.log"), std::string::npos) << r;
}

TEST_F(CliTest, LintStdinAndSeveralFiles) {
    const auto r =
        telecap({"lint", data("clean.log"), "-", data("sample.log")}, data("sample.log"));
    EXPECT_EQ(r.code, 1) << r;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 4u) << r;
    EXPECT_EQ(lines[0].rfind("<stdin>:5:1: unknown_event", 0), 0u) << lines[0];
    EXPECT_EQ(lines[1].rfind("<stdin>:6:", 0), 0u) << lines[1];
    EXPECT_EQ(lines[2].rfind(data("sample.log") + ":5:1: unknown_event", 0), 0u) << lines[2];
}

TEST_F(CliTest, LintUsesTheCatalog) {
    const auto r = telecap({"lint", "--catalog", data("keep_catalog.json"), data("sample.log")});
    // With unknown events kept, only the invalid JSON line remains.
    EXPECT_EQ(r.code, 1) << r;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 1u) << r;
    EXPECT_NE(lines[0].find(":6:74: invalid_json"), std::string::npos) << lines[0];
}

// --- catalog ----------------------------------------------------------------------------

TEST_F(CliTest, CatalogPrintsJsonThatCatalogAcceptsBack) {
    const auto r = telecap({"catalog"});
    ASSERT_EQ(r.code, 0) << r;
    rapidjson::Document doc;
    ASSERT_EQ(json_error(r.out, doc), "");
    ASSERT_TRUE(doc.IsObject());
    EXPECT_EQ(doc["wire_events"].MemberCount(), 11u);
    EXPECT_EQ(doc["measurement_keys"].Size(), 34u);
    EXPECT_EQ(doc["metadata_keys"].Size(), 46u);
    ASSERT_TRUE(doc.HasMember("policies"));
    EXPECT_STREQ(doc["policies"]["unknown_event"].GetString(), "reject");

    write_file(path("cat.json"), r.out);
    const auto again = telecap({"catalog", "--catalog", path("cat.json")});
    ASSERT_EQ(again.code, 0) << again;
    EXPECT_EQ(again.out, r.out);
    const auto parsed = telecap(args({"parse", "--catalog", path("cat.json"), data("sample.log")}));
    ASSERT_EQ(parsed.code, 0) << parsed;
    EXPECT_EQ(parsed.out, read_file(data("sample.expected.jsonl")));
}

TEST_F(CliTest, CatalogShowsACustomCatalogsPolicies) {
    const auto r = telecap({"catalog", "--catalog", data("keep_catalog.json")});
    ASSERT_EQ(r.code, 0) << r;
    rapidjson::Document doc;
    ASSERT_EQ(json_error(r.out, doc), "");
    EXPECT_STREQ(doc["policies"]["unknown_event"].GetString(), "keep");
    EXPECT_STREQ(doc["policies"]["unknown_metadata"].GetString(), "drop");
    EXPECT_EQ(doc["wire_events"].MemberCount(), 1u);
}

TEST_F(CliTest, ParseWithCustomCatalogPolicies) {
    write_file(path("in.log"),
               R"(TELEMETRY:{"event": "job.done", "measurements": {"count": 2, "x": 1}, )"
               R"("metadata": {"tool": "t", "secret": "s"}, "timestamp_ns": 3})"
               "\n"
               R"(TELEMETRY:{"event": "other.thing", "timestamp_ns": 4})"
               "\n");
    const auto r =
        telecap({"parse", "--catalog", data("keep_catalog.json"), "--node", "n", path("in.log")});
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(
        r.out,
        R"({"event":["acme","job","done"],"measurements":{"count":2},"metadata":{"tool":"t",)"
        R"("node":"n","pool_name":"default","correlation_id":null,"timestamp_ns":3},)"
        R"("timestamp_ns":3,"correlation_id":null})"
        "\n"
        R"({"event":["acme","other","other","thing"],"measurements":{},"metadata":{"node":"n",)"
        R"("pool_name":"default","correlation_id":null,"timestamp_ns":4},"timestamp_ns":4,)"
        R"("correlation_id":null})"
        "\n");
    EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, BadCatalogFileExits2NamingFileAndProblem) {
    const std::string file = data("bad_catalog.json");
    for (const char* cmd : {"parse", "lint", "catalog"}) {
        const auto r = telecap({cmd, "--catalog", file}, data("clean.log"));
        EXPECT_EQ(r.code, 2) << cmd << ": " << r;
        EXPECT_NE(r.err.find(file + ": offset 65: "), std::string::npos) << cmd << ": " << r;
        EXPECT_NE(r.err.find("nvalid value"), std::string::npos) << cmd << ": " << r;
        EXPECT_EQ(r.out, "") << cmd;
    }
}

TEST_F(CliTest, BadPolicyInCatalogExits2NamingTheKey) {
    const std::string file = data("bad_policy_catalog.json");
    const auto r = telecap({"parse", "--catalog", file, data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find(file + ": policies.unknown_event: "), std::string::npos) << r;
    EXPECT_NE(r.err.find("ignore"), std::string::npos) << r;
    EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, MissingCatalogFileExits2) {
    const auto r = telecap({"parse", "--catalog", path("nope.json"), data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("nope.json"), std::string::npos) << r;
    EXPECT_EQ(r.out, "");
}

// --- usage ------------------------------------------------------------------------------

TEST_F(CliTest, UnknownOutputSpecExits2) {
    for (const char* spec : {"xml", "jsonl2", "log:file", "null:x", ""}) {
        const auto r = telecap({"parse", "-o", spec, data("clean.log")});
        EXPECT_EQ(r.code, 2) << spec << ": " << r;
        EXPECT_EQ(r.out, "") << spec;
        if (*spec) {
            EXPECT_NE(r.err.find(spec), std::string::npos) << r;
        }
    }
}

TEST_F(CliTest, UnopenableOutputFileExits2) {
    const auto r =
        telecap({"parse", "-o", "jsonl:" + path("no/such/dir/x.jsonl"), data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("no/such/dir"), std::string::npos) << r;
}

TEST_F(CliTest, VersionExits0) {
    const auto r = telecap({"--version"});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out.rfind("telecap ", 0), 0u) << r;
    EXPECT_NE(r.out.find_first_of("0123456789"), std::string::npos) << r;
}

TEST_F(CliTest, HelpExits0) {
    const auto r = telecap({"--help"});
    EXPECT_EQ(r.code, 0) << r;
    for (const char* word : {"parse", "lint", "catalog"})
        EXPECT_NE(r.out.find(word), std::string::npos) << word << "\n" << r;
    const auto sub = telecap({"parse", "--help"});
    EXPECT_EQ(sub.code, 0) << sub;
    for (const char* word : {"--output", "--passthrough", "--stats", "--rejects", "--max-line"})
        EXPECT_NE(sub.out.find(word), std::string::npos) << word << "\n" << sub;
}

TEST_F(CliTest, UsageErrorsExit2WithAHint) {
    for (const auto& a : std::vector<std::vector<std::string>>{{},
                                                               {"frobnicate"},
                                                               {"parse", "--no-such-flag"},
                                                               {"parse", "--max-line", "abc"},
                                                               {"parse", "--pid", "x"}}) {
        const auto r = telecap(a);
        EXPECT_EQ(r.code, 2) << testing::PrintToString(a) << ": " << r;
        EXPECT_NE(r.err.find("--help"), std::string::npos) << r;
    }
}

// --- closed stdio -----------------------------------------------------------------------

// With fd 2 closed (alone, with 1, with 0 and 1), an output file must not be opened as fd 2:
// pass-through and log lines would land among the events.
TEST_F(CliTest, ClosedStdioIsNotReusedForOutputs) {
    for (const auto& closed : std::vector<std::vector<int>>{{2}, {1, 2}, {0, 1, 2}}) {
        const std::string events = path("ev" + std::to_string(closed.size()) + ".jsonl");
        // sample.log has pass-through lines for stderr.
        const auto r = telecap(args({"parse", "-o", "jsonl:" + events, data("sample.log")}),
                               "/dev/null", closed);
        EXPECT_EQ(r.code, 0) << testing::PrintToString(closed) << ": " << r;
        EXPECT_EQ(read_file(events), read_file(data("sample.expected.jsonl")))
            << testing::PrintToString(closed);
    }
}

// --- the limits: the same bad value gives the same message from a flag and from YAML ------

// "{max_line}" in a message stands for the setting's name: --max-line or max_line.
std::string spelled(std::string msg, bool cli) {
    for (std::size_t open = msg.find('{'); open != std::string::npos; open = msg.find('{')) {
        const auto close = msg.find('}', open);
        std::string name = msg.substr(open + 1, close - open - 1);
        if (cli) {
            for (auto& c : name)
                if (c == '_') c = '-';
            name = "--" + name;
        }
        msg.replace(open, close - open + 1, name);
    }
    return msg;
}

struct bad_setting {
    std::vector<std::string> flags;  // for `run FLAGS -- true`
    std::string yaml;                // lines at the top level, or in the pool when in_pool
    bool in_pool;
    int line;  // of the YAML error
    std::string message;
};

const std::vector<bad_setting> bad_settings{
    {{"--max-line", "0"},
     "max_line: 0",
     false,
     1,
     "{max_line} must be between 64 and 1073741824 (1 GiB), not 0"},
    {{"--max-line", "1099511627776"},
     "max_line: 1099511627776",
     false,
     1,
     "{max_line} must be between 64 and 1073741824 (1 GiB), not 1099511627776"},
    {{"--max-line=-1"},
     "max_line: -1",
     false,
     1,
     "{max_line} must be between 64 and 1073741824 (1 GiB), not -1"},
    {{"--queue", "0"},
     "queue: 0",
     false,
     1,
     "{queue} must be between 1 and 16777216 (2^24), not 0"},
    {{"--queue", "16777217"},
     "queue: 16777217",
     false,
     1,
     "{queue} must be between 1 and 16777216 (2^24), not 16777217"},
    {{"--queue-bytes", "0"},
     "queue_bytes: 0",
     false,
     1,
     "{queue_bytes} must be between 65536 (64 KiB) and 17179869184 (16 GiB), not 0"},
    {{"--queue-bytes", "65535"},
     "queue_bytes: 65535",
     false,
     1,
     "{queue_bytes} must be between 65536 (64 KiB) and 17179869184 (16 GiB), not 65535"},
    {{"--queue-bytes", "17179869185"},
     "queue_bytes: 17179869185",
     false,
     1,
     "{queue_bytes} must be between 65536 (64 KiB) and 17179869184 (16 GiB), not 17179869185"},
    {{"--prefix", ""}, "prefix: \"\"", false, 1, "{prefix} must not be empty"},
    {{"--prefix", "A\nB:"}, "prefix: \"A\\nB:\"", false, 1, "{prefix} must not contain a newline"},
    {{"--grace", "1e300"},
     "grace: 1e300",
     false,
     1,
     "{grace} must be a number of seconds between 0 and 86400 (1 day), not 1e+300"},
    {{"--grace", "nan"},
     "grace: .nan",
     false,
     1,
     "{grace} must be a number of seconds between 0 and 86400 (1 day), not nan"},
    {{"--grace", "inf"},
     "grace: .inf",
     false,
     1,
     "{grace} must be a number of seconds between 0 and 86400 (1 day), not inf"},
    {{"--grace=-1"},
     "grace: -1",
     false,
     1,
     "{grace} must be a number of seconds between 0 and 86400 (1 day), not -1"},
    {{"--grace", "86401"},
     "grace: 86401",
     false,
     1,
     "{grace} must be a number of seconds between 0 and 86400 (1 day), not 86401"},
    {{"--burst-hold", "11"},
     "burst_hold: 11",
     false,
     1,
     "{burst_hold} must be a number of seconds between 0 and 10, not 11"},
    {{"--burst-hold", "nan"},
     "burst_hold: .nan",
     false,
     1,
     "{burst_hold} must be a number of seconds between 0 and 10, not nan"},
    {{"--burst-hold=-0.1"},
     "burst_hold: -0.1",
     false,
     1,
     "{burst_hold} must be a number of seconds between 0 and 10, not -0.1"},
    {{"--overflow", "drop-oldest"},
     "overflow: drop-oldest",
     false,
     1,
     "{overflow} must be drop-newest or block, not \"drop-oldest\""},
    {{"--dispatch", "inline"},
     "dispatch: inline",
     false,
     1,
     "{dispatch} must be loop or thread, not \"inline\""},
    {{"--stop-signal", "NOPE"},
     "stop_signal: NOPE",
     false,
     1,
     "{stop_signal} must be a signal name or number (TERM, SIGTERM, 15), not \"NOPE\""},
    {{"--restart", "sometimes"},
     "restart: sometimes",
     true,
     3,
     "{restart} must be never, on-failure or always, not \"sometimes\""},
    {{"--restart", "on-failure", "--backoff-min", "0"},
     "backoff_min: 0",
     true,
     3,
     "{backoff_min} must be at least 0.01 (10 ms) when workers restart, not 0"},
    {{"--restart", "always", "--backoff-min", "0.001"},
     "restart: always\nbackoff_min: 0.001",
     true,
     4,
     "{backoff_min} must be at least 0.01 (10 ms) when workers restart, not 0.001"},
    {{"--backoff-min", "2", "--backoff-max", "1"},
     "backoff_min: 2\nbackoff_max: 1",
     true,
     4,
     "{backoff_max} must not be less than {backoff_min} (1 < 2)"},
    {{"--backoff-max", "1e300"},
     "backoff_max: 1e300",
     true,
     3,
     "{backoff_max} must be a number of seconds between 0 and 86400 (1 day), not 1e+300"},
    {{"--backoff-min", "nan"},
     "backoff_min: .nan",
     true,
     3,
     "{backoff_min} must be a number of seconds between 0 and 86400 (1 day), not nan"},
    {{"--healthy-after=-1"},
     "healthy_after: -1",
     true,
     3,
     "{healthy_after} must be a number of seconds between 0 and 86400 (1 day), not -1"},
    {{"--restart-window", "1e9"},
     "restart_window: 1e9",
     true,
     3,
     "{restart_window} must be a number of seconds between 0 and 86400 (1 day), not 1e+09"},
    {{"--instances", "0"},
     "instances: 0",
     true,
     3,
     "{instances} must be between 1 and 10000, not 0"},
    {{"--instances", "10001"},
     "instances: 10001",
     true,
     3,
     "{instances} must be between 1 and 10000, not 10001"},
    {{"--telemetry-fd", "2"},
     "telemetry_fd: 2",
     true,
     3,
     "{telemetry_fd} must be between 3 and 1023, not 2"},
    {{"--telemetry-fd", "1024"},
     "telemetry_fd: 1024",
     true,
     3,
     "{telemetry_fd} must be between 3 and 1023, not 1024"},
    {{"--telemetry-fd=-1"},
     "telemetry_fd: -1",
     true,
     3,
     "{telemetry_fd} must be between 3 and 1023, not -1"},
    {{"--max-restarts=-1"},
     "max_restarts: -1",
     true,
     3,
     "{max_restarts} must be between 0 and 2147483647, not -1"},
};

std::string config_with(const bad_setting& b) {
    const std::string pools = "pools:\n  - command: [\"true\"]\n";
    if (!b.in_pool) return b.yaml + "\n" + pools;
    std::string out = pools;
    for (const auto& line : lines_of(b.yaml)) out += "    " + line + "\n";
    return out;
}

TEST_F(CliTest, BadSettingsGiveTheSameMessageFromFlagsAndYaml) {
    for (const auto& b : bad_settings) {
        std::vector<std::string> argv{"run"};
        argv.insert(argv.end(), b.flags.begin(), b.flags.end());
        argv.insert(argv.end(), {"--", "true"});
        const auto r = telecap(argv);
        EXPECT_EQ(r.code, 2) << b.yaml << ": " << r;
        EXPECT_EQ(r.err, "telecap: " + spelled(b.message, true) + "\n") << b.yaml;
        EXPECT_EQ(r.out, "") << b.yaml;  // nothing ran

        const std::string cfg = path("bad.yaml");
        write_file(cfg, config_with(b));
        const auto y = telecap({"run", "--config", cfg});
        EXPECT_EQ(y.code, 2) << b.yaml << ": " << y;
        EXPECT_EQ(y.err, "telecap: " + cfg + ":" + std::to_string(b.line) + ": " +
                             spelled(b.message, false) + "\n")
            << config_with(b);
        EXPECT_EQ(y.out, "") << b.yaml;
    }
}

// The unix output's budgets: the same words from -o (run and parse) and from YAML outputs
// (top level and a pool's, at the item's line), and nothing runs.
TEST_F(CliTest, BadUnixOutputOptionsGiveTheSameMessageEverywhere) {
    const std::string sock = path("u.sock");
    const std::pair<std::string, std::string> bad[] = {
        {"?max_hosts=0", "max_hosts must be between 1 and 65536, not 0"},
        {"?max_hosts=65537", "max_hosts must be between 1 and 65536, not 65537"},
        {"?max_backlog=abc", "max_backlog must be a whole number, not \"abc\""},
        {"?max_backlog=-1", "max_backlog must be between 4096 and 1073741824 (1 GiB), not -1"},
        {"?max_backlog=", "max_backlog must be a whole number, not \"\""},
        {"?max_backlog=1024", "max_backlog must be between 4096 and 1073741824 (1 GiB), not 1024"},
        {"?max_total_backlog=99999999999999999999",
         "max_total_backlog must be between 4096 and 17179869184 (16 GiB), not "
         "99999999999999999999"},
        {"?max_backlog=33554432",
         "max_total_backlog must not be less than max_backlog (16777216 < 33554432)"},
        {"?fd_reserve=0", "fd_reserve must be between 1 and 65536, not 0"},
        {"?max_hosts=2&max_hosts=3", "max_hosts is given twice"},
        {"?max_host=2",
         "unknown option \"max_host\": use max_hosts, max_backlog, max_total_backlog or "
         "fd_reserve (NAME=N, joined by &)"},
    };
    for (const auto& [query, message] : bad) {
        const std::string spec = "unix:" + sock + query;
        const std::string said = "output \"" + spec + "\": " + message;
        const auto r = telecap({"run", "-o", spec, "--", "true"});
        EXPECT_EQ(r.code, 2) << r;
        EXPECT_EQ(r.err, "telecap: " + said + "\n");
        const auto p = telecap({"parse", "-o", spec, data("clean.log")});
        EXPECT_EQ(p.code, 2) << p;
        EXPECT_EQ(p.err, "telecap: " + said + "\n");
        EXPECT_EQ(p.out, "");

        const std::string cfg = path("bad.yaml");
        write_file(cfg, "outputs: [\"null\", \"" + spec + "\"]\npools:\n  - command: [\"true\"]\n");
        auto y = telecap({"run", "--config", cfg});
        EXPECT_EQ(y.code, 2) << y;
        EXPECT_EQ(y.err, "telecap: " + cfg + ":1: " + said + "\n");
        write_file(cfg, "pools:\n  - command: [\"true\"]\n    outputs:\n      - null\n      - \"" +
                            spec + "\"\n");
        y = telecap({"run", "--config", cfg});
        EXPECT_EQ(y.code, 2) << y;
        EXPECT_EQ(y.err, "telecap: " + cfg + ":5: " + said + "\n");
        struct stat st {};
        EXPECT_NE(::lstat(sock.c_str(), &st), 0) << "the socket was created";
    }
    // Good options are taken, and the counters carry their reasons.
    const auto r = telecap(args({"parse", "-o",
                                 "unix:" + sock +
                                     "?max_hosts=1&max_backlog=65536&"
                                     "max_total_backlog=65536&fd_reserve=8",
                                 "--stats", path("stats.json"), data("sample.log")}));
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_NE(read_file(path("stats.json"))
                  .find(R"("clients_refused":{"max_hosts":0,"fds":0},)"
                        R"("clients_dropped":{"backlog":0,"total_backlog":0}})"),
              std::string::npos)
        << read_file(path("stats.json"));
}

TEST_F(CliTest, ParseAndLintCheckMaxLineAndPrefixLikeRun) {
    for (const char* cmd : {"parse", "lint"}) {
        auto r = telecap({cmd, "--max-line", "1099511627776", data("clean.log")});
        EXPECT_EQ(r.code, 2) << r;
        EXPECT_EQ(r.err,
                  "telecap: --max-line must be between 64 and 1073741824 (1 GiB), not "
                  "1099511627776\n");
        r = telecap({cmd, "--prefix", "", data("clean.log")});
        EXPECT_EQ(r.code, 2) << r;
        EXPECT_EQ(r.err, "telecap: --prefix must not be empty\n");
        EXPECT_EQ(r.out, "");
    }
}

TEST_F(CliTest, LimitsAreInclusive) {
    // The edges are accepted (run -- true with every bound at its edge).
    const auto r = telecap({"run",        "--max-line",
                            "64",         "--queue",
                            "16777216",   "--queue-bytes",
                            "65536",      "--grace",
                            "86400",      "--instances",
                            "1",          "--restart",
                            "on-failure", "--backoff-min",
                            "0.01",       "--backoff-max",
                            "0.01",       "--healthy-after",
                            "0",          "--restart-window",
                            "86400",      "--max-restarts",
                            "0",          "-o",
                            "null",       "--",
                            "true"});
    EXPECT_EQ(r.code, 0) << r;
    write_file(path("edge.yaml"),
               "max_line: 1073741824\nqueue: 1\nqueue_bytes: 17179869184\ngrace: 0\n"
               "overflow: block\n"  // a queue of one drops lifecycle events otherwise (exit 3)
               "pools:\n  - command: [\"true\"]\n    instances: 1\n    backoff_min: 0.01\n"
               "    backoff_max: 86400\n    telemetry_fd: 1023\n    max_restarts: 0\n");
    const auto y = telecap({"run", "--config", path("edge.yaml"), "-o", "null"});
    EXPECT_EQ(y.code, 0) << y;
}

TEST_F(CliTest, BackoffMinZeroIsFineWhenNothingRestarts) {
    auto r = telecap({"run", "--backoff-min", "0", "-o", "null", "--", "true"});
    EXPECT_EQ(r.code, 0) << r;
    write_file(path("never.yaml"),
               "pools:\n  - command: [\"true\"]\n    restart: never\n    backoff_min: 0\n");
    r = telecap({"run", "--config", path("never.yaml"), "-o", "null"});
    EXPECT_EQ(r.code, 0) << r;
}

TEST_F(CliTest, BadCwdAndEnvInYamlNameTheLine) {
    write_file(path("file"), "x");
    const std::string pool = "pools:\n  - command: [\"true\"]\n";
    const std::vector<std::pair<std::string, std::string>> cases{
        {"    cwd: " + path("missing") + "\n", ":3: cwd must be an existing directory, not \"" +
                                                   path("missing") +
                                                   "\" (No such file or directory)"},
        {"    cwd: " + path("file") + "\n",
         ":3: cwd must be an existing directory, not \"" + path("file") + "\" (not a directory)"},
        {"    env:\n      OK: \"1\"\n      \"A=B\": x\n",
         ":5: env key must not contain '=', not \"A=B\""},
        {"    env: {\"\": x}\n", ":3: env key must not be empty"},
        {"    env: {\"A\\0B\": x}\n", ":3: env key must not contain a NUL byte"},
        {"    env:\n      A: \"x\\0y\"\n", ":4: env value of \"A\" must not contain a NUL byte"},
    };
    for (const auto& [yaml, message] : cases) {
        write_file(path("c.yaml"), pool + yaml);
        const auto r = telecap({"run", "--config", path("c.yaml")});
        EXPECT_EQ(r.code, 2) << yaml << r;
        EXPECT_EQ(r.err, "telecap: " + path("c.yaml") + message + "\n") << yaml;
        EXPECT_EQ(r.out, "") << yaml;
    }
    // A good cwd is accepted.
    write_file(path("c.yaml"), pool + "    cwd: " + dir_ + "\n");
    const auto r = telecap({"run", "--config", path("c.yaml"), "-o", "null"});
    EXPECT_EQ(r.code, 0) << r;
}

// --- run --config and the flags ---------------------------------------------------------

TEST_F(CliTest, PoolFlagsWithConfigAreUsageErrorsNamingTheYamlKey) {
    write_file(path("c.yaml"), "pools:\n  - command: [\"true\"]\n");
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"--instances", "2"}, "instances"},           {{"--restart", "always"}, "restart"},
        {{"--backoff-min", "1"}, "backoff_min"},       {{"--backoff-max", "1"}, "backoff_max"},
        {{"--healthy-after", "1"}, "healthy_after"},   {{"--max-restarts", "1"}, "max_restarts"},
        {{"--restart-window", "1"}, "restart_window"}, {{"--telemetry-fd", "3"}, "telemetry_fd"},
        {{"--capture-stdout"}, "capture_stdout"},      {{"--pool", "p"}, "name"},
    };
    for (const auto& [flag, key] : cases) {
        std::vector<std::string> argv{"run", "--config", path("c.yaml")};
        argv.insert(argv.end(), flag.begin(), flag.end());
        const auto r = telecap(argv);
        EXPECT_EQ(r.code, 2) << flag[0] << ": " << r;
        EXPECT_EQ(r.err, "telecap: " + flag[0] + " applies to a command after --; with --config " +
                             "set `" + key + ":` in the pool\n");
        EXPECT_EQ(r.out, "") << flag[0];
    }
}

TEST_F(CliTest, RunWideFlagsOverrideTheConfig) {
    // Every run-wide setting in the file, each also on the command line: the flag wins (a bad
    // value in the file is still an error, so the file's values are valid but different).
    write_file(
        path("c.yaml"),
        "outputs: [\"jsonl:" + path("file.jsonl") +
            "\"]\n"
            "passthrough: none\n"
            "prefix: \"NOPE:\"\n"
            "max_line: 64\n"
            "node: file-node\n"
            "stats: " +
            path("file-stats.json") +
            "\n"
            "rejects: " +
            path("file-rejects.jsonl") +
            "\n"
            "label: false\n"
            "pools:\n"
            "  - name: p\n"
            "    command: [\"sh\", \"-c\", \"echo plain >&2; echo 'TELEMETRY:{\\\"event\\\": "
            "\\\"python.call.start\\\", \\\"timestamp_ns\\\": 1, \\\"metadata\\\": "
            "{\\\"tool\\\": \\\"a-tool-name-long-enough-to-pass-64-bytes\\\"}}' >&2\"]\n");
    const auto r = telecap(
        {"run", "--config", path("c.yaml"), "-o", "jsonl:" + path("cli.jsonl"), "--passthrough",
         path("pass.log"), "--prefix", "TELEMETRY:", "--max-line", "1024", "--node", "cli-node",
         "--stats", path("cli-stats.json"), "--rejects", path("cli-rejects.jsonl"), "--label"});
    ASSERT_EQ(r.code, 0) << r;
    // Outputs add up: the flag's and the file's get the same events.
    const std::string events = read_file(path("cli.jsonl"));
    EXPECT_EQ(read_file(path("file.jsonl")), events);
    EXPECT_NE(events.find("\"python\",\"call\",\"start\"]"), std::string::npos) << events;
    EXPECT_NE(events.find("\"node\":\"cli-node\""), std::string::npos) << events;
    EXPECT_EQ(read_file(path("pass.log")), "[p-0] plain\n");
    EXPECT_TRUE(fs::exists(path("cli-stats.json")));
    EXPECT_FALSE(fs::exists(path("file-stats.json")));
    EXPECT_TRUE(fs::exists(path("cli-rejects.jsonl")));
    EXPECT_FALSE(fs::exists(path("file-rejects.jsonl")));
}

TEST_F(CliTest, ConfigSettingsApplyWhenNoFlagIsGiven) {
    write_file(path("c.yaml"),
               "passthrough: " + path("pass.log") +
                   "\n"
                   "prefix: \"@T:\"\n"
                   "node: file-node\n"
                   "stats: " +
                   path("stats.json") +
                   "\n"
                   "label: true\n"
                   "pools:\n"
                   "  - name: p\n"
                   "    command: [\"sh\", \"-c\", \"echo plain >&2; echo '@T:{\\\"event\\\": "
                   "\\\"python.call.start\\\", \\\"timestamp_ns\\\": 1}' >&2\"]\n");
    const auto r = telecap({"run", "--config", path("c.yaml")});
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_NE(r.out.find("\"python\",\"call\",\"start\"]"), std::string::npos) << r;
    EXPECT_NE(r.out.find("\"node\":\"file-node\""), std::string::npos) << r;
    EXPECT_EQ(read_file(path("pass.log")), "[p-0] plain\n");
    EXPECT_TRUE(fs::exists(path("stats.json")));
}

// --- --stats checked at startup ---------------------------------------------------------

TEST_F(CliTest, UnwritableStatsPathIsAUsageErrorAtStartup) {
    const std::string bad = path("no/such/dir/stats.json");
    const std::string msg =
        "telecap: cannot write stats to " + bad + ": No such file or directory\n";
    for (const char* cmd : {"parse", "lint"}) {
        const auto r = telecap({cmd, "--stats", bad, data("sample.log")});
        EXPECT_EQ(r.code, 2) << cmd << ": " << r;
        EXPECT_EQ(r.err, msg) << cmd;  // before any input was read: no pass-through
        EXPECT_EQ(r.out, "") << cmd;
    }
    auto r = telecap({"run", "--stats", bad, "--", "true"});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(r.err, msg);
    EXPECT_EQ(r.out, "");  // no worker was spawned
    // From a config, at the key's line.
    write_file(path("c.yaml"), "stats: " + bad + "\npools:\n  - command: [\"true\"]\n");
    r = telecap({"run", "--config", path("c.yaml")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(r.err, "telecap: " + path("c.yaml") + ":1: stats: cannot create " + bad + ": " +
                         path("no/such/dir") + ": No such file or directory\n");
    // A directory is not writable as a file either.
    r = telecap({"parse", "--stats", dir_, data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("cannot write stats to " + dir_ + ": "), std::string::npos) << r;
}

TEST_F(CliTest, StatsCheckLeavesNoFileAndKeepsOldContentUntilTheEnd) {
    // A run that fails after the check (a bad output) leaves no stats file behind...
    const std::string stats = path("stats.json");
    auto r = telecap({"parse", "--stats", stats, "-o", "xml", data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_FALSE(fs::exists(stats));
    // ... and an existing one is not truncated by it.
    write_file(stats, "old");
    r = telecap({"parse", "--stats", stats, "-o", "xml", data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(read_file(stats), "old");
}

// --stats is written whole at exit: the same file as an output, the pass-through, the
// rejects or an input would be overwritten (`parse --stats in.log in.log` destroyed the
// input); each is a usage error, before anything is read or written.
TEST_F(CliTest, StatsOnAnEventsFileOrAnInputIsAUsageError) {
    const std::string input = path("in.log");
    write_file(input, read_file(data("sample.log")));
    auto r = telecap({"parse", "--stats", input, input});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("the input " + input + " is also --stats"), std::string::npos) << r;
    EXPECT_EQ(read_file(input), read_file(data("sample.log")));  // untouched
    r = telecap({"lint", "--stats", input, input});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(read_file(input), read_file(data("sample.log")));

    const std::string events = path("events.jsonl");
    for (const bool exists : {false, true}) {
        if (exists) write_file(events, "kept\n");
        for (const auto& use : std::vector<std::vector<std::string>>{
                 {"-o", "jsonl:" + events}, {"--passthrough", events}, {"--rejects", events}}) {
            auto a = use;
            a.insert(a.begin(), {"parse", "--stats", events});
            a.push_back(data("sample.log"));
            r = telecap(a);
            EXPECT_EQ(r.code, 2) << testing::PrintToString(a) << r;
            EXPECT_NE(r.err.find("--stats are both " + events), std::string::npos) << r;
            EXPECT_EQ(fs::exists(events), exists) << testing::PrintToString(a);
            if (exists) {
                EXPECT_EQ(read_file(events), "kept\n");
            }
        }
    }
    // run, from the flags and from a config.
    r = telecap({"run", "--stats", events, "-o", "jsonl:" + events, "--", "true"});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("--stats are both " + events), std::string::npos) << r;
    write_file(path("c.yaml"), "stats: " + events + "\noutputs: [\"jsonl:" + events +
                                   "\"]\npools:\n  - command: [\"true\"]\n");
    r = telecap({"run", "--config", path("c.yaml")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("--stats are both " + events), std::string::npos) << r;
    EXPECT_EQ(read_file(events), "kept\n");
    // Another file is fine.
    r = telecap({"parse", "--stats", path("s.json"), "-o", "jsonl:" + events, input});
    EXPECT_EQ(r.code, 0) << r;
}

// --- unknown events --------------------------------------------------------------------

const std::string custom_events =
    "TELEMETRY:{\"event\":\"my.custom.event\",\"measurements\":{\"count\":1}}\n"
    "hello\n"
    "TELEMETRY:{\"event\":\"my.custom.event\",\"measurements\":{\"count\":2}}\n"
    "TELEMETRY:{\"event\":\"other.one\",\"measurements\":{}}\n";

std::size_t occurrences(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

// By default (the built-in catalog's policy) an unknown event is rejected as before, and
// now said: one warning per distinct name at the default log level, with what to do.
TEST_F(CliTest, UnknownEventsAreRejectedWithOneWarningPerName) {
    const std::string in = path("custom.log"), rejects = path("rejects.jsonl");
    write_file(in, custom_events);
    for (const std::vector<std::string>& flag :
         {std::vector<std::string>{}, std::vector<std::string>{"--unknown-events", "reject"}}) {
        auto a = flag;
        a.insert(a.begin(), {"parse", "--rejects", rejects, "--stats", path("s.json")});
        a.push_back(in);
        ::unlink(rejects.c_str());
        const auto r = telecap(a);
        EXPECT_EQ(r.code, 0) << r;
        EXPECT_EQ(r.out, "");
        EXPECT_EQ(occurrences(r.err, "unknown event \"my.custom.event\""), 1u) << r;
        EXPECT_EQ(occurrences(r.err, "unknown event \"other.one\""), 1u) << r;
        EXPECT_NE(r.err.find("--catalog FILE"), std::string::npos) << r;
        EXPECT_NE(r.err.find("--unknown-events keep"), std::string::npos) << r;
        EXPECT_EQ(occurrences(read_file(rejects), "\"reason\":\"unknown_event\""), 3u);
        EXPECT_NE(read_file(path("s.json")).find("\"unknown_event\":3"), std::string::npos);
    }
    // --log-level error silences the warning.
    const auto quiet = telecap({"--log-level", "error", "parse", in});
    EXPECT_EQ(quiet.err.find("unknown event"), std::string::npos) << quiet;
}

// keep: events with their wire name's parts under the catalog's unknown_event_prefix, no
// warning; the flag wins over the catalog's own policy either way.
TEST_F(CliTest, UnknownEventsKeepMakesThemEvents) {
    const std::string in = path("custom.log");
    write_file(in, custom_events);
    auto r = telecap({"parse", "--unknown-events", "keep", in});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(occurrences(r.out, "\"event\":[\"snakepit\",\"python\",\"my\",\"custom\",\"event\"]"),
              2u)
        << r;
    EXPECT_EQ(occurrences(r.out, "\"event\":[\"snakepit\",\"python\",\"other\",\"one\"]"), 1u) << r;
    EXPECT_EQ(r.err.find("unknown event"), std::string::npos) << r;
    // keep_catalog.json keeps unknown events under acme.other; reject overrides it.
    r = telecap({"parse", "--catalog", data("keep_catalog.json"), "--unknown-events", "reject",
                 "--passthrough", "none", in});
    EXPECT_EQ(r.out, "") << r;
    EXPECT_NE(r.err.find("unknown event \"other.one\""), std::string::npos) << r;
    r = telecap({"catalog", "--unknown-events", "keep"});
    EXPECT_NE(r.out.find("\"unknown_event\": \"keep\""), std::string::npos) << r;
    // A bad value, from the flag and from a config.
    r = telecap({"parse", "--unknown-events", "drop", in});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("--unknown-events must be reject or keep, not \"drop\""),
              std::string::npos)
        << r;
    write_file(path("c.yaml"), "pools:\n  - command: [\"true\"]\nunknown_events: drop\n");
    r = telecap({"run", "--config", path("c.yaml")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find(path("c.yaml") + ":3: unknown_events must be reject or keep"),
              std::string::npos)
        << r;
}

// The YAML key under run, and the warnings' memory is bounded: 64 names, then one line.
TEST_F(CliTest, UnknownEventsFromTheConfigAndBoundedWarnings) {
    std::string lines;
    for (int i = 0; i < 100; ++i)
        lines +=
            "TELEMETRY:{\"event\":\"custom.n" + std::to_string(i) + "\",\"measurements\":{}}\n";
    write_file(path("many.log"), lines);
    auto r = telecap({"parse", "--passthrough", "none", path("many.log")});
    EXPECT_EQ(occurrences(r.err, "unknown event \"custom.n"), 64u) << r;
    EXPECT_EQ(occurrences(r.err, "more than 64 distinct unknown event names"), 1u) << r;

    write_file(path("c.yaml"), "unknown_events: keep\noutputs: [\"jsonl:" + path("ev.jsonl") +
                                   "\"]\npools:\n  - command: [\"/bin/sh\", \"-c\", \"cat " +
                                   path("many.log") + " >&2\"]\n    restart: never\n");
    r = telecap({"run", "--config", path("c.yaml")});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(occurrences(read_file(path("ev.jsonl")), "\"python\",\"custom\",\"n"), 100u) << r;
}

// --- the command line -------------------------------------------------------------------

// An unknown flag is named, with the nearest known one; not what CLI11 could not place.
TEST_F(CliTest, AnUnknownOptionIsNamedWithASuggestion) {
    auto r = telecap({"run", "--restrat", "always", "--", "sleep", "1"});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("unknown option --restrat for run: did you mean --restart?"),
              std::string::npos)
        << r;
    r = telecap({"parse", "--prefx=X", data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("unknown option --prefx for parse: did you mean --prefix?"),
              std::string::npos)
        << r;
    r = telecap({"ctl", "--socket", path("s"), "--jsno", "status"});
    EXPECT_NE(r.err.find("unknown option --jsno for ctl: did you mean --json?"), std::string::npos)
        << r;
    // Far from every option: named, no guess.
    r = telecap({"parse", "--foo", data("clean.log")});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("unknown option --foo for parse\n"), std::string::npos) << r;
    // A value that looks like an option is a value.
    r = telecap({"parse", "--prefix", "--X:", "--passthrough", "none", data("clean.log")});
    EXPECT_EQ(r.code, 0) << r;
}

// Global options work after the subcommand too.
TEST_F(CliTest, GlobalOptionsWorkAfterTheSubcommand) {
    auto r = telecap({"run", "--log-level", "debug", "--", "true"});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_NE(r.err.find("telecap: debug: "), std::string::npos) << r;
    r = telecap({"parse", "--log-level", "debug", data("clean.log")});
    EXPECT_EQ(r.code, 0) << r;
}

// --help lists every output kind, and ctl --help every command.
TEST_F(CliTest, HelpListsEveryOutputAndCtlCommand) {
    for (const char* cmd : {"run", "parse"}) {
        const auto r = telecap({cmd, "--help"});
        EXPECT_EQ(r.code, 0) << r;
        for (const char* kind :
             {"jsonl:PATH", "unix:PATH", "log", "null", "prometheus[:HOST:PORT]", "otlp[:URL]",
              "otlp-logs[:URL]", "http:URL", "grpc[:ADDR]", "--unknown-events"})
            EXPECT_NE(r.out.find(kind), std::string::npos) << cmd << " " << kind << "\n" << r;
    }
    const auto r = telecap({"ctl", "--help"});
    for (const char* c :
         {"status", "stats", "toggle", "sample", "filter", "rate-limit", "reset", "start", "stop",
          "restart", "reload", "reopen", "tap", "--format", "--limit", "--passthrough"})
        EXPECT_NE(r.out.find(c), std::string::npos) << c << "\n" << r;
}

// --- run --check, ${VAR} and paths in a config ------------------------------------------

// --check validates what a start would and starts nothing: no worker runs, no file is made.
TEST_F(CliTest, RunCheckValidatesAndStartsNothing) {
    fs::create_directories(path("conf"));
    const std::string cfg = path("conf/c.yaml");
    write_file(cfg,
               "stats: stats.json\noutputs: [\"jsonl:ev.jsonl\"]\nrejects: rej.jsonl\n"
               "pools:\n  - name: a\n    command: [\"/bin/sh\", \"-c\", \"touch " +
                   path("ran") + "\"]\n    instances: 2\n");
    auto r = telecap({"run", "--config", cfg, "--check"});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, cfg + ": ok: 1 pool: a (2); 1 output\n") << r;
    EXPECT_FALSE(fs::exists(path("ran")));
    EXPECT_FALSE(fs::exists(path("conf/ev.jsonl")));
    EXPECT_FALSE(fs::exists(path("conf/stats.json")));
    EXPECT_FALSE(fs::exists(path("conf/rej.jsonl")));

    // Each problem at its line, exit 2, and still nothing started.
    write_file(path("conf/bad_catalog.json"), "{");
    write_file(path("conf/bad_metrics.yaml"), "metrics: 3\n");
    const std::vector<std::pair<std::string, std::string>> cases{
        {"pools:\n  - command: [\"true\"]\n    restart: sometimes\n",
         ":3: restart must be never, on-failure or always"},
        {"catalog: bad_catalog.json\npools:\n  - command: [\"true\"]\n", ":1: bad catalog: "},
        {"pools:\n  - command: [\"true\"]\n    catalog: nope.json\n", ":3: bad catalog: "},
        {"metrics: bad_metrics.yaml\npools:\n  - command: [\"true\"]\n", ":1: bad metrics file"},
        {"pools:\n  - command: [\"true\"]\noutputs: [\"jsonl:no/such/dir/x.jsonl\"]\n",
         ":3: outputs: cannot create "},
        {"stats: /no/such/dir/s.json\npools:\n  - command: [\"true\"]\n", ":1: stats: cannot "},
        {"pools:\n  - command: [\"true\"]\n  - name: b\n    command: [\"no-such-program-x\"]\n",
         ":4: command \"no-such-program-x\" is not found on PATH"},
        {"pools:\n  - command: [\"./nope.sh\"]\n",
         ":2: command \"./nope.sh\" is not an executable"},
        {"outputs: [\"otlp:ftp://x\"]\npools:\n  - command: [\"true\"]\n", ":1: output "},
    };
    for (const auto& [text, want] : cases) {
        write_file(cfg, text);
        r = telecap({"run", "--config", cfg, "--check"});
        EXPECT_EQ(r.code, 2) << text << r;
        EXPECT_NE(r.err.find(cfg + want), std::string::npos) << text << r;
        EXPECT_EQ(r.out, "") << text;
    }
    // Two uses of one file (said at start, so by --check too).
    write_file(cfg,
               "stats: x.json\noutputs: [\"jsonl:x.json\"]\npools:\n  - command: [\"true\"]\n");
    r = telecap({"run", "--config", cfg, "--check"});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find("are both " + path("conf/x.json")), std::string::npos) << r;
}

// ${VAR} and ${VAR:-default} in values; unset without a default is an error at its line;
// $${ is a literal ${ (for a shell in a command).
TEST_F(CliTest, ConfigValuesExpandEnvironmentVariables) {
    const std::string cfg = path("env.yaml");
    ::setenv("TELECAP_TEST_OUT", path("from-env.jsonl").c_str(), 1);
    ::setenv("TELECAP_TEST_EMPTY", "", 1);
    ::unsetenv("TELECAP_TEST_UNSET");
    write_file(cfg, "outputs: [\"jsonl:${TELECAP_TEST_OUT}\", \"jsonl:${TELECAP_TEST_UNSET:-" +
                        path("default.jsonl") +
                        "}\"]\ngrace: ${TELECAP_TEST_EMPTY:-3}\npools:\n  - command: [\"/bin/sh\", "
                        "\"-c\", \"echo \\\"TELEMETRY:{\\\\\\\"event\\\\\\\":\\\\\\\"python.call."
                        "start\\\\\\\",\\\\\\\"measurements\\\\\\\":{}}\\\" >&2; echo $${HOME}\"]\n"
                        "    restart: never\n");
    auto r = telecap({"run", "--config", cfg});
    EXPECT_EQ(r.code, 0) << r << read_file(cfg);
    EXPECT_NE(read_file(path("from-env.jsonl")).find("\"call\",\"start\""), std::string::npos);
    EXPECT_NE(read_file(path("default.jsonl")).find("\"call\",\"start\""), std::string::npos);
    EXPECT_NE(r.out.find(std::string(std::getenv("HOME")) + "\n"), std::string::npos) << r;

    write_file(cfg, "grace: 2\npools:\n  - command: [\"${TELECAP_TEST_UNSET}\"]\n");
    r = telecap({"run", "--config", cfg});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find(cfg + ":3: ${TELECAP_TEST_UNSET} is not set"), std::string::npos) << r;
    write_file(cfg, "grace: ${TELECAP_TEST_OUT}\npools:\n  - command: [\"true\"]\n");
    r = telecap({"run", "--config", cfg});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find(cfg + ":1: grace has the wrong type"), std::string::npos) << r;
    write_file(cfg, "pools:\n  - command: [\"${1BAD}\"]\n");
    r = telecap({"run", "--config", cfg});
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_NE(r.err.find(cfg + ":2: \"${1BAD}\" is not a variable"), std::string::npos) << r;
}

// Relative paths in a config are from its folder, not from where telecap starts.
TEST_F(CliTest, RelativePathsInAConfigAreFromItsFolder) {
    fs::create_directories(path("conf/work"));
    write_file(path("conf/cat.json"), read_file(data("keep_catalog.json")));
    const std::string cfg = path("conf/c.yaml");
    write_file(cfg,
               "outputs: [\"jsonl:ev.jsonl\"]\nstats: stats.json\nrejects: rej.jsonl\n"
               "passthrough: pass.log\ncatalog: cat.json\npools:\n  - name: p\n    cwd: work\n"
               "    outputs: [\"jsonl:pool.jsonl\"]\n"
               "    command: [\"/bin/sh\", \"-c\", \"pwd > where; echo hello >&2; "
               "echo 'TELEMETRY:{\\\"event\\\":\\\"job.done\\\",\\\"measurements\\\":{}}' >&2; "
               "echo 'TELEMETRY:{' >&2\"]\n    restart: never\n");
    const auto r = telecap({"run", "--config", cfg});  // from the test's working directory
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(read_file(path("conf/work/where")), path("conf/work") + "\n");
    EXPECT_NE(read_file(path("conf/ev.jsonl")).find("[\"acme\",\"job\",\"done\"]"),
              std::string::npos);
    EXPECT_NE(read_file(path("conf/pool.jsonl")).find("[\"acme\",\"job\",\"done\"]"),
              std::string::npos);
    EXPECT_NE(read_file(path("conf/pass.log")).find("hello\n"), std::string::npos);
    EXPECT_NE(read_file(path("conf/rej.jsonl")).find("invalid_json"), std::string::npos);
    EXPECT_TRUE(fs::exists(path("conf/stats.json")));
}

// docs/catalog.md's example catalog (tests/data/custom_catalog.json) turns the custom event
// into an event of its own.
TEST_F(CliTest, TheDocumentedCustomCatalogKeepsACustomEvent) {
    write_file(path("w.log"),
               "TELEMETRY:{\"event\":\"my.custom.event\",\"measurements\":{\"amount_cents\":1200},"
               "\"metadata\":{\"customer\":\"c-7\"}}\n");
    auto r = telecap({"lint", "--catalog", data("custom_catalog.json"), path("w.log")});
    EXPECT_EQ(r.code, 0) << r;
    r = telecap({"parse", "--catalog", data("custom_catalog.json"), path("w.log")});
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_NE(r.out.find("{\"event\":[\"acme\",\"billing\",\"invoice\",\"sent\"],\"measurements\":"
                         "{\"amount_cents\":1200}"),
              std::string::npos)
        << r;
    EXPECT_EQ(r.err, "");
}

}  // namespace
