#include "control/tap.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstring>
#include <utility>

#include "control/request.hpp"
#include "core/glob.hpp"

namespace telecap::control {

std::string drop_marker(tap_format f, std::uint64_t dropped, bool lines) {
    if (f == tap_format::log)
        return "# " + std::to_string(dropped) +
               (lines ? " events or lines dropped\n" : " events dropped\n");
    return "{\"telecap_tap\":{\"dropped\":" + std::to_string(dropped) + "}}\n";
}

// ---- tap_buffer ----

tap_buffer::offered tap_buffer::offer(std::string& lines, std::uint64_t events) {
    if (events == 0) return closed() ? offered::closed : offered::taken;
    std::shared_ptr<const std::function<void()>> wake;
    {
        std::lock_guard lock(mu_);
        // Closed, or ended by the limit: nothing more goes on this stream.
        if (closed_.load(std::memory_order_relaxed) || finished_) return offered::closed;
        if (!pending_.empty() && pending_.size() + lines.size() > max_bytes_) {
            unreported_ += events;
            dropped_.fetch_add(events, std::memory_order_relaxed);
            return offered::dropped;
        }
        // The marker goes where the gap is: after what was taken before the drop.
        if (unreported_) {
            pending_ += drop_marker(format_, unreported_, lines_);
            unreported_ = 0;
        }
        if (pending_.empty())
            pending_.swap(lines);  // no copy: `lines` gets the old storage back
        else
            pending_ += lines;
        pending_events_ += events;
        if (!wake_pending_) {
            wake_pending_ = true;
            wake = waker_;
        }
    }
    // Outside the lock: the waker posts to the loop (a lock of its own).
    if (wake) (*wake)();
    return offered::taken;
}

void tap_buffer::unsent(std::string_view rest) {
    std::uint64_t n = 0;
    for (std::size_t at = 0; at < rest.size();) {
        std::size_t end = rest.find('\n', at);
        if (end == std::string_view::npos) break;  // the rest of a line cut short: none here
        const auto line = rest.substr(at, end - at);
        // A drop marker is not an item (a partly written line still is: its start went out).
        if (!line.starts_with("{\"telecap_tap\":") && !line.starts_with("# ")) ++n;
        at = end + 1;
    }
    std::lock_guard lock(mu_);
    n = std::min<std::uint64_t>(n, sent_.load(std::memory_order_relaxed));
    sent_.fetch_sub(n, std::memory_order_relaxed);
    dropped_.fetch_add(n, std::memory_order_relaxed);
}

void tap_buffer::finish() {
    std::shared_ptr<const std::function<void()>> wake;
    {
        std::lock_guard lock(mu_);
        finished_ = true;
        if (!wake_pending_) {
            wake_pending_ = true;
            wake = waker_;
        }
    }
    if (wake) (*wake)();
}

void tap_buffer::count_dropped(std::uint64_t n) {
    std::lock_guard lock(mu_);
    if (closed_.load(std::memory_order_relaxed)) return;
    unreported_ += n;
    dropped_.fetch_add(n, std::memory_order_relaxed);
}

void tap_buffer::set_waker(std::function<void()> fn) {
    auto w = fn ? std::make_shared<const std::function<void()>>(std::move(fn)) : nullptr;
    std::lock_guard lock(mu_);
    waker_ = std::move(w);
}

bool tap_buffer::take(std::string& out) {
    std::lock_guard lock(mu_);
    if (pending_.empty() && !unreported_) {
        // Found empty: the next offer wakes the consumer again.
        wake_pending_ = false;
        return finished_;
    }
    if (out.empty())
        out.swap(pending_);
    else
        out += pending_;
    pending_.clear();
    sent_.fetch_add(pending_events_, std::memory_order_relaxed);
    pending_events_ = 0;
    if (unreported_) {  // dropped after the last of what was pending: the gap is at the end
        out += drop_marker(format_, unreported_, lines_);
        unreported_ = 0;
    }
    return false;
}

void tap_buffer::close() {
    std::lock_guard lock(mu_);
    closed_.store(true, std::memory_order_relaxed);
    // What the client never took is lost with it: counted, as every other loss of a tap.
    dropped_.fetch_add(pending_events_, std::memory_order_relaxed);
    pending_events_ = 0;
    pending_.clear();
    pending_.shrink_to_fit();
    waker_.reset();
}

// ---- tap_handler ----

tap_handler::tap_handler(tap_request r, std::shared_ptr<tap_buffer> out, wire_name_fn wire,
                         render_fn render_log, render_line_fn render_log_line)
    : r_(std::move(r)),
      out_(std::move(out)),
      wire_(std::move(wire)),
      render_log_(std::move(render_log)),
      render_log_line_(std::move(render_log_line)) {}

bool tap_handler::name_matches(const event& ev) {
    if (r_.patterns.empty()) return true;
    const auto match = [this](const event& e) {
        const std::string wire = wire_ ? wire_(e) : e.dotted_name();
        for (const auto& p : r_.patterns)
            if (glob_match(p, wire)) return true;
        return false;
    };
    // Keyed by the catalog entry; events without one (kept unknown events, lifecycle events)
    // by a hash of their name. Either way the name itself decides a hit.
    std::uint64_t h = 0;
    if (ev.name_id) {
        h = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(ev.name_id)) *
            0x9e3779b97f4a7c15ULL;
    } else {
        h = 0xcbf29ce484222325ULL;  // FNV-1a over the parts, a separator between them
        for (const auto& part : ev.name) {
            for (const char c : part) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
            h = (h ^ 0xffu) * 0x100000001b3ULL;
        }
    }
    const bool trusted = trust_name_ids_ && ev.name_id;
    const auto same = [&ev, trusted](const void* key, const name_entry& e) {
        return key == ev.name_id && (trusted || e.name == ev.name);
    };
    if (const name_entry* e = names_.find(h, same)) return e->match;
    // Bounded: a worker that invents names cannot grow it.
    if (names_.full() && names_.size() >= 1024) names_.clear();
    name_entry& e = names_.insert(h, ev.name_id);
    e.name = ev.name;
    e.match = match(ev);
    return e.match;
}

