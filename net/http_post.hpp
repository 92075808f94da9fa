#pragma once
// A small HTTP(S) POST client over cpp-httplib for the exporters. Every outcome is a value:
// a status with its body and Retry-After, or a transport error (refused, timeout, TLS) with a
// message; it never throws. https verifies the server's certificate against the system CA
// store (or a given CA file) and its host name; there is no switch to turn that off. A client
// certificate and key (PEM files) may be given for mutual TLS. Every request says
// "User-Agent: telecap/<version>" unless the headers name one. A connection that fails
// because the host name does not resolve says "cannot resolve HOST".
// httplib stays out of this header: it needs compile definitions its users must not forget.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "telecap/net/url.hpp"

namespace telecap::net {

enum class transport_error : std::uint8_t { none, connect, timeout, tls, other };
std::string_view to_string(transport_error e) noexcept;

using http_headers = std::vector<std::pair<std::string, std::string>>;

// The most of a response body post() keeps (the exporters read at most a partialSuccess from
// it). A longer body is cut off there and the connection closed: the status still counts.
inline constexpr std::size_t max_response_body = 64 * 1024;

struct http_result {
    int status = 0;  // 0 when the request failed in transport
    transport_error error = transport_error::none;
    std::string error_text;   // "connection refused ..." for transport errors
    std::string retry_after;  // the Retry-After header, "" when absent
    std::string body;         // at most max_response_body bytes of it

    bool transport_failed() const noexcept { return error != transport_error::none; }
};

// Why `name: value` cannot be sent as a request header, or "" when it can: a name must be an
// HTTP token (RFC 9110: letters, digits, !#$%&'*+-.^_`|~), a value must not hold CR, LF, NUL
// or other control characters but tab (they would end the header early and inject the rest
// into the request, which httplib does not check).
std::string header_problem(std::string_view name, std::string_view value);

class http_client {
public:
    // `target`'s scheme, host and port are used; its path is not (post() takes one).
    // `ca_file`: a PEM bundle to trust instead of the system store ("" = system store).
    // `client_cert`, `client_key`: PEM files for a client certificate (both or neither).
    explicit http_client(const url& target, std::string ca_file = {},
                         const std::string& client_cert = {}, const std::string& client_key = {});
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    // One POST, waiting at most about `timeout` for each of connect, send and receive.
    // Not reentrant: one call at a time (the exporters post from one thread).
    http_result post(const std::string& path, const std::string& body,
                     const std::string& content_type, const http_headers& headers,
                     std::chrono::milliseconds timeout);

    // Aborts a post() in progress on another thread (it returns a transport error). For
    // shutdown deadlines. Thread-safe.
    void cancel() noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace telecap::net
