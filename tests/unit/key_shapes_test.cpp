// key_shapes: one id per key sequence, bounded.
#include "capture/key_shapes.hpp"

#include <gtest/gtest.h>

#include <string>

namespace telecap {
namespace {

event with_keys(std::vector<std::string> measurements, std::vector<std::string> metadata) {
    event ev;
    for (auto& k : measurements) ev.measurements.emplace_back(std::move(k), std::int64_t{1});
    for (auto& k : metadata) ev.metadata.emplace_back(std::move(k), std::string("v"));
    return ev;
}

TEST(KeyShapes, OneIdPerSequenceOfKeysInOrder) {
    key_shapes t(16, 1 << 20);
    const std::uint64_t a = t.id(with_keys({"count", "duration"}, {"tool", "node"}));
    EXPECT_NE(a, 0u);
    EXPECT_NE(a, key_shapes::none);
    EXPECT_EQ(t.id(with_keys({"count", "duration"}, {"tool", "node"})), a);
    // Values are not part of it.
    event same = with_keys({"count", "duration"}, {"tool", "node"});
    same.measurements[0].second = 2.5;
    same.metadata[1].second = nullptr;
    EXPECT_EQ(t.id(same), a);
    // Order, the split between measurements and metadata, and the keys' bytes are.
    EXPECT_NE(t.id(with_keys({"duration", "count"}, {"tool", "node"})), a);
    EXPECT_NE(t.id(with_keys({"count"}, {"duration", "tool", "node"})), a);
    EXPECT_NE(t.id(with_keys({"count", "duration"}, {"toolnode"})), a);
    EXPECT_NE(t.id(with_keys({"count", "duration"}, {"tool", std::string("node\0", 5)})), a);
    EXPECT_NE(t.id(with_keys({}, {})), a);
    EXPECT_EQ(t.size(), 6u);
}

TEST(KeyShapes, AFullTableGivesNoIdToNewSequencesAndKeepsTheOldOnes) {
    key_shapes t(3, 1 << 20);
    const std::uint64_t a = t.id(with_keys({"a"}, {}));
    const std::uint64_t b = t.id(with_keys({"b"}, {}));
    const std::uint64_t c = t.id(with_keys({"c"}, {}));
    EXPECT_NE(a, 0u);
    EXPECT_NE(b, a);
    EXPECT_NE(c, b);
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(t.id(with_keys({"new" + std::to_string(i)}, {})), key_shapes::none);
    EXPECT_EQ(t.size(), 3u);
    EXPECT_EQ(t.id(with_keys({"b"}, {})), b);
}

// Keys cost memory for the life of the process: a sequence too long gets no id, and the
// table stops at its bytes as at its count.
TEST(KeyShapes, LongSequencesAndTheTablesBytesAreBounded) {
    key_shapes t(1000, 200);
    EXPECT_EQ(t.id(with_keys({std::string(key_shapes::max_sequence_bytes, 'k')}, {})),
              key_shapes::none);
    std::vector<std::string> many(600, "k");
    EXPECT_EQ(t.id(with_keys({}, many)), key_shapes::none);
    EXPECT_EQ(t.size(), 0u);
    std::size_t given = 0;
    for (int i = 0; i < 100; ++i)
        if (t.id(with_keys({std::string(40, 'a') + std::to_string(i)}, {})) != key_shapes::none)
            ++given;
    EXPECT_EQ(given, 4u);  // 4 + 4 + 41 or 42 bytes each: four fit in 200
    EXPECT_EQ(t.size(), 4u);
}

}  // namespace
}  // namespace telecap