bool tap_handler::wanted(const event& ev) {
    if (!name_matches(ev)) return false;
    if (r_.where.kind == scope_kind::global) return true;
    const auto* v = ev.meta(r_.where.kind == scope_kind::pool ? "pool_name" : "worker_id");
    return v && std::holds_alternative<std::string>(*v) &&
           std::get<std::string>(*v) == r_.where.name;
}

void tap_handler::handle(const event& ev) {
    if (done_ || !wanted(ev)) return;
    if (r_.limit && accepted_ + batched_ >= r_.limit) return;
    // Handed over before appending (a line this tap rendered is shared with the outputs after
    // it in this dispatch: it stays in place until the next event).
    if ((r_.format == tap_format::jsonl ? json_.size() : text_.size()) >= batch_bytes) hand_over();
    if (done_) return;
    ++matched_;
    if (r_.format == tap_format::jsonl)
        json_.append_shared(ev);  // a copy of the jsonl output's line when there is one
    else if (render_log_)
        render_log_(text_, ev);
    ++batched_;
}

void tap_handler::passthrough(const passthrough_line& l) {
    if (!r_.passthrough || done_) return;
    if (r_.where.kind != scope_kind::global &&
        (r_.where.kind == scope_kind::pool ? l.pool : l.worker) != r_.where.name)
        return;
    const bool jsonl = r_.format == tap_format::jsonl;
    if (l.dropped_before) {
        // Lines the run could not carry: the gap's marker goes after what came before it.
        if (batched_ || batched_lines_) hand_over();
        out_->count_dropped(l.dropped_before);
    } else if (jsonl && batched_) {
        hand_over();  // the events before the line go first (jsonl batches them apart)
    }
    if (done_) return;  // that hand-over reached the limit
    if (jsonl) {
        lines_ += "{\"passthrough\":{\"worker\":";
        append_json_string(lines_, l.worker);
        lines_ += ",\"pool\":";
        append_json_string(lines_, l.pool);
        lines_ += ",\"stream\":";
        append_json_string(lines_, l.stream);
        lines_ += ",\"line\":";
        append_json_string(lines_, l.text);
        lines_ += l.truncated ? ",\"truncated\":true}}\n" : "}}\n";
    } else if (render_log_line_) {
        render_log_line_(text_, l);
    }
    ++batched_lines_;
    if ((jsonl ? lines_.size() : text_.size()) >= batch_bytes) hand_over();
}

