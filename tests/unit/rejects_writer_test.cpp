// rejects_writer: one JSON object per rejected line, naming its source, escaped, whole even
// with two sources writing from two threads.
#include "io/rejects_writer.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <thread>
#include <vector>

#include "support/unit_helpers.hpp"

namespace telecap {
namespace {

using test::deadline_in;

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0, nl;
    while ((nl = s.find('\n', at)) != std::string::npos) {
        out.push_back(s.substr(at, nl - at));
        at = nl + 1;
    }
    EXPECT_EQ(at, s.size()) << "a last line without newline";
    return out;
}

class RejectsWriterTest : public testing::Test {
protected:
    void SetUp() override {
        auto w = stream_writer::for_file(dir / "rejects.jsonl");
        ASSERT_TRUE(w);
        out = *w;
    }
    std::vector<std::string> written() {
        out->close(deadline_in());
        return lines_of(test::file_text(dir / "rejects.jsonl"));
    }
    test::temp_dir dir;
    std::shared_ptr<stream_writer> out;
};

TEST_F(RejectsWriterTest, AnOversizeLinesRecordKeepsAtMost64KiBOfItsHead) {
    rejects_writer rw(out);
    // A head of --max-line bytes (up to 1 GiB): the record keeps 64 KiB of it, cut before
    // the 3-byte character that straddles the limit rather than inside it.
    std::string head = "TELEMETRY:" + std::string(rejects_writer::max_head - 11, 'a');
    head += "\xe2\x82\xac";  // U+20AC across the 64 KiB mark
    head += std::string(std::size_t{1} << 20, 'b');
    rw.write({reject_reason::oversize, "too long", 1, 1 << 20, head, true}, "w");
    rw.write({reject_reason::invalid_json, "", 2, 0, head.substr(0, 100000), false}, "w");
    const auto lines = written();
    ASSERT_EQ(lines.size(), 2u);
    rapidjson::Document d;
    ASSERT_FALSE(d.Parse(lines[0].c_str()).HasParseError());
    EXPECT_EQ(std::string(d["text"].GetString()), head.substr(0, rejects_writer::max_head - 1));
    EXPECT_TRUE(d["truncated"].GetBool());
    ASSERT_FALSE(d.Parse(lines[1].c_str()).HasParseError());
    EXPECT_EQ(d["text"].GetStringLength(), 100000u);  // a whole line is never cut
}

TEST_F(RejectsWriterTest, OneJsonObjectPerReject) {
    rejects_writer rw(out);
    EXPECT_EQ(rw.writer(), out.get());
    const std::string text = "TELEMETRY: {\"bad\": \"quote\" and \x01 control";
    rw.write({reject_reason::invalid_json, "missing a comma", 7, 12, text, false}, "app.log");
    rw.write({reject_reason::oversize, "", 9, 0, "TELEMETRY: {\"head", true}, "w\"1");
    const auto lines = written();
    ASSERT_EQ(lines.size(), 2u);

    rapidjson::Document d;
    ASSERT_FALSE(d.Parse(lines[0].c_str()).HasParseError()) << lines[0];
    EXPECT_STREQ(d["source"].GetString(), "app.log");
    EXPECT_EQ(d["line"].GetUint64(), 7u);
    EXPECT_STREQ(d["reason"].GetString(), "invalid_json");
    EXPECT_STREQ(d["detail"].GetString(), "missing a comma");
    EXPECT_EQ(d["offset"].GetUint64(), 12u);
    EXPECT_EQ(std::string(d["text"].GetString(), d["text"].GetStringLength()), text);
    EXPECT_FALSE(d["truncated"].GetBool());

    ASSERT_FALSE(d.Parse(lines[1].c_str()).HasParseError()) << lines[1];
    EXPECT_STREQ(d["source"].GetString(), "w\"1");
    EXPECT_STREQ(d["reason"].GetString(), "oversize");
    EXPECT_TRUE(d["truncated"].GetBool());
}

TEST_F(RejectsWriterTest, SourceNamesItsRejectsAndCanBeRenamed) {
    rejects_writer rw(out);
    rejects_writer::source s(rw, "worker 1");
    s.on_reject({reject_reason::bad_shape, "no event", 1, 0, "TELEMETRY: {}", false});
    s.rename("worker 1 (pid 42)");
    s.on_reject({reject_reason::unknown_event, "x.y", 2, 0, "TELEMETRY: {}", false});
    const auto lines = written();
    ASSERT_EQ(lines.size(), 2u);
    rapidjson::Document d;
    d.Parse(lines[0].c_str());
    EXPECT_STREQ(d["source"].GetString(), "worker 1");
    EXPECT_STREQ(d["reason"].GetString(), "bad_shape");
    d.Parse(lines[1].c_str());
    EXPECT_STREQ(d["source"].GetString(), "worker 1 (pid 42)");
    EXPECT_STREQ(d["reason"].GetString(), "unknown_event");
}

TEST_F(RejectsWriterTest, RejectsAndPassThroughOnOneStreamNeverCut) {
    // Two writers of their own (one per thread, as rejects_writer keeps a scratch line) on one
    // stream, plus a third thread appending plain lines to it.
    rejects_writer r1(out), r2(out);
    constexpr int each = 2000;
    const std::string big(3000, 'T');
    auto produce = [&](rejects_writer& rw, const char* src) {
        for (int i = 0; i < each; ++i)
            rw.write({reject_reason::invalid_json, "d", static_cast<std::uint64_t>(i), 0,
                      i % 10 == 0 ? std::string_view(big) : std::string_view("short"), false},
                     src);
    };
    std::thread t1([&] { produce(r1, "one"); });
    std::thread t2([&] { produce(r2, "two"); });
    std::thread t3([&] {
        for (int i = 0; i < each; ++i) out->append("plain " + std::to_string(i) + "\n");
    });
    t1.join();
    t2.join();
    t3.join();
    EXPECT_FALSE(out->lost());
    const auto lines = written();
    ASSERT_EQ(lines.size(), 3u * each);
    std::uint64_t next_one = 0, next_two = 0, next_plain = 0;
    for (const auto& l : lines) {
        if (l.rfind("plain ", 0) == 0) {
            ASSERT_EQ(l, "plain " + std::to_string(next_plain++));
            continue;
        }
        rapidjson::Document d;
        ASSERT_FALSE(d.Parse(l.c_str()).HasParseError()) << "a cut line: " << l.substr(0, 60);
        const std::string src = d["source"].GetString();
        auto& next = src == "one" ? next_one : next_two;
        ASSERT_EQ(d["line"].GetUint64(), next++);
    }
    EXPECT_EQ(next_one, static_cast<std::uint64_t>(each));
    EXPECT_EQ(next_two, static_cast<std::uint64_t>(each));
}

}  // namespace
}  // namespace telecap
