#include "metrics/metric_config.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/glob.hpp"

namespace telecap::metrics {

std::string_view to_string(metric_kind k) noexcept {
    switch (k) {
        case metric_kind::counter:
            return "counter";
        case metric_kind::histogram:
            return "histogram";
        case metric_kind::gauge:
            return "gauge";
    }
    return "?";
}

std::string sanitize_name(std::string_view name, bool label) {
    std::string out;
    out.reserve(name.size() + 1);
    for (const char c : name) {
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        const char put = ok ? c : '_';
        if (put == '_' && !out.empty() && out.back() == '_') continue;
        out += put;
    }
    if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
    (void)label;  // metric and label names share the rules once ':' is not used
    return out;
}

namespace {

class reader {
public:
    explicit reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void bad(const YAML::Node& n, const std::string& what) const {
        throw metrics_config_error(source_ + ":" + std::to_string(n.Mark().line + 1) + ": " + what);
    }

    template <typename T>
    T scalar(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar()) bad(n, what + " must be a single value");
        try {
            return n.as<T>();
        } catch (const YAML::Exception&) {
            bad(n, what + " has the wrong type");
        }
    }

    void check_keys(const YAML::Node& map, std::initializer_list<const char*> known,
                    const std::string& where) const {
        for (const auto& kv : map) {
            const auto key = scalar<std::string>(kv.first, "a key");
            bool ok = false;
            for (const char* k : known) ok = ok || key == k;
            if (!ok) bad(kv.first, "unknown key \"" + key + "\" in " + where);
        }
    }

    metric_def metric(const YAML::Node& n, metric_kind kind) const {
        const std::string where = std::string(to_string(kind));
        if (!n.IsMap()) bad(n, "each of " + where + "s must be a map with name, event, ...");
        check_keys(n,
                   {"name", "description", "unit", "capture", "event", "measurement", "scale",
                    "buckets", "labels", "max_series"},
                   "a " + where);
        metric_def d;
        d.kind = kind;
        d.line = n.Mark().line + 1;
        const auto name = n["name"];
        if (!name) bad(n, "a " + where + " needs a name");
        d.name = scalar<std::string>(name, "name");
        if (d.name.empty()) bad(name, "name is empty");
        d.wire_name = sanitize_name(d.name, false);
        if (kind == metric_kind::counter && d.wire_name.size() > 6 &&
            d.wire_name.compare(d.wire_name.size() - 6, 6, "_total") == 0)
            d.wire_name.resize(d.wire_name.size() - 6);  // the exporters add it
        for (const char* reserved : {"telecap_", "process_", "otel_"})
            if (d.wire_name.rfind(reserved, 0) == 0)
                bad(name,
                    "\"" + d.name + "\": names starting with " + reserved + " are telecap's own");
        if (auto v = n["description"]) d.description = scalar<std::string>(v, "description");
        if (d.description.empty()) d.description = d.name;  // every family has a HELP
        if (auto v = n["unit"]) d.unit = scalar<std::string>(v, "unit");
        if (auto v = n["capture"]) d.capture = scalar<bool>(v, "capture");
        const auto ev = n["event"];
        if (!ev) bad(n, "\"" + d.name + "\" needs an event (a glob on the dotted event name)");
        d.event = scalar<std::string>(ev, "event");
        if (auto p = glob_error(d.event)) bad(ev, "event: " + *p);
        if (auto v = n["measurement"]) {
            d.measurement = scalar<std::string>(v, "measurement");
            if (d.measurement.empty()) bad(v, "measurement is empty");
        } else if (kind != metric_kind::counter) {
            bad(n, "the " + where + " \"" + d.name + "\" needs a measurement");
        }
        if (auto v = n["scale"]) {
            d.scale = scalar<double>(v, "scale");
            if (!std::isfinite(d.scale) || d.scale == 0)
                bad(v, "scale must be a finite number other than 0");
        }
        if (auto v = n["buckets"]) {
            if (kind != metric_kind::histogram) bad(v, "only histograms have buckets");
            if (!v.IsSequence() || v.size() == 0) bad(v, "buckets must be a list of numbers");
            for (const auto& b : v) {
                const double x = scalar<double>(b, "a bucket");
                if (!std::isfinite(x)) bad(b, "buckets must be finite (+Inf is always added)");
                if (!d.buckets.empty() && x <= d.buckets.back())
                    bad(b, "buckets must be strictly increasing");
                d.buckets.push_back(x);
            }
        } else if (kind == metric_kind::histogram) {
            bad(n, "the histogram \"" + d.name + "\" needs buckets");
        }
        if (auto v = n["labels"]) {
            if (!v.IsSequence())
                bad(v, "labels must be a list of metadata keys (or {name: key} pairs)");
            if (v.size() > max_labels)
                bad(v, "at most " + std::to_string(max_labels) + " labels per metric");
            std::set<std::string> seen;
            for (const auto& l : v) {
                label_def ld;
                std::string wire;  // a name given for the label ({pool: pool_name})
                if (l.IsMap()) {
                    if (l.size() != 1) bad(l, "a renamed label is one {name: metadata_key} pair");
                    const auto pair = *l.begin();
                    wire = scalar<std::string>(pair.first, "a label name");
                    ld.key = scalar<std::string>(pair.second, "a label");
                    if (wire.empty()) bad(l, "a label name is empty");
                } else {
                    ld.key = scalar<std::string>(l, "a label");
                }
                if (ld.key.empty()) bad(l, "a label key is empty");
                // Unique per event or per moment: as labels they make one series each.
                for (const char* refused : {"correlation_id", "timestamp_ns", "python_pid"})
                    if (ld.key == refused)
                        bad(l, "\"" + ld.key +
                                   "\" cannot be a label: a new value on every "
                                   "event or process would make a new series each time");
                ld.name = !wire.empty()              ? sanitize_name(wire, true)
                          : ld.key == event_name_key ? "event"
                                                     : sanitize_name(ld.key, true);
                if (ld.name.rfind("__", 0) == 0)
                    bad(l, "label names starting with __ are reserved");
                if (ld.name == "otel_metric_overflow" ||
                    (kind == metric_kind::histogram && ld.name == "le"))
                    bad(l, "the label \"" + ld.name + "\" is reserved");
                if (!seen.insert(ld.name).second) bad(l, "two labels named \"" + ld.name + "\"");
                d.labels.push_back(std::move(ld));
            }
        }
        if (auto v = n["max_series"]) {
            const auto m = scalar<long long>(v, "max_series");
            if (m < 1 || m > 1000000) bad(v, "max_series must be from 1 to 1000000");
            d.max_series = static_cast<std::size_t>(m);
        }
        return d;
    }

private:
    std::string source_;
};

}  // namespace