void tap_handler::flush() {
    if (batched_ || batched_lines_) hand_over();
}

void tap_handler::offer(std::string& text, std::uint64_t items, std::uint64_t events) {
    const auto r = out_->offer(text, items);
    if (r == tap_buffer::offered::closed) {
        done_ = true;  // the client is gone: the hub detaches this handler soon
    } else if (r == tap_buffer::offered::taken && events) {
        accepted_ += events;
        if (r_.limit && accepted_ >= r_.limit) {
            done_ = true;
            out_->finish();
        }
    }
    text.clear();
}

void tap_handler::hand_over() {
    if (r_.format == tap_format::jsonl) {
        // The lines waiting are older than the events batched: they go first.
        if (batched_lines_) {
            const std::uint64_t n = batched_lines_;
            batched_lines_ = 0;
            offer(lines_, n, 0);
        }
        json_.take(handing_);
        const std::uint64_t n = batched_;
        batched_ = 0;
        if (n) offer(handing_, n, n);
    } else {
        handing_.swap(text_);
        const std::uint64_t n = batched_;
        const std::uint64_t items = n + batched_lines_;
        batched_ = batched_lines_ = 0;
        offer(handing_, items, n);
    }
    handing_.clear();
    text_.clear();
}

// ---- tap_hub ----

struct tap_hub::tap final : stream_source {
    std::uint64_t id = 0;
    std::shared_ptr<tap_buffer> buf;
    std::weak_ptr<tap_hub*> hub;
    bool gone = false;

    void set_waker(std::function<void()> fn) override { buf->set_waker(std::move(fn)); }
    bool take(std::string& out) override { return buf->take(out); }
    void unsent(std::string_view rest) override { buf->unsent(rest); }
    void close() override {
        if (gone) return;
        gone = true;
        buf->close();
        if (auto h = hub.lock()) (*h)->closed(id);
    }
};

tap_hub::tap_hub(tap_hooks h) : h_(std::move(h)), self_(std::make_shared<tap_hub*>(this)) {}

tap_hub::~tap_hub() {
    self_.reset();
    std::map<std::uint64_t, std::shared_ptr<tap_buffer>> left;
    {
        std::lock_guard lock(mu_);
        left.swap(taps_);
    }
    for (auto& [id, buf] : left) {
        buf->close();
        if (h_.detach) h_.detach("tap." + std::to_string(id));
    }
}

std::optional<stream_reply> tap_hub::open(std::string_view line) {
    // Cheap for every other request: a tap request names its command.
    if (line.find("\"tap\"") == std::string_view::npos) return std::nullopt;
    tap_request r;
    {
        rapidjson::Document doc;
        doc.Parse(line.data(), line.size());
        if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
        const auto cmd = doc.FindMember("cmd");
        if (cmd == doc.MemberEnd() || !cmd->value.IsString() ||
            std::strcmp(cmd->value.GetString(), "tap") != 0)
            return std::nullopt;
    }
    if (auto e = parse_tap_request(line, r)) return stream_reply{error_reply(*e), nullptr};
    std::uint64_t id = 0;
    auto buf = std::make_shared<tap_buffer>(h_.buffer_bytes, r.format, r.passthrough);
    {
        std::lock_guard lock(mu_);
        if (taps_.size() >= h_.max_taps)
            return stream_reply{
                error_reply("too many taps open (at most " + std::to_string(h_.max_taps) + ")"),
                nullptr};
        id = next_id_++;
        taps_.emplace(id, buf);
    }
    opened_.fetch_add(1, std::memory_order_relaxed);
    auto src = std::make_shared<tap>();
    src->id = id;
    src->buf = buf;
    src->hub = self_;
    const std::string bus_id = "tap." + std::to_string(id);
    const bool lines = r.passthrough;
    auto handler = std::make_shared<tap_handler>(std::move(r), buf, h_.wire_name, h_.render_log,
                                                 h_.render_log_line);
    if (h_.name_ids_unique) handler->trust_name_ids();
    handler->trust_keys_ids();  // the bus carries the normalizers' events, keys unedited
    // Lines first: the intake sends on the events it read before (their lines went straight to
    // pass-through) ahead of the attach, so the tap's first batch carries its lines too.
    if (lines) want_lines(id, true);
    h_.attach(bus_id, std::move(handler));
    return stream_reply{ok_reply(",\"tap\":" + std::to_string(id)), std::move(src)};
}

