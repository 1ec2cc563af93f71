// Choosing a store from its URL, and copying state between stores.
#include "store/store.h"

#include <filesystem>

namespace stele::store {
namespace {

const char kUrlForms[] = "expected sqlite:PATH or etcd://host:port[,host:port...][/prefix/]";

Result<std::string> check_endpoint(const std::string& url, const std::string& ep) {
  auto colon = ep.rfind(':');
  std::string port = colon == std::string::npos ? std::string() : ep.substr(colon + 1);
  bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  if (colon == 0 || !digits || std::stoi(port) == 0 || std::stoi(port) > 65535)
    return fail("bad etcd endpoint '" + ep + "' in store URL '" + url + "': expected host:port");
  return ep;
}

// Copies in txns small enough for etcd (--max-txn-ops 128, 1.5 MiB).
class ImportBatch {
 public:
  explicit ImportBatch(Store& to) : to_(to) {}
  Result<void> add(Write w) {
    bytes_ += w.key.size() + (w.value ? w.value->size() : 0);
    writes_.push_back(std::move(w));
    return full() ? flush() : Result<void>();
  }
  Result<void> add(Json event) {
    bytes_ += event.dump().size();
    events_.push_back(std::move(event));
    return full() ? flush() : Result<void>();
  }
  Result<void> flush() {
    auto r = to_.import(writes_, events_);
    writes_.clear();
    events_.clear();
    bytes_ = 0;
    return r;
  }

 private:
  bool full() const { return writes_.size() + events_.size() >= 100 || bytes_ >= 256 * 1024; }
  Store& to_;
  std::vector<Write> writes_;
  std::vector<Json> events_;
  size_t bytes_ = 0;
};

}  // namespace

Result<EtcdStoreOptions> parse_etcd_url(const std::string& url) {
  const std::string scheme = "etcd://";
  if (url.rfind(scheme, 0) != 0) return fail("bad store URL '" + url + "': " + kUrlForms);
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  EtcdStoreOptions o;
  if (slash != std::string::npos && slash + 1 < rest.size()) {
    o.prefix = rest.substr(slash);
    if (o.prefix.back() != '/') o.prefix += '/';
  }
  std::string hosts = rest.substr(0, slash);
  if (hosts.empty()) return fail("store URL '" + url + "' names no etcd endpoint: " + kUrlForms);
  size_t start = 0;
  for (;;) {
    auto comma = hosts.find(',', start);
    auto ep = check_endpoint(url, hosts.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!ep) return fail(ep.error());
    o.endpoints.push_back(*ep);
    if (comma == std::string::npos) return o;
    start = comma + 1;
  }
}

Result<std::unique_ptr<Store>> open_store(const std::string& url, const std::string& default_sqlite_path,
                                          bool create) {
  if (url.empty() || url.rfind("sqlite:", 0) == 0) {
    std::string path = url.empty() ? default_sqlite_path : url.substr(7);
    if (path.empty()) return fail("store URL '" + url + "' names no file: expected sqlite:PATH");
    std::error_code ec;
    if (!create && !std::filesystem::exists(path, ec)) return fail("no SQLite state store at " + path);
    return open_sqlite_store(path);
  }
  auto o = parse_etcd_url(url);
  if (!o) return fail(o.error());
  return open_etcd_store(*o);
}

Result<MigrateReport> migrate_state(Store& from, Store& to, bool force) {
  auto held = to.collections();
  if (!held) return fail(held.error());
  if (!force && (!held->empty() || to.last_event_id() != 0))
    return fail("the destination is not empty (" + std::to_string(held->size()) + " collection(s), events up to id " +
                    std::to_string(to.last_event_id()) + "); --force writes over it",
                409);
  auto colls = from.collections();
  if (!colls) return fail(colls.error());
  MigrateReport report;
  ImportBatch batch(to);
  for (const auto& c : *colls) {
    auto docs = from.list(c);
    if (!docs) return fail(docs.error());
    report.documents[c] = docs->size();
    for (auto& [key, value] : *docs)
      if (auto r = batch.add(Write{c, key, std::move(value)}); !r) return fail(r.error());
  }
  for (int64_t after = 0;;) {
    auto evs = from.events_since(after, 500);
    if (!evs) return fail(evs.error());
    if (evs->empty()) break;
    after = evs->back().value("id", after);
    report.events += evs->size();
    for (auto& e : *evs)
      if (auto r = batch.add(std::move(e)); !r) return fail(r.error());
  }
  if (auto r = batch.flush(); !r) return fail(r.error());
  return report;
}

Result<void> Store::snapshot(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return fail("snapshot target " + path + " already exists");
  auto to = open_sqlite_store(path);
  if (!to) return fail(to.error());
  if (auto r = migrate_state(*this, **to, false); !r) return fail("snapshot to " + path + ": " + r.error().message);
  return {};
}

}  // namespace stele::store
