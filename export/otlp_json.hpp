#pragma once
// OTLP/HTTP JSON bodies (the protobuf JSON mapping of opentelemetry-proto, lowerCamelCase
// keys, enums as integers, 64-bit integers as decimal strings), always valid UTF-8: bytes
// that are not UTF-8 in names, labels or values become U+FFFD.
// - Metrics: ExportMetricsServiceRequest, one resource, one scope {name "telecap", version}.
//   counter -> sum {aggregationTemporality 2 (cumulative), isMonotonic true}; gauge -> gauge;
//   histogram -> histogram {aggregationTemporality 2}. Integral values below 2^53 are sent as
//   asInt, others as asDouble; non-finite doubles as "NaN" / "Infinity" / "-Infinity".
//   A histogram point whose bucket_counts is not bounds + 1 long is skipped (not sent, counted
//   by the caller through the returned number of points).
// - Logs: ExportLogsServiceRequest; one logRecord per event: timeUnixNano (the event's, left
//   out when 0), observedTimeUnixNano, severityNumber 9 / severityText "INFO", eventName and
//   body = the dotted event name, attributes = "measurement.<key>" for each measurement, then
//   "metadata.<key>" for each metadata entry that is not null (two namespaces: a metadata
//   "duration" and a measurement "duration" are both kept; a key repeated within one is
//   skipped), then the correlation id, when there is one, as "correlation_id", and also as
//   traceId when it is a W3C trace id (32 lower-case hex digits, not all zero).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "telecap/capture/event.hpp"
#include "telecap/metrics/family.hpp"

namespace telecap::exporting {

using string_attributes = std::vector<std::pair<std::string, std::string>>;

// The request for `families`. Points without a start_ns get `default_start_ns` (sums and
// histograms need one); `now_ns` is every point's timeUnixNano. `points_sent` (optional)
// receives the number of points written.
std::string encode_metrics_request(const std::vector<metrics::family>& families,
                                   const string_attributes& resource, std::int64_t now_ns,
                                   std::int64_t default_start_ns,
                                   std::size_t* points_sent = nullptr);

// Appends one LogRecord JSON object (no separator) for `ev`.
void append_log_record(std::string& out, const event& ev, std::int64_t observed_ns);

// The request around records made by append_log_record.
std::string encode_logs_request(const std::vector<std::string>& records,
                                const string_attributes& resource);

// True when `id` is a W3C trace id: 32 lower-case hex digits, not all zero.
bool is_w3c_trace_id(std::string_view id) noexcept;

// Reads a 2xx response: partialSuccess.<rejected_key> ("rejectedDataPoints",
// "rejectedLogRecords") as a number or decimal string, and its errorMessage. 0 when the body
// is empty, not JSON (a protobuf or plain reply) or has no partialSuccess.
std::uint64_t read_partial_success(std::string_view body, std::string_view rejected_key,
                                   std::string& message);

}  // namespace telecap::exporting
