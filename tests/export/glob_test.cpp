// core/glob: fnmatch semantics on dotted names (the table includes Snakepit's own examples).
#include "core/glob.hpp"

#include <gtest/gtest.h>

namespace telecap {
namespace {

struct glob_case {
    const char* pattern;
    const char* name;
    bool match;
};

TEST(GlobTest, Table) {
    const glob_case cases[] = {
        {"python.call.*", "python.call.start", true},
        {"python.call.*", "python.call.stop", true},
        {"python.call.*", "python.memory.sampled", false},
        {"tool.*", "tool.execution.start", true},  // '*' crosses dots
        {"*.exception", "tool.execution.exception", true},
        {"*.exception", "python.call.stop", false},
        {"*", "anything.at.all", true},
        {"*", "", true},
        {"python.call.stop", "python.call.stop", true},
        {"python.call.stop", "python.call.stops", false},
        {"python.call.sto?", "python.call.stop", true},
        {"python.call.sto?", "python.call.sto", false},
        {"python.[cm]*", "python.call.start", true},
        {"python.[cm]*", "python.memory.sampled", true},
        {"python.[!cm]*", "python.gc.completed", true},
        {"python.[!cm]*", "python.call.start", false},
        {"python.[a-c]all.*", "python.call.start", true},
        {"python.[a-b]all.*", "python.call.start", false},
        {"Python.*", "python.call.start", false},  // case-sensitive
        {"a*b*c", "aXbYc", true},
        {"a*b*c", "aXbYd", false},
        {"*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
        {"[", "[", true},  // an unclosed class is a literal
        {"snakepit.python.*exception", "snakepit.python.tool.execution.exception", true},
        {"snakepit.python.*exception", "snakepit.python.call.exception", true},
    };
    for (const auto& c : cases)
        EXPECT_EQ(glob_match(c.pattern, c.name), c.match) << c.pattern << " on " << c.name;
}

TEST(GlobTest, Errors) {
    EXPECT_FALSE(glob_error("python.*"));
    EXPECT_FALSE(glob_error("a[bc]d"));
    EXPECT_FALSE(glob_error("a[]]d"));
    ASSERT_TRUE(glob_error("a[bc"));
    EXPECT_NE(glob_error("a[bc")->find("unclosed"), std::string::npos);
    EXPECT_TRUE(glob_error(""));
}

}  // namespace
}  // namespace telecap