void tap_hub::closed(std::uint64_t id) {
    std::shared_ptr<tap_buffer> buf;
    {
        std::lock_guard lock(mu_);
        const auto it = taps_.find(id);
        if (it == taps_.end()) return;
        buf = it->second;
        taps_.erase(it);
        closed_sent_ += buf->sent();
        closed_dropped_ += buf->dropped();
    }
    if (h_.detach) h_.detach("tap." + std::to_string(id));
    want_lines(id, false);
}

void tap_hub::want_lines(std::uint64_t id, bool on) {
    const bool before = !passthrough_.empty();
    if (on)
        passthrough_.insert(id);
    else
        passthrough_.erase(id);
    if (before != !passthrough_.empty() && h_.want_passthrough) h_.want_passthrough(!before);
}

std::vector<tap_hub::tap_counters> tap_hub::open_taps() const {
    std::lock_guard lock(mu_);
    std::vector<tap_counters> out;
    for (const auto& [id, buf] : taps_) out.push_back({id, buf->sent(), buf->dropped()});
    return out;
}

std::uint64_t tap_hub::sent_total() const {
    std::lock_guard lock(mu_);
    std::uint64_t n = closed_sent_;
    for (const auto& [id, buf] : taps_) n += buf->sent();
    return n;
}

std::uint64_t tap_hub::dropped_total() const {
    std::lock_guard lock(mu_);
    std::uint64_t n = closed_dropped_;
    for (const auto& [id, buf] : taps_) n += buf->dropped();
    return n;
}

// ---- the request ----

std::optional<std::string> parse_tap_request(std::string_view line, tap_request& out) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError())
        return std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) +
               " at offset " + std::to_string(doc.GetErrorOffset());
    if (!doc.IsObject()) return "a request must be a JSON object";
    tap_request r;
    bool pool = false, worker = false;
    for (auto a = doc.MemberBegin(); a != doc.MemberEnd(); ++a) {
        for (auto b = a + 1; b != doc.MemberEnd(); ++b)
            if (a->name == b->name)
                return "duplicate field \"" + std::string(a->name.GetString()) +
                       "\": give each field once";
        const std::string_view key(a->name.GetString(), a->name.GetStringLength());
        const auto& v = a->value;
        if (key == "cmd") {
            if (!v.IsString() || std::string_view(v.GetString()) != "tap")
                return "a tap request has \"cmd\":\"tap\"";
        } else if (key == "pool" || key == "worker") {
            if (!v.IsString() || v.GetStringLength() == 0)
                return "\"" + std::string(key) + "\" must be a non-empty string";
            (key == "pool" ? pool : worker) = true;
            r.where.kind = key == "pool" ? scope_kind::pool : scope_kind::worker;
            r.where.name.assign(v.GetString(), v.GetStringLength());
        } else if (key == "format") {
            const std::string_view f = v.IsString() ? v.GetString() : "";
            if (f == "jsonl")
                r.format = tap_format::jsonl;
            else if (f == "log")
                r.format = tap_format::log;
            else
                return "\"format\" must be \"jsonl\" or \"log\"";
        } else if (key == "limit") {
            if (!v.IsUint64()) return "\"limit\" must be a whole number (0: no limit)";
            r.limit = v.GetUint64();
        } else if (key == "patterns") {
            if (!v.IsArray()) return "\"patterns\" must be a list of strings";
            for (const auto& p : v.GetArray()) {
                if (!p.IsString()) return "\"patterns\" must be a list of strings";
                std::string pat(p.GetString(), p.GetStringLength());
                if (auto e = glob_error(pat)) return "pattern \"" + pat + "\": " + *e;
                r.patterns.push_back(std::move(pat));
            }
        } else if (key == "passthrough") {
            if (!v.IsBool()) return "\"passthrough\" must be true or false";
            r.passthrough = v.GetBool();
        } else {
            return "unknown field \"" + std::string(key) + "\" for tap";
        }
    }
    if (pool && worker) return "give \"pool\" or \"worker\", not both";
    out = std::move(r);
    return std::nullopt;
}

}  // namespace telecap::control
