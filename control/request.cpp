#include "control/request.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <array>

#include "capture/event_json.hpp"

namespace telecap::control {

namespace {

constexpr std::array<std::string_view, 12> command_names{
    "status", "stats", "toggle", "sample",  "filter", "rate-limit",
    "reset",  "start", "stop",   "restart", "reload", "reopen"};

using value = rapidjson::Value;

std::optional<std::string> strings(const value& v, const char* key, std::vector<std::string>& out) {
    if (!v.IsArray()) return std::string("\"") + key + "\" must be a list of strings";
    out.clear();
    for (const auto& item : v.GetArray()) {
        if (!item.IsString()) return std::string("\"") + key + "\" must be a list of strings";
        out.emplace_back(item.GetString(), item.GetStringLength());
    }
    return std::nullopt;
}

std::optional<std::string> number(const value& v, const char* key, double& out) {
    if (!v.IsNumber()) return std::string("\"") + key + "\" must be a number";
    out = v.GetDouble();
    return std::nullopt;
}

}  // namespace

std::string_view to_string(command c) noexcept {
    return command_names[static_cast<std::size_t>(c)];
}

std::optional<std::string> parse_request(std::string_view line, request& out) {
    rapidjson::Document doc;
    // kParseNanAndInfFlag: so a NaN rate is refused by the rate check, with its reason.
    doc.Parse<rapidjson::kParseNanAndInfFlag>(line.data(), line.size());
    if (doc.HasParseError())
        return std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) +
               " at offset " + std::to_string(doc.GetErrorOffset());
    if (!doc.IsObject()) return "a request must be a JSON object";
    // RapidJSON keeps every member and FindMember takes the first: a key given twice would
    // silently mean its first value. Refused, like the config's duplicate keys.
    for (auto a = doc.MemberBegin(); a != doc.MemberEnd(); ++a)
        for (auto b = a + 1; b != doc.MemberEnd(); ++b)
            if (a->name == b->name)
                return "duplicate field \"" + std::string(a->name.GetString()) +
                       "\": give each field once";
    const auto cmd_it = doc.FindMember("cmd");
    if (cmd_it == doc.MemberEnd() || !cmd_it->value.IsString())
        return "a request needs \"cmd\": a string";
    const std::string_view name(cmd_it->value.GetString(), cmd_it->value.GetStringLength());
    request r;
    bool found = false;
    for (std::size_t i = 0; i < command_names.size(); ++i)
        if (command_names[i] == name) {
            r.cmd = static_cast<command>(i);
            found = true;
        }
    if (!found) {
        std::string known;
        for (auto n : command_names) known += (known.empty() ? "" : ", ") + std::string(n);
        return "unknown cmd \"" + std::string(name) + "\" (" + known + ")";
    }

    // The fields each command takes, besides cmd, pool and worker.
    static constexpr std::array<std::string_view, 2> none{}, toggle{"enabled"},
        sample{"rate", "patterns"}, filt{"allow", "deny"}, limit{"events_per_second", "burst"};
    const std::array<std::string_view, 2>* fields = &none;
    switch (r.cmd) {
        case command::toggle:
            fields = &toggle;
            break;
        case command::sample:
            fields = &sample;
            break;
        case command::filter:
            fields = &filt;
            break;
        case command::rate_limit:
            fields = &limit;
            break;
        default:
            break;
    }
    const bool scoped = r.cmd != command::status && r.cmd != command::stats &&
                        r.cmd != command::reload && r.cmd != command::reopen;
    for (const auto& m : doc.GetObject()) {
        const std::string_view key(m.name.GetString(), m.name.GetStringLength());
        bool ok = key == "cmd" || (scoped && (key == "pool" || key == "worker"));
        for (const auto f : *fields) ok = ok || (!f.empty() && key == f);
        if (!ok) return "unknown field \"" + std::string(key) + "\" for " + std::string(name);
    }
    const auto pool = doc.FindMember("pool");
    const auto worker = doc.FindMember("worker");
    if (pool != doc.MemberEnd() && worker != doc.MemberEnd())
        return "give \"pool\" or \"worker\", not both";
    for (auto it : {pool, worker}) {
        if (it == doc.MemberEnd()) continue;
        if (!it->value.IsString() || it->value.GetStringLength() == 0)
            return std::string("\"") + it->name.GetString() + "\" must be a non-empty string";
        r.where.kind = it == pool ? scope_kind::pool : scope_kind::worker;
        r.where.name.assign(it->value.GetString(), it->value.GetStringLength());
    }

