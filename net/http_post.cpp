#include "net/http_post.hpp"

#include <httplib.h>

namespace telecap::net {

std::string_view to_string(transport_error e) noexcept {
    switch (e) {
        case transport_error::none: return "none";
        case transport_error::connect: return "connect";
        case transport_error::timeout: return "timeout";
        case transport_error::tls: return "tls";
        case transport_error::other: return "other";
    }
    return "other";
}

struct http_client::impl {
    url target;
    std::unique_ptr<httplib::ClientImpl> client;
};

http_client::http_client(const url& target, std::string ca_file) : impl_(std::make_unique<impl>()) {
    impl_->target = target;
    if (target.tls()) {
        auto ssl = std::make_unique<httplib::SSLClient>(target.host, target.port);
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
    const auto started = std::chrono::steady_clock::now();
    http_result out;
    auto res = c.Post(path.empty() ? "/" : path, h, body, content_type);
    if (res) {
        out.status = res->status;
        out.retry_after = res->get_header_value("Retry-After");
        out.body = std::move(res->body);
        return out;
    }
    const auto err = res.error();
    const std::string name = httplib::to_string(err);
    out.error_text = "request failed (httplib: " + name + ")";
    switch (err) {
        case httplib::Error::Connection:
            out.error = transport_error::connect;
            out.error_text = "could not connect: refused or unreachable (httplib: " + name + ")";
            break;
        case httplib::Error::ConnectionTimeout:
            out.error = transport_error::timeout;
            out.error_text = "connect timed out (httplib: " + name + ")";
            break;
        case httplib::Error::SSLConnection:
        case httplib::Error::SSLLoadingCerts:
        case httplib::Error::SSLServerVerification:
            out.error = transport_error::tls;
            out.error_text = "TLS handshake or certificate verification failed (httplib: " + name + ")";
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
        default: out.error = transport_error::other; break;
    }
    if (out.error == transport_error::tls && impl_->target.tls()) {
        const long verify = static_cast<httplib::SSLClient&>(c).get_openssl_verify_result();
        if (verify != 0) out.error_text += " (certificate verify result " + std::to_string(verify) + ")";
    }
    return out;
}

}  // namespace telecap::net
