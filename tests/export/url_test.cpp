// net::parse_url: the forms the outputs accept (ports, paths, IPv6) and clear refusals.
#include "net/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace telecap::net {
namespace {

struct ok_case {
    const char* text;
    const char* scheme;
    const char* host;
    int port;
    const char* path;
};

TEST(url, parses_the_accepted_forms) {
    const ok_case cases[] = {
        {"http://localhost:4318", "http", "localhost", 4318, ""},
        {"http://localhost:4318/", "http", "localhost", 4318, "/"},
        {"HTTPS://collector.example/otlp/v1/logs", "https", "collector.example", 443,
         "/otlp/v1/logs"},
        {"http://10.0.0.1", "http", "10.0.0.1", 80, ""},
        {"http://[::1]:4318/v1/metrics", "http", "::1", 4318, "/v1/metrics"},
        {"https://[2001:db8::2]", "https", "2001:db8::2", 443, ""},
        {"http://h:1?x=1", "http", "h", 1, "/?x=1"},
        {"http://h:65535/a?b=c", "http", "h", 65535, "/a?b=c"},
    };
    for (const auto& c : cases) {
        std::string error;
        const auto u = parse_url(c.text, &error);
        ASSERT_TRUE(u) << c.text << ": " << error;
        EXPECT_EQ(u->scheme, c.scheme) << c.text;
        EXPECT_EQ(u->host, c.host) << c.text;
        EXPECT_EQ(u->port, c.port) << c.text;
        EXPECT_EQ(u->path, c.path) << c.text;
    }
}

TEST(url, origin_brackets_ipv6_again) {
    EXPECT_EQ(parse_url("http://[::1]:9/x")->str(), "http://[::1]:9/x");
    EXPECT_EQ(parse_url("https://h")->origin(), "https://h:443");
}

TEST(url, refuses_malformed_urls_with_a_reason) {
    const std::pair<const char*, const char*> cases[] = {
        {"localhost:4318", "missing scheme"}, {"ftp://h/", "unsupported scheme"},
        {"http://", "missing host"},          {"http://:80/", "missing host"},
        {"http://h:/", "empty port"},         {"http://h:0", "invalid port"},
        {"http://h:65536", "invalid port"},   {"http://h:12x", "invalid port"},
        {"http://[::1", "unterminated"},      {"http://[zz]:1", "invalid IPv6"},
        {"http://[::1]x", "junk after"},      {"http://u:p@h/", "user info"},
        {"http://h/#frag", "fragments"},      {"http://h o/", "invalid character"},
    };
    for (const auto& [text, why] : cases) {
        std::string error;
        EXPECT_FALSE(parse_url(text, &error)) << text;
        EXPECT_NE(error.find(why), std::string::npos) << text << " -> " << error;
        EXPECT_NE(error.find(redact_url(text)), std::string::npos)
            << "the message names the url: " << error;
    }
}

TEST(url, a_password_is_never_in_a_message) {
    std::string error;
    EXPECT_FALSE(parse_url("http://user:s3cret@h:1/x", &error));
    EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
    EXPECT_NE(error.find("\"http://user:***@h:1/x\""), std::string::npos) << error;
    EXPECT_EQ(redact_url("otlp:https://a:b@c/p?q=d@e"), "otlp:https://a:***@c/p?q=d@e");
    EXPECT_EQ(redact_url("http://a:b:c@h x http://u:v@w"), "http://a:***@h x http://u:***@w");
    EXPECT_EQ(redact_url("http://user@h/"), "http://user@h/") << "no password, nothing hidden";
    EXPECT_EQ(redact_url("http://h:80/a:b@c"), "http://h:80/a:b@c") << "an @ in the path";
    EXPECT_EQ(redact_url("no url"), "no url");
}

}  // namespace
}  // namespace telecap::net