metrics_config parse_metrics_config(std::string_view yaml, const std::string& source) {
    reader r(source);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        throw metrics_config_error(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!root.IsMap())
        throw metrics_config_error(source +
                                   ":1: expected a map with service_name, counters, "
                                   "histograms, gauges");
    r.check_keys(root, {"service_name", "counters", "histograms", "gauges"}, "the metrics file");
    metrics_config cfg;
    if (auto v = root["service_name"]) cfg.service_name = r.scalar<std::string>(v, "service_name");
    // Every sample name a metric exposes -> the line that defined it: two metrics whose names
    // sanitize alike, or whose samples would share a name (a counter x and a gauge x_total, a
    // histogram y and a counter y_count), must not silently merge.
    std::map<std::string, int> names;
    for (const auto& [key, kind] : {std::pair{"counters", metric_kind::counter},
                                    std::pair{"histograms", metric_kind::histogram},
                                    std::pair{"gauges", metric_kind::gauge}}) {
        const auto list = root[key];
        if (!list || list.IsNull()) continue;
        if (!list.IsSequence()) r.bad(list, std::string(key) + " must be a list");
        for (const auto& item : list) {
            auto d = r.metric(item, kind);
            std::vector<std::string> samples{d.wire_name};
            if (kind == metric_kind::counter) samples.push_back(d.wire_name + "_total");
            if (kind == metric_kind::histogram)
                for (const char* s : {"_bucket", "_count", "_sum"})
                    samples.push_back(d.wire_name + s);
            for (const auto& s : samples)
                if (auto it = names.find(s); it != names.end())
                    r.bad(item["name"], "\"" + d.name + "\" would be exported as " + s +
                                            ", as the metric at line " +
                                            std::to_string(it->second) + " is");
            for (const auto& s : samples) names.emplace(s, d.line);
            cfg.metrics.push_back(std::move(d));
        }
    }
    return cfg;
}

metrics_config load_metrics_config(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw metrics_config_error(path + ": cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_metrics_config(text.str(), path);
}

metrics_config default_metrics_config() {
    return parse_metrics_config(default_metrics_yaml(), "default metrics");
}

}  // namespace telecap::metrics
