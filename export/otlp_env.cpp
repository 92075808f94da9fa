#include "export/otlp_env.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <stdexcept>

#include "telecap/version.hpp"

extern char** environ;

namespace telecap::exporting {

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A "%" not followed by two hex digits is kept as it is (lenient, like the SDKs).
std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// A set, non-empty value (SDKs treat an empty variable as unset).
std::optional<std::string> get(const env_lookup& env, const std::string& name) {
    auto v = env(name);
    if (!v || trim(*v).empty()) return std::nullopt;
    return std::string(trim(*v));
}

std::chrono::milliseconds millis(const env_lookup& env, const std::string& name,
                                 std::chrono::milliseconds fallback) {
    const auto v = get(env, name);
    if (!v) return fallback;
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || ptr != v->data() + v->size() || n <= 0)
        throw std::runtime_error(name + "=\"" + *v +
                                 "\": expected a positive number of milliseconds");
    return std::chrono::milliseconds(n);
}

net::url parse_or_throw(std::string_view text, std::string_view what) {
    std::string error;
    auto u = net::parse_url(text, &error);
    if (!u) throw std::runtime_error(std::string(what) + ": " + error);
    return *u;
}

std::string append_signal(std::string path, std::string_view suffix) {
    while (!path.empty() && path.back() == '/') path.pop_back();
    return path + std::string(suffix);
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    return buf;
}

// A version 4 UUID (RFC 9562), one per process: a start of telecap is one instance.
const std::string& instance_id() {
    static const std::string id = [] {
        std::random_device rd;
        unsigned char b[16];
        for (auto& c : b) c = static_cast<unsigned char>(rd());
        b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
        b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
        static constexpr char hexd[] = "0123456789abcdef";
        std::string out;
        for (int i = 0; i < 16; ++i) {
            if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
            out += hexd[b[i] >> 4];
            out += hexd[b[i] & 15];
        }
        return out;
    }();
    return id;
}

}  // namespace

env_lookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (!v) return std::nullopt;
        return std::string(v);
    };
}

std::vector<std::pair<std::string, std::string>> parse_key_values(
    std::string_view text, std::string_view what, std::vector<std::string>& warnings) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const auto item = trim(text.substr(0, comma));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (item.empty()) continue;
        const auto eq = item.find('=');
        const std::string k =
            eq == std::string_view::npos ? std::string{} : percent_decode(trim(item.substr(0, eq)));
        if (eq == std::string_view::npos || k.empty()) {
            warnings.push_back(std::string(what) + ": ignoring \"" + std::string(item) +
                               "\", expected key=value");
            continue;
        }
        std::string v = percent_decode(trim(item.substr(eq + 1)));
        // A repeated key: the last one wins, as in the SDKs.
        auto it =
            std::find_if(out.begin(), out.end(), [&](const auto& kv) { return kv.first == k; });
        if (it != out.end())
            it->second = std::move(v);
        else
            out.emplace_back(k, std::move(v));
    }
    return out;
}

