// Store: the durable state of the control plane (apps, releases, deployments,
// tasks, nodes, events). Documents are JSON texts keyed by (collection, key);
// events form one sequence whose ids are unique and increasing.
//
// Contract: apply() is atomic and durable when it returns success (fsynced):
// a write answered 2xx survives kill -9. A Store is used from one thread.
#pragma once
#include <chrono>
#include <map>
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
  // Names of the collections holding at least one document, sorted.
  virtual Result<std::vector<std::string>> collections() = 0;
  // For copying state between stores (`stele store migrate`): like apply(),
  // but every event carries its "id", which it keeps (an event with an id the
  // store already holds is replaced); last_event_id() becomes at least the
  // largest. Ids must be increasing within one call.
  virtual Result<void> import(const std::vector<Write>& writes, const std::vector<Json>& events) = 0;
  // Writes the whole state as it is now (documents and events, ids kept) to
  // a new SQLite state store at `path`, which must not exist yet: a backup's
  // snapshot (`stele backup`). No write of this Store lands half in it. The
  // default copies through migrate_state (for etcd: point-in-time as long as
  // this Store's process is the only writer, as the leader is); SQLite
  // overrides it with VACUUM INTO. Blocks for the copy: call it between
  // writes on the Store's thread.
  virtual Result<void> snapshot(const std::string& path);
  // Forgets what this Store remembers of the shared state (etcd: the
  // sequence key's revision and the last event id) and reads it again: a
  // server just elected leader calls it before its first write, since the
  // previous leader wrote meanwhile. SQLite: nothing to do.
  virtual Result<void> refresh() { return {}; }
};

// SQLite (WAL, synchronous=FULL) at `path`, creating or migrating the schema.
// `max_events` bounds the event table (oldest pruned).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, size_t max_events = 100000);

// etcd v3 through its JSON gateway (design.md "Storage and high availability").
// Keys: <prefix>doc/<collection>/<key>, <prefix>ev/<20-digit id>, and
// <prefix>meta/event-seq (the last event id). Every apply() is one txn guarded
// by the sequence key's mod_revision as this Store last saw it: when another
// writer changed the state in between, apply() writes nothing and fails with
// code 409 (the caller's view is stale; it must reload, not retry blindly).
struct EtcdStoreOptions {
  std::vector<std::string> endpoints;  // "host:port", tried in order
  std::string prefix = "/stele/";
  size_t max_events = 100000;
  size_t prune_every = 1000;  // applies with events between prunings
  size_t page_size = 500;     // keys per range request (list, events_since)
  size_t max_apply_bytes = 1 << 20;  // etcd refuses requests over 1.5 MiB by default
  std::chrono::milliseconds timeout{10000};  // per request
};
// "etcd://h:p[,h:p...][/prefix/]" -> options (prefix default "/stele/").
Result<EtcdStoreOptions> parse_etcd_url(const std::string& url);
// Connects (reads the sequence key) and fails naming every endpoint's error.
Result<std::unique_ptr<Store>> open_etcd_store(const EtcdStoreOptions& options);

// The store a --store URL names: "" = SQLite at `default_sqlite_path`,
// "sqlite:PATH", or "etcd://h:p[,h:p...][/prefix/]". With `create` false a
// missing SQLite file is an error (a migration's source).
Result<std::unique_ptr<Store>> open_store(const std::string& url, const std::string& default_sqlite_path,
                                          bool create = true);

// Copies every document and event of `from` into `to` (events keep their
// ids). `to` must hold nothing unless `force` (then documents are written
// over, nothing is deleted). Writes in batches small enough for etcd.
struct MigrateReport {
  std::map<std::string, size_t> documents;  // per collection
  size_t events = 0;
};
Result<MigrateReport> migrate_state(Store& from, Store& to, bool force);

}  // namespace stele::store
