#pragma once
// gzip (RFC 1952) for request bodies: OTEL_EXPORTER_OTLP_COMPRESSION=gzip sends them with
// "Content-Encoding: gzip". zlib, from Debian's zlib1g.

#include <string>
#include <string_view>

namespace telecap::net {

// The gzip member holding `data` (zlib's default level). Never fails for want of input; an
// allocation failure inside zlib throws std::bad_alloc.
std::string gzip_compress(std::string_view data);

}  // namespace telecap::net
