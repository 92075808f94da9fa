#include "export/otlp_env.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

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
    if (auto c = get(env, specific + "CERTIFICATE"))
        s.ca_file = *c;
    else if (auto c2 = get(env, "OTEL_EXPORTER_OTLP_CERTIFICATE"))
        s.ca_file = *c2;

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
    return s;
}

}  // namespace telecap::exporting