otlp_settings read_otlp_settings(otlp_signal signal, std::string_view cli_url,
                                 const env_lookup& env) {
    otlp_settings s;
    if (auto d = get(env, "OTEL_SDK_DISABLED")) {
        const auto v = lower(*d);
        if (v == "true") {
            s.disabled = true;
            return s;
        }
        if (v != "false")
            s.warnings.push_back("OTEL_SDK_DISABLED=\"" + *d +
                                 "\": expected true or false, "
                                 "taken as false");
    }
    const std::string sig = signal == otlp_signal::metrics ? "metrics" : "logs";
    const std::string SIG = upper(sig);
    const std::string suffix = "/v1/" + sig;
    const std::string specific = "OTEL_EXPORTER_OTLP_" + SIG + "_";

    if (!cli_url.empty()) {
        s.endpoint = parse_or_throw(cli_url, "otlp output");
        if (!ends_with(s.endpoint.path, suffix))
            s.endpoint.path = append_signal(s.endpoint.path, suffix);
    } else if (auto e = get(env, specific + "ENDPOINT")) {
        s.endpoint = parse_or_throw(*e, specific + "ENDPOINT");
    } else if (auto b = get(env, "OTEL_EXPORTER_OTLP_ENDPOINT")) {
        s.endpoint = parse_or_throw(*b, "OTEL_EXPORTER_OTLP_ENDPOINT");
        s.endpoint.path = append_signal(s.endpoint.path, suffix);
    } else {
        s.endpoint = parse_or_throw("http://localhost:4318" + suffix, "default endpoint");
    }

    const auto protocol_var =
        get(env, specific + "PROTOCOL") ? specific + "PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
    if (auto p = get(env, protocol_var)) {
        if (*p == "http/protobuf")
            s.warnings.push_back(protocol_var +
                                 "=http/protobuf: telecap sends http/json "
                                 "(OTLP/HTTP receivers accept both on the same paths)");
        else if (*p == "grpc")
            throw std::runtime_error(protocol_var +
                                     "=grpc: not supported, telecap exports "
                                     "OTLP over HTTP only (http/json, usually on port 4318)");
        else if (*p != "http/json")
            throw std::runtime_error(protocol_var + "=\"" + *p +
                                     "\": unknown protocol, "
                                     "expected http/json (or http/protobuf, grpc)");
    }

    // A header the request cannot carry is a startup error: httplib would write it as is.
    const auto headers_of = [&](const std::string& var, const std::string& text) {
        auto kv = parse_key_values(text, var, s.warnings);
        for (const auto& [k, v] : kv)
            if (auto why = net::header_problem(k, v); !why.empty())
                throw std::runtime_error(var + ": " + why);
        return kv;
    };
    if (auto h = get(env, "OTEL_EXPORTER_OTLP_HEADERS"))
        s.headers = headers_of("OTEL_EXPORTER_OTLP_HEADERS", *h);
    if (auto h = get(env, specific + "HEADERS")) {
        for (auto& [k, v] : headers_of(specific + "HEADERS", *h)) {
            // Header names are case-insensitive: the signal's one replaces the general one.
            auto it = std::find_if(s.headers.begin(), s.headers.end(),
                                   [&](const auto& kv) { return lower(kv.first) == lower(k); });
            if (it != s.headers.end())
                it->second = std::move(v);
            else
                s.headers.emplace_back(std::move(k), std::move(v));
        }
    }

    s.timeout = get(env, specific + "TIMEOUT")
                    ? millis(env, specific + "TIMEOUT", s.timeout)
                    : millis(env, "OTEL_EXPORTER_OTLP_TIMEOUT", s.timeout);
    if (signal == otlp_signal::metrics) {
        s.export_interval = millis(env, "OTEL_METRIC_EXPORT_INTERVAL", s.export_interval);
        if (auto t = get(env, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
            t && lower(*t) != "cumulative")
            s.warnings.push_back("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=\"" + *t +
                                 "\": telecap exports cumulative temporality only");
    }
    // The signal's variable, else the general one: (name, value) of the one set.
    const auto either =
        [&](const std::string& what) -> std::optional<std::pair<std::string, std::string>> {
        if (auto v = get(env, specific + what)) return std::pair{specific + what, *v};
        if (auto v = get(env, "OTEL_EXPORTER_OTLP_" + what))
            return std::pair{"OTEL_EXPORTER_OTLP_" + what, *v};
        return std::nullopt;
    };
    // A file named for TLS must be there at startup, not at the first export.
    const auto readable = [](const std::pair<std::string, std::string>& var) {
        if (::access(var.second.c_str(), R_OK) != 0)
            throw std::runtime_error(var.first + "=\"" + var.second +
                                     "\": cannot read it: " + std::strerror(errno));
        return var.second;
    };
    if (auto c = either("CERTIFICATE")) s.ca_file = readable(*c);
    const auto cert = either("CLIENT_CERTIFICATE");
    const auto key = either("CLIENT_KEY");
    if (cert.has_value() != key.has_value())
        throw std::runtime_error((cert ? cert->first : key->first) +
                                 " is set without its pair: a client certificate needs "
                                 "both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY");
    if (cert) {
        s.client_cert = readable(*cert);
        s.client_key = readable(*key);
    }
    if ((!s.ca_file.empty() || cert) && !s.endpoint.tls())
        s.warnings.push_back("TLS files are set but the endpoint " + s.endpoint.str() +
                             " is http: they are not used");
    if (auto c = either("COMPRESSION")) {
        const auto v = lower(c->second);
        if (v == "gzip")
            s.gzip = true;
        else if (v != "none")
            throw std::runtime_error(c->first + "=\"" + c->second +
                                     "\": unknown compression, expected gzip or none");
    }
    if (signal == otlp_signal::metrics) {
        s.export_timeout = millis(env, "OTEL_METRIC_EXPORT_TIMEOUT", s.export_timeout);
        s.timeout = std::min(s.timeout, s.export_timeout);
    }

    string_attributes attrs;
    if (auto r = get(env, "OTEL_RESOURCE_ATTRIBUTES"))
        attrs = parse_key_values(*r, "OTEL_RESOURCE_ATTRIBUTES", s.warnings);
    std::string service = "telecap";
    auto named = std::find_if(attrs.begin(), attrs.end(),
                              [](const auto& kv) { return kv.first == "service.name"; });
    if (named != attrs.end()) {
        service = named->second;
        attrs.erase(named);
    }
    if (auto n = get(env, "OTEL_SERVICE_NAME")) service = *n;
    s.resource.emplace_back("service.name", std::move(service));
    for (auto& kv : attrs) s.resource.push_back(std::move(kv));
    // What tells this telecap from another one pushing the same series: set by the
    // attributes, or else found here.
    const auto add = [&](const char* k, std::string v) {
        if (std::none_of(s.resource.begin(), s.resource.end(),
                         [&](const auto& kv) { return kv.first == k; }))
            s.resource.emplace_back(k, std::move(v));
    };
    add("host.name", host_name());
    add("service.instance.id", instance_id());
    add("process.pid", std::to_string(::getpid()));
    add("telemetry.sdk.name", "telecap");
    add("telemetry.sdk.language", "cpp");
    add("telemetry.sdk.version", version_string);
    return s;
}

std::vector<std::string> unhonoured_otel_variables(const std::vector<std::string>& names) {
    static const char* const read_here[] = {
        "OTEL_SDK_DISABLED",          "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",   "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_METRIC_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"};
    static const char* const per_signal[] = {"ENDPOINT",           "HEADERS",     "TIMEOUT",
                                             "PROTOCOL",           "CERTIFICATE", "CLIENT_KEY",
                                             "CLIENT_CERTIFICATE", "COMPRESSION"};
    std::vector<std::string> out;
    for (const auto& n : names) {
        if (n.rfind("OTEL_", 0) != 0) continue;
        bool known = std::any_of(std::begin(read_here), std::end(read_here),
                                 [&](const char* k) { return n == k; });
        for (const char* scope :
             {"OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_METRICS_", "OTEL_EXPORTER_OTLP_LOGS_"})
            for (const char* v : per_signal)
                if (!known && n == std::string(scope) + v) known = true;
        if (!known) out.push_back(n);
    }
    return out;
}

std::vector<std::string> environment_names() {
    std::vector<std::string> out;
    for (char** e = environ; e && *e; ++e) {
        const std::string_view entry(*e);
        out.emplace_back(entry.substr(0, entry.find('=')));
    }
    return out;
}

}  // namespace telecap::exporting
