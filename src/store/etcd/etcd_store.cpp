// The Store on etcd v3 (store.h has the key layout and the write contract).
#include <cinttypes>
#include <cstdio>
#include <map>

#include "store/etcd/etcd_client.h"
#include "store/store.h"

namespace stele::store {
namespace {

using etcd::base64;
using etcd::int_field;
using etcd::prefix_end;

Json put_op(const std::string& key, const std::string& value) {
  return Json{{"request_put", {{"key", base64(key)}, {"value", base64(value)}}}};
}

Json delete_op(const std::string& key) { return Json{{"request_delete_range", {{"key", base64(key)}}}}; }

class EtcdStore final : public Store {
 public:
  explicit EtcdStore(EtcdStoreOptions o)
      : o_(std::move(o)), etcd_(o_.endpoints, o_.timeout), seq_key_(o_.prefix + "meta/event-seq") {}

  // Reads the sequence key: the last event id and the revision every write
  // is compared with.
  Result<void> load_sequence() {
    auto kvs = etcd_.range(seq_key_, seq_key_ + '\0', 1, 1);
    if (!kvs) return fail(kvs.error());
    seq_revision_ = kvs->empty() ? 0 : kvs->front().mod_revision;
    last_event_ = kvs->empty() ? 0 : std::strtoll(kvs->front().value.c_str(), nullptr, 10);
    return {};
  }

  Result<void> refresh() override { return load_sequence(); }

  Result<void> apply(const std::vector<Write>& writes, const std::vector<Json>& events,
                     std::vector<int64_t>* event_ids) override {
    std::vector<std::pair<int64_t, std::string>> numbered;
    for (const auto& e : events) numbered.emplace_back(last_event_ + int64_t(numbered.size()) + 1, e.dump());
    if (auto r = commit(writes, numbered); !r) return r;
    if (event_ids)
      for (const auto& [id, body] : numbered) event_ids->push_back(id);
    if (!events.empty() && ++appends_ % std::max<size_t>(1, o_.prune_every) == 0) prune_events();
    return {};
  }

  Result<void> import(const std::vector<Write>& writes, const std::vector<Json>& events) override {
    std::vector<std::pair<int64_t, std::string>> numbered;
    for (const auto& e : events) {
      Json body = e;
      body.erase("id");
      numbered.emplace_back(e.value("id", int64_t(0)), body.dump());
    }
    return commit(writes, numbered);
  }

  Result<std::vector<std::pair<std::string, std::string>>> list(const std::string& collection) override {
    if (auto r = check_collection(collection); !r) return fail(r.error());
    std::string prefix = doc_key(collection, "");
    auto kvs = etcd_.range(prefix, prefix_end(prefix), 0, std::max<size_t>(1, o_.page_size));
    if (!kvs) return fail(kvs.error());
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& kv : *kvs) out.emplace_back(kv.key.substr(prefix.size()), std::move(kv.value));
    return out;
  }

  Result<std::optional<std::string>> get(const std::string& collection, const std::string& key) override {
    if (auto r = check_collection(collection); !r) return fail(r.error());
    std::string k = doc_key(collection, key);
    auto kvs = etcd_.range(k, k + '\0', 1, 1);
    if (!kvs) return fail(kvs.error());
    if (kvs->empty()) return std::optional<std::string>();
    return std::optional<std::string>(std::move(kvs->front().value));
  }

  Result<std::vector<Json>> events_since(int64_t after, size_t limit) override {
    std::vector<Json> out;
    if (limit == 0) return out;
    auto kvs = etcd_.range(event_key(std::max<int64_t>(after, 0) + 1), prefix_end(o_.prefix + "ev/"), limit, std::max<size_t>(1, o_.page_size));
    if (!kvs) return fail(kvs.error());
    for (const auto& kv : *kvs) {
      auto parsed = parse_json(kv.value);
      if (!parsed) continue;  // as the SQLite store: an unreadable event is skipped
      Json j = std::move(*parsed);
      j["id"] = std::strtoll(kv.key.c_str() + o_.prefix.size() + 3, nullptr, 10);
      out.push_back(std::move(j));
    }
    return out;
  }

  int64_t last_event_id() override { return last_event_; }
  // snapshot(): the Store default (migrate_state into a new SQLite file).

