// core/flat_map: insert, find, growth, collisions, clear keeping values, and the wrap-around.
#include "core/flat_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

namespace telecap {
namespace {

std::uint64_t hash_of(std::uint64_t k) { return k * 0x9E3779B97F4A7C15ull; }

auto key_is(std::uint64_t k) {
    return [k](std::uint64_t key, const std::string&) { return key == k; };
}

TEST(flat_map, starts_empty_and_finds_nothing) {
    flat_map<std::uint64_t, std::string> m;
    EXPECT_TRUE(m.empty());
    EXPECT_EQ(m.capacity(), 16u);
    EXPECT_EQ(m.find(hash_of(1), key_is(1)), nullptr);
    EXPECT_EQ((flat_map<int, int>(5).capacity()), 8u);  // rounded up to a power of two
    EXPECT_EQ((flat_map<int, int>(0).capacity()), 2u);
}

TEST(flat_map, inserted_values_are_found) {
    flat_map<std::uint64_t, std::string> m;
    m.insert(hash_of(1), 1) = "one";
    m.insert(hash_of(2), 2) = "two";
    EXPECT_EQ(m.size(), 2u);
    ASSERT_NE(m.find(hash_of(1), key_is(1)), nullptr);
    EXPECT_EQ(*m.find(hash_of(1), key_is(1)), "one");
    EXPECT_EQ(*m.find(hash_of(2), key_is(2)), "two");
    EXPECT_EQ(m.find(hash_of(3), key_is(3)), nullptr);
    *m.find(hash_of(2), key_is(2)) = "deux";  // values are mutable in place
    const auto& c = m;
    EXPECT_EQ(*c.find(hash_of(2), key_is(2)), "deux");
}

TEST(flat_map, grows_before_passing_half_full_and_keeps_everything) {
    flat_map<std::uint64_t, std::string> m(4);
    std::size_t grown = 0, cap = m.capacity();
    for (std::uint64_t k = 0; k < 1000; ++k) {
        m.insert(hash_of(k), k) = std::to_string(k);
        EXPECT_LE(m.size() * 2, m.capacity());
        if (m.capacity() != cap) ++grown, cap = m.capacity();
    }
    EXPECT_GE(grown, 8u);
    for (std::uint64_t k = 0; k < 1000; ++k) {
        const auto* v = m.find(hash_of(k), key_is(k));
        ASSERT_NE(v, nullptr) << k;
        EXPECT_EQ(*v, std::to_string(k));
    }
    EXPECT_EQ(m.find(hash_of(1000), key_is(1000)), nullptr);
}

TEST(flat_map, equal_hashes_are_told_apart_by_the_callers_equality) {
    flat_map<std::uint64_t, std::string> m(8);
    for (std::uint64_t k = 0; k < 50; ++k) m.insert(42, k) = std::to_string(k);  // one hash
    for (std::uint64_t k = 0; k < 50; ++k) EXPECT_EQ(*m.find(42, key_is(k)), std::to_string(k));
    EXPECT_EQ(m.find(42, key_is(50)), nullptr);
    // Another hash on the same probe path is skipped without asking the equality.
    int asked = 0;
    EXPECT_EQ(m.find(42 + m.capacity(),
                     [&](std::uint64_t, const std::string&) {
                         ++asked;
                         return true;
                     }),
              nullptr);
    EXPECT_EQ(asked, 0);
}

TEST(flat_map, probes_wrap_around_the_end) {
    flat_map<std::uint64_t, int> m(8);
    const auto eq = [](std::uint64_t k) { return [k](std::uint64_t x, int) { return x == k; }; };
    m.insert(7, 1) = 10;  // the last slot
    m.insert(7, 2) = 20;  // wraps to slot 0
    m.insert(0, 3) = 30;  // its home is taken: slot 1
    EXPECT_EQ(*m.find(7, eq(2)), 20);
    EXPECT_EQ(*m.find(0, eq(3)), 30);
    EXPECT_EQ(m.find(0, eq(4)), nullptr);
}

TEST(flat_map, clear_forgets_keys_but_keeps_capacity_and_value_storage) {
    flat_map<std::uint64_t, std::string> m(8);
    m.insert(hash_of(1), 1) = std::string(100, 'x');
    const std::size_t cap = m.capacity();
    m.clear();
    EXPECT_TRUE(m.empty());
    EXPECT_EQ(m.capacity(), cap);
    EXPECT_EQ(m.find(hash_of(1), key_is(1)), nullptr);
    std::string& v = m.insert(hash_of(1), 1);  // same home slot: the old value, reused
    EXPECT_EQ(v, std::string(100, 'x'));
    EXPECT_GE(v.capacity(), 100u);
}

TEST(flat_map, full_says_when_the_next_insert_would_grow) {
    flat_map<int, int> m(8);
    for (int k = 0; k < 4; ++k) {
        EXPECT_FALSE(m.full());
        m.insert(static_cast<std::uint64_t>(k), k);
    }
    EXPECT_TRUE(m.full());
    EXPECT_EQ(m.capacity(), 8u);
    m.insert(4, 4);
    EXPECT_EQ(m.capacity(), 16u);
}

TEST(flat_map, move_only_values_and_for_each) {
    flat_map<std::uint64_t, std::unique_ptr<int>> m(2);
    for (std::uint64_t k = 0; k < 20; ++k)
        m.insert(hash_of(k), k) = std::make_unique<int>(static_cast<int>(k));
    int sum = 0, n = 0;
    m.for_each([&](std::uint64_t k, std::unique_ptr<int>& v) {
        EXPECT_EQ(static_cast<std::uint64_t>(*v), k);
        sum += *v;
        ++n;
    });
    EXPECT_EQ(n, 20);
    EXPECT_EQ(sum, 190);
}

TEST(flat_map, agrees_with_std_map_on_random_keys_and_poor_hashes) {
    std::mt19937_64 rng(7);
    flat_map<std::uint64_t, std::uint64_t> m;
    std::map<std::uint64_t, std::uint64_t> ref;
    const auto poor = [](std::uint64_t k) { return k % 37; };  // many collisions
    for (int i = 0; i < 3000; ++i) {
        const std::uint64_t k = rng() % 1500;
        const auto eq = [k](std::uint64_t x, std::uint64_t) { return x == k; };
        auto* v = m.find(poor(k), eq);
        const auto it = ref.find(k);
        ASSERT_EQ(v != nullptr, it != ref.end()) << k;
        if (v) {
            ++*v;
            ++it->second;
        } else {
            m.insert(poor(k), k) = 1;
            ref[k] = 1;
        }
    }
    EXPECT_EQ(m.size(), ref.size());
    for (const auto& [k, n] : ref)
        EXPECT_EQ(*m.find(poor(k), [k](std::uint64_t x, std::uint64_t) { return x == k; }), n);
}

}  // namespace
}  // namespace telecap
