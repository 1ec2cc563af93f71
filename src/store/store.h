// Store: the durable state of the control plane (apps, releases, deployments,
// tasks, nodes, events). Documents are JSON texts keyed by (collection, key);
// events form one sequence whose ids are unique and increasing.
//
// Contract: apply() is atomic and durable when it returns success (fsynced):
// a write answered 2xx survives kill -9. A Store is used from one thread.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele::store {

struct Write {
  std::string collection;
  std::string key;
  std::optional<std::string> value;  // nullopt = delete
};

class Store {
 public:
  virtual ~Store() = default;
  // Applies every write and appends every event (the envelope without "id";
  // the store assigns it) in one transaction. Fills `event_ids` if given.
  virtual Result<void> apply(const std::vector<Write>& writes, const std::vector<Json>& events,
                             std::vector<int64_t>* event_ids = nullptr) = 0;
  // All documents of a collection, ordered by key.
  virtual Result<std::vector<std::pair<std::string, std::string>>> list(const std::string& collection) = 0;
  // One document; nullopt when absent.
  virtual Result<std::optional<std::string>> get(const std::string& collection, const std::string& key) = 0;
  // Events with id > after, oldest first, at most `limit`. Each has "id".
  virtual Result<std::vector<Json>> events_since(int64_t after, size_t limit) = 0;
  // Newest event id (0 when none).
  virtual int64_t last_event_id() = 0;
};

// SQLite (WAL, synchronous=FULL) at `path`, creating or migrating the schema.
// `max_events` bounds the event table (oldest pruned).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, size_t max_events = 100000);

}  // namespace stele::store
