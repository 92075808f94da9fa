#pragma once
// The gRPC clients of the pools with `grpc` (run --grpc, docs/grpc.md "Client"): the
// supervisor's event_source made of a bridge::grpc_client on the run's loop. Empty in a
// telecap built without gRPC (validate() refuses `grpc` there first).

#include "loop/event_loop.hpp"
#include "supervise/supervisor.hpp"

namespace telecap::agent {

// The loop must outlive the sources the factory makes.
event_source_factory grpc_sources(event_loop& loop);

}  // namespace telecap::agent
