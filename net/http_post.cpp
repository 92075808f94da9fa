#include "net/http_post.hpp"

#include <httplib.h>
#include <netdb.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "telecap/version.hpp"

namespace telecap::net {

std::string_view to_string(transport_error e) noexcept {
    switch (e) {
        case transport_error::none:
            return "none";
        case transport_error::connect:
            return "connect";
        case transport_error::timeout:
            return "timeout";
        case transport_error::tls:
            return "tls";
        case transport_error::other:
            return "other";
    }
    return "other";
}

std::string header_problem(std::string_view name, std::string_view value) {
    if (name.empty()) return "empty header name";
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        const bool tchar = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
                           (u >= 'A' && u <= 'Z') ||
                           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!tchar) return "header name \"" + std::string(name) + "\" is not an HTTP token";
    }
    for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f)
            return "the value of header \"" + std::string(name) +
                   "\" holds a control character (CR, LF, NUL, ...)";
    }
    return {};
}

namespace {

// Why `target`'s host does not resolve, or "" when it does (or is an address).
std::string resolve_problem(const url& target) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(target.host.c_str(), nullptr, &hints, &found);
    if (found) ::freeaddrinfo(found);
    if (rc == 0) return {};
    if (rc == EAI_SYSTEM) return std::strerror(errno);
    return ::gai_strerror(rc);
}

}  // namespace

struct http_client::impl {
    url target;
    std::unique_ptr<httplib::ClientImpl> client;
};

http_client::http_client(const url& target, std::string ca_file, const std::string& client_cert,
                         const std::string& client_key)
    : impl_(std::make_unique<impl>()) {
    impl_->target = target;
    if (target.tls()) {
        auto ssl = client_cert.empty()
                       ? std::make_unique<httplib::SSLClient>(target.host, target.port)
                       : std::make_unique<httplib::SSLClient>(target.host, target.port, client_cert,
                                                              client_key);
        ssl->enable_server_certificate_verification(true);
        // Without a CA path httplib loads OpenSSL's default paths: the system store.
        if (!ca_file.empty()) ssl->set_ca_cert_path(ca_file);
        impl_->client = std::move(ssl);
    } else {
        impl_->client = std::make_unique<httplib::ClientImpl>(target.host, target.port);
    }
    // One connection per request: batches are seconds apart, and a kept-alive socket the
    // receiver closed meanwhile would turn the next export into a spurious failure.
    impl_->client->set_keep_alive(false);
    impl_->client->set_follow_location(false);
}

http_client::~http_client() = default;

void http_client::cancel() noexcept { impl_->client->stop(); }

http_result http_client::post(const std::string& path, const std::string& body,
                              const std::string& content_type, const http_headers& headers,
                              std::chrono::milliseconds timeout) {
    auto& c = *impl_->client;
    c.set_connection_timeout(timeout);
    c.set_read_timeout(timeout);
    c.set_write_timeout(timeout);
    httplib::Headers h;
    for (const auto& [k, v] : headers) h.emplace(k, v);
    // httplib writes "Host: ::1:port" for IPv6 literals; the brackets are due.
    if (impl_->target.host.find(':') != std::string::npos && !h.count("Host"))
        h.emplace("Host", "[" + impl_->target.host + "]:" + std::to_string(impl_->target.port));
    h.emplace("Content-Type", content_type);
    if (std::none_of(headers.begin(), headers.end(), [](const auto& kv) {
            return kv.first.size() == 10 && strncasecmp(kv.first.c_str(), "user-agent", 10) == 0;
        }))
        h.emplace("User-Agent", std::string("telecap/") + version_string);
    const auto started = std::chrono::steady_clock::now();
    http_result out;
    httplib::Request req;
    req.method = "POST";
    req.path = path.empty() ? "/" : path;
    req.headers = std::move(h);
    req.body = body;
    // httplib would keep the whole body, however large, and read an endless one forever:
    // keep its start and stop reading there (the receiver said what it had to in the status).
    bool cut = false;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        const std::size_t room = max_response_body - out.body.size();
        out.body.append(data, std::min(n, room));
        if (n > room) cut = true;
        return !cut;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool sent = c.send(req, res, err);
    if (sent || (cut && res.status > 0)) {
        out.status = res.status;
        out.retry_after = res.get_header_value("Retry-After");
        return out;
    }
    out.body.clear();
    const std::string name = httplib::to_string(err);
    out.error_text = "request failed (httplib: " + name + ")";
    switch (err) {
        case httplib::Error::Connection:
            out.error = transport_error::connect;
            // httplib says the same for a name that does not resolve: ask the resolver.
            if (auto why = resolve_problem(impl_->target); !why.empty())
                out.error_text = "cannot resolve " + impl_->target.host + ": " + why;
            else
                out.error_text = "could not connect to " + impl_->target.origin() +
                                 ": refused or unreachable (httplib: " + name + ")";
            break;
        case httplib::Error::ConnectionTimeout:
            out.error = transport_error::timeout;
            out.error_text = "connect timed out (httplib: " + name + ")";
            break;
        case httplib::Error::SSLConnection:
        case httplib::Error::SSLLoadingCerts:
        case httplib::Error::SSLServerVerification:
            out.error = transport_error::tls;
            out.error_text =
                "TLS handshake or certificate verification failed (httplib: " + name + ")";
            break;
        case httplib::Error::Read:
        case httplib::Error::Write:
            // httplib reports a read that timed out as a plain read error.
            out.error = std::chrono::steady_clock::now() - started >= timeout * 9 / 10
                            ? transport_error::timeout
                            : transport_error::other;
            if (out.error == transport_error::timeout)
                out.error_text = "no response within " + std::to_string(timeout.count()) +
                                 " ms (httplib: " + name + ")";
            break;
        default:
            out.error = transport_error::other;
            break;
    }
    if (out.error == transport_error::tls && impl_->target.tls()) {
        const long verify = static_cast<httplib::SSLClient&>(c).get_openssl_verify_result();
        if (verify != 0)
            out.error_text += " (certificate verify result " + std::to_string(verify) + ")";
    }
    return out;
}

}  // namespace telecap::net
