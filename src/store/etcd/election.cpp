#include "store/election.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "store/etcd/etcd_client.h"

namespace stele::store {

using namespace std::chrono;
using etcd::base64;
using etcd::int_field;

LeaderElection::LeaderElection(ElectionOptions o) : o_(std::move(o)), key_(o_.etcd.prefix + "leader") {}

LeaderElection::~LeaderElection() { resign(); }

void LeaderElection::start(std::function<void()> on_elected, std::function<void(const std::string&)> on_lost) {
  on_elected_ = std::move(on_elected);
  on_lost_ = std::move(on_lost);
  thread_ = std::thread([this] { run(); });
}

void LeaderElection::sleep_for(milliseconds d) {
  std::unique_lock<std::mutex> lk(wake_mu_);
  wake_.wait_for(lk, d, [this] { return stop_.load(); });
}

std::optional<LeaderInfo> LeaderElection::leader() const {
  std::lock_guard<std::mutex> lk(mu_);
  return leader_;
}

void LeaderElection::resign() {
  {
    std::lock_guard<std::mutex> lk(wake_mu_);
    if (stop_.exchange(true)) return;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!lease_.empty()) {
    etcd::EtcdClient c(o_.etcd.endpoints, milliseconds(2000));
    if (auto r = c.call("lease/revoke", Json{{"ID", lease_}}); r) spdlog::info("leadership handed over (lease revoked)");
    else spdlog::warn("could not revoke the leader lease ({}): others take over when it expires", r.error().message);
    lease_.clear();
  }
}

void LeaderElection::run() {
  etcd::EtcdClient c(o_.etcd.endpoints, std::min<milliseconds>(o_.etcd.timeout, milliseconds(o_.ttl_seconds * 1000 / 3)));
  std::string last_seen;
  while (!stop_) {
    auto kvs = c.range(key_, key_ + '\0', 1, 1);
    if (!kvs) {
      spdlog::warn("leader election: {}", kvs.error().message);
      sleep_for(o_.poll);
      continue;
    }
    if (!kvs->empty()) {
      auto l = parse_leader(kvs->front().value);
      if (!l) spdlog::error("{}", l.error().message);
      std::lock_guard<std::mutex> lk(mu_);
      if (l && l->id != last_seen) spdlog::info("leader is {} ({})", l->id, l->url);
      if (l) last_seen = l->id;
      leader_ = l ? std::optional<LeaderInfo>(*l) : std::nullopt;
      sleep_for(o_.poll);
      continue;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      leader_.reset();
    }
    if (campaign()) {
      lead();
      return;  // leadership lost or resigned: never campaign again
    }
    sleep_for(o_.poll / 5);
  }
}

bool LeaderElection::campaign() {
  etcd::EtcdClient c(o_.etcd.endpoints, std::min<milliseconds>(o_.etcd.timeout, milliseconds(o_.ttl_seconds * 1000 / 3)));
  auto sent = steady_clock::now();
  auto g = c.call("lease/grant", Json{{"TTL", std::to_string(o_.ttl_seconds)}});
  if (!g) {
    spdlog::warn("leader election: lease grant: {}", g.error().message);
    return false;
  }
  std::string lease = g->value("ID", std::string());
  if (lease.empty()) return false;
  LeaderInfo me{o_.id, o_.url, SystemClock().now_ms()};
  self_since_ = me.since_ms;
  Json txn{{"compare", Json::array({Json{{"key", base64(key_)}, {"target", "CREATE"}, {"result", "EQUAL"},
                                          {"create_revision", "0"}}})},
           {"success", Json::array({Json{{"request_put", {{"key", base64(key_)}, {"value", base64(me.to_json().dump())},
                                                          {"lease", lease}}}}})}};
  auto r = c.call("kv/txn", txn);
  if (!r || !r->value("succeeded", false)) {
    (void)c.call("lease/revoke", Json{{"ID", lease}});  // someone else was faster
    return false;
  }
  lease_ = lease;
  last_ok_ = sent;
  {
    std::lock_guard<std::mutex> lk(mu_);
    leader_ = me;
  }
  leading_ = true;
  spdlog::info("elected leader (lease {}, ttl {} s)", lease, o_.ttl_seconds);
  if (on_elected_) on_elected_();
  return true;
}

void LeaderElection::lead() {
  // A keepalive's answer can take a quarter of the TTL at most, so the last
  // one started before the give-up point ends before the lease could expire.
  etcd::EtcdClient c(o_.etcd.endpoints, milliseconds(std::max(200, o_.ttl_seconds * 1000 / 4)));
  auto every = milliseconds(o_.ttl_seconds * 1000 / 3);
  auto give_up_after = milliseconds(o_.ttl_seconds * 1000 * 2 / 3);
  std::string why, last_error;
  auto next = last_ok_ + every;
  while (!stop_) {
    sleep_for(duration_cast<milliseconds>(std::max(next - steady_clock::now(), steady_clock::duration::zero())));
    if (stop_) return;
    auto sent = steady_clock::now();
    if (sent - last_ok_ >= give_up_after) {
      why = "no keepalive of the leader lease succeeded for " +
            std::to_string(duration_cast<milliseconds>(sent - last_ok_).count()) + " ms (" + last_error + ")";
      break;
    }
    auto r = c.call("lease/keepalive", Json{{"ID", lease_}});
    if (r) {
      const Json& res = r->contains("result") ? (*r)["result"] : *r;
      if (int_field(res, "TTL") <= 0) {
        why = "the leader lease expired";
        break;
      }
      last_ok_ = sent;
      next = sent + every;
      // The key itself must still be ours (an operator may have deleted it,
      // and then another server could take it while our lease lives on).
      if (auto kvs = c.range(key_, key_ + '\0', 1, 1); kvs) {
        auto held = kvs->empty() ? Result<LeaderInfo>(fail("deleted")) : parse_leader(kvs->front().value);
        if (!held || held->id != o_.id || held->since_ms != self_since_) {
          why = "the leader key was deleted or taken over";
          break;
        }
      }
    } else {
      last_error = r.error().message;
      next = steady_clock::now() + milliseconds(200);  // retry soon, maybe on another endpoint
    }
  }
  if (stop_) return;
  leading_ = false;
  lease_.clear();
  {
    std::lock_guard<std::mutex> lk(mu_);
    leader_.reset();
  }
  spdlog::critical("leadership lost: {}", why);
  if (on_lost_) on_lost_(why);
}

}  // namespace stele::store
