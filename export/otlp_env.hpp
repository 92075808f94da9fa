#pragma once
// The OTLP exporter settings from the standard OTEL_* environment variables (read through an
// injectable lookup, so tests pass a table), for one signal (metrics or logs):
// - endpoint: a URL given on the command line (`-o otlp:URL`) wins: it is a base like
//   OTEL_EXPORTER_OTLP_ENDPOINT ("/v1/<signal>" is appended) unless its path already ends in
//   "/v1/<signal>". Else OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT, used as is; else
//   OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/<signal>"; else http://localhost:4318/v1/<signal>.
// - headers: OTEL_EXPORTER_OTLP_HEADERS then OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS (the latter
//   wins per key), "k=v,k2=v2" with keys and values percent-decoded and trimmed.
// - timeout: OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT, in ms,
//   default 10000. export interval (metrics): OTEL_METRIC_EXPORT_INTERVAL, ms, default 60000.
// - resource: OTEL_RESOURCE_ATTRIBUTES ("k=v,..." percent-encoded) with service.name from
//   OTEL_SERVICE_NAME when set (it wins), else from the attributes, else "telecap"; service.name
//   comes first, then the attributes, then what identifies this telecap unless the attributes
//   set it: host.name (gethostname), service.instance.id (a random UUID, one per process: every
//   output of one start says the same), process.pid, telemetry.sdk.name "telecap",
//   telemetry.sdk.language "cpp", telemetry.sdk.version (telecap's version).
// - compression: OTEL_EXPORTER_OTLP_<SIGNAL>_COMPRESSION, else OTEL_EXPORTER_OTLP_COMPRESSION:
//   "gzip" or "none" (default); anything else is an error.
// - TLS: OTEL_EXPORTER_OTLP_[<SIGNAL>_]CERTIFICATE (a CA file for https),
//   _CLIENT_CERTIFICATE and _CLIENT_KEY (mutual TLS: both or neither); a file that cannot be
//   read is an error. OTEL_EXPORTER_OTLP_[<SIGNAL>_]INSECURE is not honoured: the spec gives
//   it to gRPC only; over HTTP the URL's scheme decides.
// - metrics: OTEL_METRIC_EXPORT_TIMEOUT (ms, default 30000) bounds each export: every attempt
//   of a request waits at most that long, and its retries end by then.
// - OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL: unset or
//   "http/json" is fine; "http/protobuf" gives a warning (telecap sends http/json, which every
//   OTLP/HTTP receiver accepts on the same paths); "grpc" or anything else is an error.
// - OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE other than "cumulative": a warning (only
//   cumulative is sent). OTEL_EXPORTER_OTLP_[<SIGNAL>_]CERTIFICATE: a CA file for https.
// - OTEL_SDK_DISABLED=true (any case): disabled, nothing else is read.
// unhonoured_otel_variables() names the OTEL_* variables that are set and that none of this
// reads, for the one warning that lists them.
// Errors (a malformed URL or number, an unsupported protocol) throw std::runtime_error naming
// the variable; the problems that do not stop the export are returned as warnings.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/export/otlp_json.hpp"
#include "telecap/net/http_post.hpp"
#include "telecap/net/url.hpp"

namespace telecap::exporting {

using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;

// getenv, for the real process.
env_lookup process_env();

enum class otlp_signal { metrics, logs };

struct otlp_settings {
    bool disabled = false;
    net::url endpoint;  // the full URL to POST to
    net::http_headers headers;
    std::chrono::milliseconds timeout{10000};
    std::chrono::milliseconds export_interval{60000};
    string_attributes resource;
    std::string ca_file;
    std::string client_cert;  // PEM files for mutual TLS ("": none)
    std::string client_key;
    bool gzip = false;
    std::chrono::milliseconds export_timeout{30000};  // metrics: one export's bound
    std::vector<std::string> warnings;
};

otlp_settings read_otlp_settings(otlp_signal signal, std::string_view cli_url,
                                 const env_lookup& env);

// The names of the OTEL_* variables among `names` (an environment's) that telecap does not
// read, in the order given.
std::vector<std::string> unhonoured_otel_variables(const std::vector<std::string>& names);

// The names of the variables in this process's environment.
std::vector<std::string> environment_names();

// "k=v,k2=v2" (W3C baggage-like, percent-encoded) into pairs; entries without "=" or with an
// empty key are skipped and reported in `warnings`, named after `what`.
std::vector<std::pair<std::string, std::string>> parse_key_values(
    std::string_view text, std::string_view what, std::vector<std::string>& warnings);

}  // namespace telecap::exporting
