#include "agent/grpc_sources.hpp"

#ifdef TELECAP_HAVE_GRPC
#include "bridge/grpc_client.hpp"
#endif

namespace telecap::agent {

#ifdef TELECAP_HAVE_GRPC
namespace {

class grpc_source final : public event_source, private bridge::grpc_client_host {
public:
    grpc_source(event_loop& loop, event_source_request r)
        : loop_(loop),
          deliver_(std::move(r.deliver)),
          ready_(std::move(r.ready)),
          client_({.address = r.address}, *this, *r.stats) {
        client_.set_controls(r.controls);
        client_.start();
    }
    ~grpc_source() override { client_.stop(); }

    // The worker exited: what it sent before goes first.
    void stop() override { client_.finish(std::chrono::milliseconds(500)); }
    void controls(const control::effective_controls& c) override { client_.set_controls(c); }

private:
    void post(std::function<void()> fn) override { loop_.post(std::move(fn)); }
    std::uint64_t after(std::chrono::milliseconds d, std::function<void()> fn) override {
        return loop_.after(d, std::move(fn));
    }
    void cancel(std::uint64_t timer) override { loop_.cancel(timer); }
    void on_event(const raw_event& raw, const std::function<std::string()>& text) override {
        deliver_(raw, text);
    }
    bool ready() override { return !ready_ || ready_(); }

    event_loop& loop_;
    std::function<void(const raw_event&, const std::function<std::string()>&)> deliver_;
    std::function<bool()> ready_;
    bridge::grpc_client client_;
};

}  // namespace

event_source_factory grpc_sources(event_loop& loop) {
    return [&loop](event_source_request r) -> std::unique_ptr<event_source> {
        return std::make_unique<grpc_source>(loop, std::move(r));
    };
}
#else
event_source_factory grpc_sources(event_loop&) { return {}; }
#endif

}  // namespace telecap::agent
