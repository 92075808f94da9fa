#pragma once
// The event catalog: wire names and their event parts, the known measurement and metadata
// keys, and the policies for what is not known. The built-in catalog is Snakepit's; its
// defaults are the gRPC path's rules. Loading throws catalog_error (startup only).

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "telecap/capture/string_table.hpp"

namespace telecap {

class catalog_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class unknown_event_policy : std::uint8_t { reject, keep };
enum class unknown_measurement_policy : std::uint8_t { reject, drop };
enum class unknown_metadata_policy : std::uint8_t { keep, drop };

struct catalog_policies {
    unknown_event_policy unknown_event = unknown_event_policy::reject;
    // With `keep`, an unknown "a.b" becomes prefix + {"a","b"}.
    std::vector<std::string> unknown_event_prefix{"snakepit", "python"};
    unknown_measurement_policy unknown_measurement = unknown_measurement_policy::reject;
    unknown_metadata_policy unknown_metadata = unknown_metadata_policy::keep;
};

class catalog {
public:
    struct wire_event {
        std::vector<std::string> parts;
        std::vector<std::string> expected_measurements;
    };

    // Parses a catalog document. `source` names it in errors ("catalog.json: offset 12: ...").
    static catalog from_json(std::string_view json, std::string_view source);
    static catalog from_file(const std::string& path);
    // Snakepit v0.13.0's catalog, built into the binary.
    static catalog builtin();

    const wire_event* find_event(std::string_view wire_name) const noexcept;
    bool known_measurement(std::string_view key) const noexcept {
        return measurement_keys_.contains(key);
    }
    bool known_metadata(std::string_view key) const noexcept {
        return metadata_keys_.contains(key);
    }
    // The pool's lifecycle events ("worker_spawned" -> snakepit.pool.worker.spawned).
    const std::vector<std::string>* pool_event(std::string_view short_name) const noexcept;

    const catalog_policies& policies() const noexcept { return policies_; }
    catalog_policies& policies() noexcept { return policies_; }

    // The active catalog as a JSON document (same shape as the input, policies included).
    std::string to_json() const;

    std::size_t event_count() const noexcept { return wire_events_.size(); }
    // Position of an entry find_event returned, in 0..event_count()-1.
    std::size_t event_index(const wire_event& e) const noexcept {
        return static_cast<std::size_t>(&e - wire_events_.data());
    }
    // The wire name of entry i (0..event_count()-1), as the worker emits it.
    std::string_view wire_name(std::size_t i) const noexcept { return wire_order_[i]; }

private:
    std::vector<wire_event> wire_events_;  // in file order
    std::vector<std::string> wire_order_;  // their names
    string_table wire_index_;              // name -> index in wire_events_
    string_table measurement_keys_;
    std::vector<std::string> measurement_order_;
    string_table metadata_keys_;
    std::vector<std::string> metadata_order_;
    std::map<std::string, std::vector<std::string>, std::less<>> pool_events_;
    catalog_policies policies_;
};

// The built-in catalog document (generated from capture/snakepit_catalog.json).
std::string_view default_catalog_json() noexcept;

}  // namespace telecap
