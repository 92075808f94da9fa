#include "capture/catalog.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <fstream>
#include <sstream>

namespace telecap {

namespace {

[[noreturn]] void fail(std::string_view source, std::string_view where, std::string_view what) {
    throw catalog_error(std::string(source) + ": " + std::string(where) + ": " + std::string(what));
}

std::vector<std::string> string_list(const rapidjson::Value& v, std::string_view source,
                                     const std::string& where, bool allow_empty = true) {
    if (!v.IsArray()) fail(source, where, "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& item : v.GetArray()) {
        if (!item.IsString()) fail(source, where, "expected an array of strings");
        if (item.GetStringLength() == 0) fail(source, where, "empty string");
        out.emplace_back(item.GetString(), item.GetStringLength());
    }
    if (!allow_empty && out.empty()) fail(source, where, "must not be empty");
    return out;
}

std::string policy_string(const rapidjson::Value& policies, const char* key,
                          std::string_view source) {
    const auto it = policies.FindMember(key);
    if (it == policies.MemberEnd()) return {};
    if (!it->value.IsString()) fail(source, std::string("policies.") + key, "expected a string");
    return it->value.GetString();
}

// policies.KEY, when given, is one of two words: out takes the value that goes with it.
template <typename Policy>
void policy_choice(const rapidjson::Value& policies, const char* key, std::string_view source,
                   std::pair<const char*, Policy> a, std::pair<const char*, Policy> b,
                   Policy& out) {
    const std::string s = policy_string(policies, key, source);
    if (s.empty()) return;
    if (s == a.first)
        out = a.second;
    else if (s == b.first)
        out = b.second;
    else
        fail(source, std::string("policies.") + key,
             "expected \"" + std::string(a.first) + "\" or \"" + b.first + "\", got \"" + s + "\"");
}

}  // namespace

catalog catalog::from_json(std::string_view json, std::string_view source) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError())
        fail(source, "offset " + std::to_string(doc.GetErrorOffset()),
             rapidjson::GetParseError_En(doc.GetParseError()));
    if (!doc.IsObject()) fail(source, "offset 0", "the catalog must be a JSON object");

    catalog c;
    const auto events = doc.FindMember("wire_events");
    if (events == doc.MemberEnd() || !events->value.IsObject())
        fail(source, "wire_events", "missing or not an object");
    for (const auto& m : events->value.GetObject()) {
        const std::string name(m.name.GetString(), m.name.GetStringLength());
        const std::string where = "wire_events." + name;
        if (name.empty()) fail(source, where, "empty wire name");
        if (!m.value.IsObject()) fail(source, where, "expected an object with \"event\"");
        const auto parts = m.value.FindMember("event");
        if (parts == m.value.MemberEnd()) fail(source, where + ".event", "missing");
        wire_event we;
        we.parts = string_list(parts->value, source, where + ".event", false);
        const auto expected = m.value.FindMember("expected_measurements");
        if (expected != m.value.MemberEnd())
            we.expected_measurements =
                string_list(expected->value, source, where + ".expected_measurements");
        if (!c.wire_index_.insert(name, static_cast<std::uint32_t>(c.wire_events_.size())))
            fail(source, where, "duplicate wire name");
        c.wire_events_.push_back(std::move(we));
        c.wire_order_.push_back(name);
    }

    const auto keys = [&](const char* key, auto& set, auto& order) {
        const auto it = doc.FindMember(key);
        if (it == doc.MemberEnd()) fail(source, key, "missing");
        for (auto& k : string_list(it->value, source, key)) {
            if (set.insert(k, 0)) order.push_back(std::move(k));
        }
    };
    keys("measurement_keys", c.measurement_keys_, c.measurement_order_);
    keys("metadata_keys", c.metadata_keys_, c.metadata_order_);

    const auto pool = doc.FindMember("pool_events");
    if (pool != doc.MemberEnd()) {
        if (!pool->value.IsObject()) fail(source, "pool_events", "expected an object");
        for (const auto& m : pool->value.GetObject()) {
            const std::string name(m.name.GetString(), m.name.GetStringLength());
            c.pool_events_[name] = string_list(m.value, source, "pool_events." + name, false);
        }
    }

    const auto pol = doc.FindMember("policies");
    if (pol != doc.MemberEnd()) {
        if (!pol->value.IsObject()) fail(source, "policies", "expected an object");
        const auto& p = pol->value;
        policy_choice(p, "unknown_event", source, {"reject", unknown_event_policy::reject},
                      {"keep", unknown_event_policy::keep}, c.policies_.unknown_event);
        const auto prefix = p.FindMember("unknown_event_prefix");
        if (prefix != p.MemberEnd())
            c.policies_.unknown_event_prefix =
                string_list(prefix->value, source, "policies.unknown_event_prefix");
        policy_choice(p, "unknown_measurement", source,
                      {"reject", unknown_measurement_policy::reject},
                      {"drop", unknown_measurement_policy::drop}, c.policies_.unknown_measurement);
        policy_choice(p, "unknown_metadata", source, {"keep", unknown_metadata_policy::keep},
                      {"drop", unknown_metadata_policy::drop}, c.policies_.unknown_metadata);
        for (const auto& m : p.GetObject()) {
            const std::string_view k(m.name.GetString(), m.name.GetStringLength());
            if (k != "unknown_event" && k != "unknown_event_prefix" && k != "unknown_measurement" &&
                k != "unknown_metadata")
                fail(source, "policies." + std::string(k), "unknown policy");
        }
    }
    return c;
}

