// LeaderElection: which of the servers sharing one etcd store is the leader
// (design.md "Storage and high availability": no home-made consensus).
//
// The leader holds the key <prefix>leader, created only when absent and
// attached to an etcd lease of `ttl_seconds` that it keeps alive every third
// of the TTL. Followers read the key every `poll` and campaign (lease grant +
// create-if-absent txn) when it is gone: a killed leader's key disappears
// when its lease expires, a stopped one's at once (resign() revokes it).
//
// Each renewal also reads the key back: deleted or not ours -> lost.
//
// Safety: etcd lets another server take the key no earlier than `ttl` after
// the leader's last successful keepalive. The leader counts from the moment
// it *sent* that keepalive, and gives leadership up (on_lost) once two thirds
// of the TTL passed without a successful one -- before anyone else can be
// elected. A server that lost leadership does not campaign again: its
// in-memory view is stale, so the process is expected to exit and restart as
// a follower (as kube-controller-manager does).
//
// Runs on its own thread (the etcd client blocks); the callbacks are called
// on that thread, each at most once.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/json.h"
#include "store/store.h"

namespace stele::store {

struct ElectionOptions {
  EtcdStoreOptions etcd;  // endpoints and key prefix (as the state store's)
  std::string id;         // this server's name (its --hostname)
  std::string url;        // where clients and agents reach its API: "http://10.213.0.1:7070"
  int ttl_seconds = 5;
  std::chrono::milliseconds poll{500};
};

struct LeaderInfo {
  std::string id;
  std::string url;
  int64_t since_ms = 0;  // wall time it was elected
  Json to_json() const;
};

// The leader key's value -> LeaderInfo; an error names what is malformed.
Result<LeaderInfo> parse_leader(const std::string& text);

class LeaderElection {
 public:
  explicit LeaderElection(ElectionOptions o);
  ~LeaderElection();  // resign()

  void start(std::function<void()> on_elected, std::function<void(const std::string& why)> on_lost);
  // Stops campaigning; a leader revokes its lease so another takes over now.
  void resign();

  // The leader as last seen (this server's info when it leads); nullopt
  // while none is known.
  std::optional<LeaderInfo> leader() const;
  bool is_leader() const { return leading_.load(); }

 private:
  void run();
  bool campaign();  // true: elected
  void lead();      // keeps the lease alive until lost or resigned
  void sleep_for(std::chrono::milliseconds d);

  ElectionOptions o_;
  std::string key_;
  std::function<void()> on_elected_;
  std::function<void(const std::string&)> on_lost_;
  mutable std::mutex mu_;
  std::optional<LeaderInfo> leader_;
  std::atomic<bool> leading_{false};
  std::atomic<bool> stop_{false};
  std::string lease_;  // the lease id (string: ids exceed 2^53), while leading
  std::chrono::steady_clock::time_point last_ok_;  // when the last successful keepalive was sent
  int64_t self_since_ = 0;  // the `since` this server wrote into the key when elected
  std::condition_variable wake_;
  std::mutex wake_mu_;
  std::thread thread_;
};

}  // namespace stele::store