  // One short range per collection: after finding "doc/<c>/...", jump to the
  // first key past every key of <c> ("doc/<c>0", '0' being '/' + 1).
  Result<std::vector<std::string>> collections() override {
    std::string docs = o_.prefix + "doc/";
    std::vector<std::string> out;
    std::string from = docs;
    for (;;) {
      auto kvs = etcd_.range(from, prefix_end(docs), 1, 1, true);
      if (!kvs) return fail(kvs.error());
      if (kvs->empty()) return out;
      std::string rest = kvs->front().key.substr(docs.size());
      out.push_back(rest.substr(0, rest.find('/')));
      from = docs + out.back() + "0";
    }
  }

 private:
  static Result<void> check_collection(const std::string& collection) {
    if (collection.empty() || collection.find('/') != std::string::npos)
      return fail("bad collection name '" + collection + "': must be non-empty, without '/'", 400);
    return {};
  }

  std::string doc_key(const std::string& collection, const std::string& key) const {
    return o_.prefix + "doc/" + collection + "/" + key;
  }

  std::string event_key(int64_t id) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020" PRId64, id);
    return o_.prefix + "ev/" + buf;
  }

  // The writes (the last one per key wins, as in the SQLite store: etcd
  // refuses a txn naming a key twice), the events and the new sequence value
  // in one txn, guarded by the sequence key's revision.
  Result<void> commit(const std::vector<Write>& writes, const std::vector<std::pair<int64_t, std::string>>& events) {
    if (writes.empty() && events.empty()) return {};
    std::map<std::string, const Write*> last_write;
    for (const auto& w : writes) {
      if (auto r = check_collection(w.collection); !r) return r;
      last_write[doc_key(w.collection, w.key)] = &w;
    }
    Json ops = Json::array();
    for (const auto& [key, w] : last_write) ops.push_back(w->value ? put_op(key, *w->value) : delete_op(key));
    int64_t seq = last_event_;
    for (const auto& [id, body] : events) {
      if (id <= 0) return fail("event without a positive id", 400);
      ops.push_back(put_op(event_key(id), body));
      seq = std::max(seq, id);
    }
    ops.push_back(put_op(seq_key_, std::to_string(seq)));
    Json compare = seq_revision_ == 0
                       ? Json{{"key", base64(seq_key_)}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}
                       : Json{{"key", base64(seq_key_)}, {"target", "MOD"}, {"result", "EQUAL"},
                              {"mod_revision", std::to_string(seq_revision_)}};
    Json txn{{"compare", Json::array({compare})}, {"success", std::move(ops)}};
    std::string text = txn.dump();
    if (text.size() > o_.max_apply_bytes)
      return fail("state change of " + std::to_string(text.size()) + " bytes (" + std::to_string(last_write.size()) +
                      " documents, " + std::to_string(events.size()) + " events) is over the etcd store's limit of " +
                      std::to_string(o_.max_apply_bytes) + " bytes per write (etcd refuses requests over 1.5 MiB)",
                  413);
    auto r = etcd_.call("kv/txn", txn);
    if (!r) {
      if (r.error().message.find("too many operations") != std::string::npos)
        r.error().message += " (" + std::to_string(last_write.size() + events.size() + 1) +
                             " operations in one write: raise etcd's --max-txn-ops)";
      return fail(r.error());
    }
    if (!r->value("succeeded", false)) {
      if (auto reread = load_sequence(); !reread) return reread;
      return fail("state changed by another server; this one is no longer the leader? (etcd " + seq_key_ +
                      " moved to event " + std::to_string(last_event_) + "); nothing was written",
                  409);
    }
    seq_revision_ = int_field(r->value("header", Json::object()), "revision");
    last_event_ = seq;
    return {};
  }

  // Deletes the events with id <= last - max_events (as the SQLite store).
  // Not guarded: only old events go, whoever writes.
  void prune_events() {
    if (last_event_ <= static_cast<int64_t>(o_.max_events)) return;
    Json req{{"key", base64(event_key(0))}, {"range_end", base64(event_key(last_event_ - int64_t(o_.max_events) + 1))}};
    (void)etcd_.call("kv/deleterange", req);
  }

  EtcdStoreOptions o_;
  etcd::EtcdClient etcd_;
  std::string seq_key_;
  int64_t seq_revision_ = 0;  // mod_revision of seq_key_ as last seen; 0 = absent
  int64_t last_event_ = 0;
  uint64_t appends_ = 0;
};

}  // namespace

Result<std::unique_ptr<Store>> open_etcd_store(const EtcdStoreOptions& options) {
  if (options.endpoints.empty()) return fail("etcd store: no endpoints");
  auto s = std::make_unique<EtcdStore>(options);
  if (auto r = s->load_sequence(); !r) return fail("cannot open the etcd state store: " + r.error().message);
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace stele::store