catalog catalog::from_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw catalog_error(path + ": cannot open catalog file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return from_json(ss.str(), path);
}

catalog catalog::builtin() { return from_json(default_catalog_json(), "built-in catalog"); }

const catalog::wire_event* catalog::find_event(std::string_view wire_name) const noexcept {
    const std::uint32_t i = wire_index_.find(wire_name);
    return i == string_table::npos ? nullptr : &wire_events_[i];
}

const std::vector<std::string>* catalog::pool_event(std::string_view short_name) const noexcept {
    const auto it = pool_events_.find(short_name);
    return it == pool_events_.end() ? nullptr : &it->second;
}

std::string catalog::to_json() const {
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.SetIndent(' ', 1);
    const auto list = [&](const std::vector<std::string>& v) {
        w.StartArray();
        for (const auto& s : v) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
        w.EndArray();
    };
    w.StartObject();
    w.Key("wire_events");
    w.StartObject();
    for (std::size_t i = 0; i < wire_order_.size(); ++i) {
        const auto& we = wire_events_[i];
        w.Key(wire_order_[i].c_str());
        w.StartObject();
        w.Key("event");
        list(we.parts);
        w.Key("expected_measurements");
        list(we.expected_measurements);
        w.EndObject();
    }
    w.EndObject();
    w.Key("measurement_keys");
    list(measurement_order_);
    w.Key("metadata_keys");
    list(metadata_order_);
    w.Key("pool_events");
    w.StartObject();
    for (const auto& [name, parts] : pool_events_) {
        w.Key(name.c_str());
        list(parts);
    }
    w.EndObject();
    w.Key("policies");
    w.StartObject();
    w.Key("unknown_event");
    w.String(policies_.unknown_event == unknown_event_policy::reject ? "reject" : "keep");
    w.Key("unknown_event_prefix");
    list(policies_.unknown_event_prefix);
    w.Key("unknown_measurement");
    w.String(policies_.unknown_measurement == unknown_measurement_policy::reject ? "reject"
                                                                                 : "drop");
    w.Key("unknown_metadata");
    w.String(policies_.unknown_metadata == unknown_metadata_policy::keep ? "keep" : "drop");
    w.EndObject();
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

}  // namespace telecap
