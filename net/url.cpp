#include "net/url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace telecap::net {

namespace {

std::optional<url> fail(std::string* error, std::string_view text, std::string_view why) {
    if (error) *error = "url \"" + redact_url(text) + "\": " + std::string(why);
    return std::nullopt;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool valid_host_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string redact_url(std::string_view text) {
    std::string out;
    std::size_t from = 0;
    for (;;) {
        const auto sep = text.find("://", from);
        if (sep == std::string_view::npos) break;
        const auto start = sep + 3;
        const auto end = std::min(text.find_first_of("/?#", start), text.size());
        const auto at = text.substr(start, end - start).rfind('@');
        if (at != std::string_view::npos) {
            const auto user = text.substr(start, at);
            const auto colon = user.find(':');
            if (colon != std::string_view::npos) {
                out.append(text.substr(from, start + colon + 1 - from));
                out += "***";
                from = start + at;
                continue;
            }
        }
        out.append(text.substr(from, end - from));
        from = end;
    }
    out.append(text.substr(from));
    return out;
}

std::string url::origin() const {
    const bool v6 = host.find(':') != std::string::npos;
    return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string url::str() const { return origin() + path; }

std::optional<url> parse_url(std::string_view text, std::string* error) {
    url u;
    const auto sep = text.find("://");
    if (sep == std::string_view::npos)
        return fail(error, text, "missing scheme, expected http:// or https://");
    u.scheme = lower(text.substr(0, sep));
    if (u.scheme != "http" && u.scheme != "https")
        return fail(error, text, "unsupported scheme \"" + u.scheme + "\", expected http or https");
    std::string_view rest = text.substr(sep + 3);
    if (rest.find('#') != std::string_view::npos)
        return fail(error, text, "fragments (#) are not allowed");
    const auto path_at = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, path_at);
    if (path_at != std::string_view::npos) {
        u.path = std::string(rest.substr(path_at));
        if (u.path.front() == '?') u.path.insert(0, "/");
    }
    if (authority.find('@') != std::string_view::npos)
        return fail(error, text, "user info (user@host) is not supported");
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return fail(error, text, "unterminated [ in host");
        u.host = std::string(authority.substr(1, close - 1));
        if (u.host.empty() ||
            u.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos)
            return fail(error, text, "invalid IPv6 address");
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail(error, text, "junk after ]");
            port_text = after.substr(1);
            if (port_text.empty()) return fail(error, text, "empty port");
        }
    } else {
        const auto colon = authority.find(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return fail(error, text, "empty port");
        }
        for (char c : u.host)
            if (!valid_host_char(c)) return fail(error, text, "invalid character in host");
    }
    if (u.host.empty()) return fail(error, text, "missing host");
    if (!port_text.empty()) {
        unsigned value = 0;
        const auto* end = port_text.data() + port_text.size();
        const auto [ptr, ec] = std::from_chars(port_text.data(), end, value);
        if (ec != std::errc{} || ptr != end || value == 0 || value > 65535)
            return fail(error, text,
                        "invalid port \"" + std::string(port_text) + "\", expected 1-65535");
        u.port = static_cast<std::uint16_t>(value);
    } else {
        u.port = u.tls() ? 443 : 80;
    }
    return u;
}

}  // namespace telecap::net
