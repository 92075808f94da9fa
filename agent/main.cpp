#include <cstdio>
#include <cstdlib>

#include "agent/commands.hpp"

int main(int argc, char** argv) {
    const int rc = telecap::agent::main_cli(argc, argv);
#ifdef TELECAP_HAVE_GRPC
    // telecap-grpc: everything of ours is stopped, drained and closed by now. gRPC's at-exit
    // teardown can race its own threads when a client channel was still reconnecting (an
    // assertion in its ref_counted.h, then SIGABRT instead of this exit status), so leave
    // without running the static destructors.
    std::fflush(nullptr);
    std::_Exit(rc);
#endif
    return rc;
}
