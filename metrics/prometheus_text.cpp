#include "metrics/prometheus_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "capture/utf8.hpp"

namespace telecap::metrics {

exposition negotiate(std::string_view accept) noexcept {
    return accept.find("application/openmetrics-text") != std::string_view::npos
               ? exposition::openmetrics_100
               : exposition::text_004;
}

void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    // Integral values print without an exponent up to 2^53 (counts read best that way).
    if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
        out.append(buf, r.ptr);
        return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

namespace {

// `quote`: label values escape '"' too; 0.0.4's HELP does not, OpenMetrics' does.
void append_escaped(std::string& out, std::string_view v, bool quote) {
    // Malformed UTF-8 would make Prometheus reject the whole scrape.
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    const auto* end = p + v.size();
    while (p < end) {
        const unsigned char c = *p;
        if (c < 0x80) {
            if (c == '\\')
                out += "\\\\";
            else if (c == '\n')
                out += "\\n";
            else if (c == '"' && quote)
                out += "\\\"";
            else
                out += static_cast<char>(c);
            ++p;
            continue;
        }
        const std::size_t n = utf8_sequence_length(p, end);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++p;
        } else {
            out.append(reinterpret_cast<const char*>(p), n);
            p += n;
        }
    }
}

void append_labels(std::string& out, const label_set& labels, std::string_view le = {}) {
    if (labels.empty() && le.empty()) return;
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k;
        out += "=\"";
        append_escaped(out, v, true);
        out += '"';
    }
    if (!le.empty()) {
        if (!first) out += ',';
        out += "le=\"";
        out += le;
        out += '"';
    }
    out += '}';
}

void sample_line(std::string& out, std::string_view name, std::string_view suffix,
                 const label_set& labels, double v, std::string_view le = {}) {
    out += name;
    out += suffix;
    append_labels(out, labels, le);
    out += ' ';
    append_number(out, v);
    out += '\n';
}

std::string_view type_word(family_type t) {
    switch (t) {
        case family_type::counter:
            return "counter";
        case family_type::gauge:
            return "gauge";
        case family_type::histogram:
            return "histogram";
    }
    return "untyped";
}

}  // namespace

void render(std::string& out, const std::vector<family>& families, exposition format) {
    const bool om = format == exposition::openmetrics_100;
    std::string le;
    for (const auto& f : families) {
        if (f.points.empty()) continue;  // a family without samples says nothing
        const bool counter = f.type == family_type::counter;
        // 0.0.4 names the family as its samples are named (name_total); OpenMetrics names
        // the family without the suffix.
        const std::string_view family_suffix = counter && !om ? "_total" : "";
        out += "# HELP ";
        out += f.name;
        out += family_suffix;
        out += ' ';
        append_escaped(out, f.description, om);
        out += "\n# TYPE ";
        out += f.name;
        out += family_suffix;
        out += ' ';
        out += type_word(f.type);
        out += '\n';
        for (const auto& p : f.points) {
            switch (f.type) {
                case family_type::counter:
                    sample_line(out, f.name, "_total", p.labels, p.value);
                    break;
                case family_type::gauge:
                    sample_line(out, f.name, "", p.labels, p.value);
                    break;
                case family_type::histogram: {
                    std::uint64_t cumulative = 0;
                    for (std::size_t i = 0; i < f.bounds.size(); ++i) {
                        cumulative += i < p.bucket_counts.size() ? p.bucket_counts[i] : 0;
                        le.clear();
                        append_number(le, f.bounds[i]);
                        // OpenMetrics wants canonical floats in le ("1.0", not "1").
                        if (om && le.find_first_of(".eE") == std::string::npos) le += ".0";
                        sample_line(out, f.name, "_bucket", p.labels,
                                    static_cast<double>(cumulative), le);
                    }
                    sample_line(out, f.name, "_bucket", p.labels, static_cast<double>(p.count),
                                "+Inf");
                    sample_line(out, f.name, "_sum", p.labels, p.sum);
                    sample_line(out, f.name, "_count", p.labels, static_cast<double>(p.count));
                    break;
                }
            }
        }
    }
    if (om) out += "# EOF\n";
}

}  // namespace telecap::metrics