    const auto get = [&](const char* key) -> const value* {
        const auto it = doc.FindMember(key);
        return it == doc.MemberEnd() ? nullptr : &it->value;
    };
    switch (r.cmd) {
        case command::toggle: {
            const value* v = get("enabled");
            if (!v || !v->IsBool()) return "toggle needs \"enabled\": true or false";
            r.update.enabled = v->GetBool();
            break;
        }
        case command::sample: {
            sampling s;
            const value* v = get("rate");
            if (!v) return "sample needs \"rate\": a number in [0, 1]";
            if (auto e = number(*v, "rate", s.rate)) return e;
            if (const value* p = get("patterns"))
                if (auto e = strings(*p, "patterns", s.patterns)) return e;
            r.update.sample = std::move(s);
            break;
        }
        case command::filter: {
            filter f;  // replaces both lists, as Snakepit's filter does
            if (const value* v = get("allow"))
                if (auto e = strings(*v, "allow", f.allow)) return e;
            if (const value* v = get("deny"))
                if (auto e = strings(*v, "deny", f.deny)) return e;
            r.update.filt = std::move(f);
            break;
        }
        case command::rate_limit: {
            rate_limit l;
            const value* v = get("events_per_second");
            if (!v) return "rate-limit needs \"events_per_second\" (0: no limit)";
            if (auto e = number(*v, "events_per_second", l.events_per_second)) return e;
            if (const value* b = get("burst")) {
                if (auto e = number(*b, "burst", l.burst)) return e;
                // Internally 0 means "the default"; said explicitly it is a mistake (a bucket
                // that never holds a token), not a request for the default.
                if (l.burst == 0)
                    return "\"burst\" must be at least 1 (leave it out for the default: "
                           "events_per_second)";
            }
            r.update.limit = l;
            break;
        }
        default:
            break;
    }
    if (auto e = check(r.update)) return e;
    out = std::move(r);
    return std::nullopt;
}

std::string error_reply(std::string_view why) {
    std::string out = "{\"ok\":false,\"error\":";
    append_json_string(out, why);
    out += '}';
    return out;
}

std::string ok_reply(std::string_view members) {
    std::string out = "{\"ok\":true";
    out += members;
    out += '}';
    return out;
}

namespace {

// enabled, sampling and filter: what both the socket and the emitters' pipe say.
void append_gate_members(std::string& out, const effective_controls& c) {
    out += "\"enabled\":";
    out += c.enabled ? "true" : "false";
    out += ",\"sampling_rate\":";
    append_json_double(out, c.sample.rate);
    out += ",\"sampling_patterns\":";
    append_json_string_array(out, c.sample.patterns);
    out += ",\"allow\":";
    append_json_string_array(out, c.filt.allow);
    out += ",\"deny\":";
    append_json_string_array(out, c.filt.deny);
}

}  // namespace

void append_controls_json(std::string& out, const effective_controls& c) {
    out += '{';
    append_gate_members(out, c);
    out += ",\"rate_limit\":{\"events_per_second\":";
    append_json_double(out, c.limit.events_per_second);
    out += ",\"burst\":";
    append_json_double(out, c.limit.burst);
    out += "}}";
}

void append_emitter_controls_json(std::string& out, const effective_controls& c,
                                  std::uint64_t seq) {
    out += "{\"seq\":";
    out += std::to_string(seq);
    out += ',';
    append_gate_members(out, c);
    out += '}';
}

}  // namespace telecap::control
