// The gRPC tests' main: gtest's, then an exit that skips static destructors. gRPC's at-exit
// teardown can race its own threads when a channel was still reconnecting (an assertion in
// its ref_counted.h, about 4 runs in 100 of GrpcClient.StopWhileWaitingForAWorkerIsPrompt,
// after every test had passed); telecap-grpc leaves the same way (agent/main.cpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    const int rc = RUN_ALL_TESTS();
    std::fflush(nullptr);
    std::_Exit(rc);
}
