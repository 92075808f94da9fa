// log_handler::format: the debug view's line, and worker text that must not escape it.
#include "outputs/log_handler.hpp"

#include <gtest/gtest.h>

#include <string>

namespace telecap {
namespace {

using namespace std::string_literals;

event base() {
    event ev;
    ev.name = {"snakepit", "python", "tool", "execution", "stop"};
    ev.measurements = {{"duration", std::int64_t{1500}}, {"ratio", 0.25}};
    ev.metadata = {{"tool", std::string("search")},
                   {"node", std::string("host-a")},
                   {"python_pid", std::int64_t{4242}},
                   {"correlation_id", nullptr},
                   {"timestamp_ns", std::int64_t{1}}};
    return ev;
}

TEST(LogHandlerFormat, PlainEvent) {
    EXPECT_EQ(log_handler::format(base()),
              "snakepit.python.tool.execution.stop duration=1500 ratio=0.25 | tool=\"search\" "
              "python_pid=4242 correlation_id=null");
}

TEST(LogHandlerFormat, ControlCharactersInValuesAreEscaped) {
    event ev = base();
    ev.metadata = {{"tool", "a\nfake.event x=1\r\t\x1b[31mred\x7f\x01"s}};
    ev.measurements = {{"label", "q\"uote\\"s}};
    EXPECT_EQ(log_handler::format(ev),
              "snakepit.python.tool.execution.stop label=\"q\\\"uote\\\\\" | "
              "tool=\"a\\nfake.event x=1\\r\\t\\x1b[31mred\\x7f\\x01\"");
}

TEST(LogHandlerFormat, ControlCharactersAndSeparatorsInKeysAreEscaped) {
    event ev = base();
    ev.measurements = {{"d\nx", std::int64_t{1}}};
    ev.metadata = {{"k\x1b]0;title\x07", "v"s}, {"a=b c|\"d", "v"s}, {"nul\0z"s, "v"s}};
    EXPECT_EQ(log_handler::format(ev),
              "snakepit.python.tool.execution.stop d\\nx=1 | k\\x1b]0;title\\x07=\"v\" "
              "a\\x3db\\x20c\\x7c\\\"d=\"v\" nul\\x00z=\"v\"");
}

TEST(LogHandlerFormat, NamePartsAreEscaped) {
    event ev = base();
    ev.name = {"acme", "bad\nname", "x y"};
    ev.measurements.clear();
    ev.metadata.clear();
    EXPECT_EQ(log_handler::format(ev), "acme.bad\\nname.x\\x20y |");
}

TEST(LogHandlerFormat, Utf8IsKeptC1AndInvalidBytesAreEscaped) {
    event ev = base();
    ev.measurements.clear();
    // é (valid), U+009B (C1 CSI), a lone continuation byte, a truncated sequence at the end.
    ev.metadata = {{"k\xc3\xa9",
                    "caf\xc3\xa9 \xc2\x9b"
                    "2J \x80 \xe2\x82"s}};
    EXPECT_EQ(log_handler::format(ev),
              "snakepit.python.tool.execution.stop | k\xc3\xa9=\"caf\xc3\xa9 \\u009b2J \\x80 "
              "\\xe2\\x82\"");
}

}  // namespace
}  // namespace telecap
