#pragma once
// An http(s) URL split into what an HTTP client needs: scheme, host, port and path.
// Accepts http://host[:port][/path] and https://..., IPv6 literals in brackets ([::1]:4318).
// No user info, query strings are kept in the path, fragments are refused.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace telecap::net {

struct url {
    std::string scheme;      // "http" or "https" (lower-cased)
    std::string host;        // without brackets: "::1", "example.com"
    std::uint16_t port = 0;  // the explicit port, else 80 / 443
    std::string path;        // "" or starting with "/" (query included)

    bool tls() const noexcept { return scheme == "https"; }
    // "http://host:port" (IPv6 hosts bracketed again), no path.
    std::string origin() const;
    // origin() + path.
    std::string str() const;
};

// Parses `text`; on failure returns nullopt and, when `error` is given, sets it to a message
// fit for the user ("otlp url \"x\": missing scheme, expected http:// or https://").
// The message quotes `text` with any password redacted.
std::optional<url> parse_url(std::string_view text, std::string* error = nullptr);

// `text` with the password of a URL's user info replaced ("http://user:***@host/..."), for
// messages; anything else is returned as it is. Finds the URL anywhere in `text` (an output
// spec such as "otlp:http://u:p@h" too).
std::string redact_url(std::string_view text);

}  // namespace telecap::net
