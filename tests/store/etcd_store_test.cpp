// The etcd store against a real single-member etcd started here (the Debian
// package etcd-server): the Store contract, plus what only etcd has —
// compare-and-swap between two writers, paging, endpoint failover.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "net/http_client.h"
#include "store/election.h"
#include "store/etcd/etcd_client.h"
#include "store/store.h"
#include "store_contract.h"

using namespace stele;
namespace fs = std::filesystem;

namespace {

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::optional<std::string> etcd_binary() {
  if (const char* e = std::getenv("STELE_ETCD")) return std::string(e);
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  for (size_t start = 0; start <= path.size();) {
    size_t colon = std::min(path.find(':', start), path.size());
    fs::path candidate = fs::path(path.substr(start, colon - start)) / "etcd";
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = colon + 1;
  }
  return std::nullopt;
}

// One etcd for the whole test binary, killed (by its pid) at the end.
class EtcdProcess {
 public:
  static Result<EtcdProcess*> shared() {
    static Result<std::unique_ptr<EtcdProcess>> p = start();
    if (!p) return fail(p.error());
    return p->get();
  }
  static void stop_shared() {
    if (auto p = shared()) (*p)->stop();
  }
  ~EtcdProcess() { stop(); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  static Result<std::unique_ptr<EtcdProcess>> start() {
    auto bin = etcd_binary();
    if (!bin) return fail("no etcd binary");
    auto p = std::unique_ptr<EtcdProcess>(new EtcdProcess);
    char tmpl[] = "/tmp/stele-etcd-XXXXXX";
    if (!mkdtemp(tmpl)) return fail("mkdtemp failed");
    p->dir_ = tmpl;
    std::string client = "http://127.0.0.1:" + std::to_string(free_port());
    std::string peer = "http://127.0.0.1:" + std::to_string(free_port());
    p->endpoint_ = client.substr(7);
    std::vector<std::string> args = {*bin, "--data-dir", p->dir_ + "/data", "--listen-client-urls", client,
                                     "--advertise-client-urls", client, "--listen-peer-urls", peer,
                                     "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=" + peer};
    std::string log = p->dir_ + "/etcd.log";
    p->pid_ = fork();
    if (p->pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test binary
      if (!freopen(log.c_str(), "w", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      auto r = net::http_request_sync("GET", client + "/health", {}, {}, std::chrono::seconds(1));
      if (r && r->status == 200 && r->body.find("true") != std::string::npos) return p;
      if (waitpid(p->pid_, nullptr, WNOHANG) == p->pid_) {
        p->pid_ = -1;
        return fail("etcd exited at start; see " + log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return fail("etcd did not become healthy in 20s; see " + log);
  }
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (!dir_.empty()) fs::remove_all(dir_);
    dir_.clear();
  }

  pid_t pid_ = -1;
  std::string dir_;
  std::string endpoint_;
};

class StopEtcd : public ::testing::Environment {
  void TearDown() override { EtcdProcess::stop_shared(); }
};
[[maybe_unused]] auto* const kStopEtcd = ::testing::AddGlobalTestEnvironment(new StopEtcd);

std::optional<std::string> etcd_unavailable() {
  if (etcd_binary()) return std::nullopt;
  return std::string("no etcd binary on PATH: install Debian's etcd-server (scripts/bootstrap does) or set STELE_ETCD");
}

std::string fresh_prefix() {
  static int n = 0;
  return "/test-" + std::to_string(getpid()) + "-" + std::to_string(++n) + "/";
}

store::EtcdStoreOptions options(const std::string& prefix) {
  auto etcd = EtcdProcess::shared();
  EXPECT_TRUE(etcd) << etcd.error().message;
  store::EtcdStoreOptions o;
  o.endpoints = {etcd ? (*etcd)->endpoint() : std::string("127.0.0.1:1")};
  o.prefix = prefix;
  return o;
}

struct EtcdBackend {
  static std::optional<std::string> unavailable() { return etcd_unavailable(); }
  std::string fresh() { return fresh_prefix(); }
  Result<std::unique_ptr<store::Store>> open(const std::string& prefix, size_t max_events) {
    auto o = options(prefix);
    o.max_events = max_events;
    return store::open_etcd_store(o);
  }
};

class EtcdStore : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = etcd_unavailable()) GTEST_SKIP() << *why;
    o_ = options(fresh_prefix());
  }
  std::unique_ptr<store::Store> open() {
    auto s = store::open_etcd_store(o_);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }
  store::EtcdStoreOptions o_;
};

}  // namespace

namespace stele::store::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Etcd, StoreContract, EtcdBackend);
}

// A deposed leader's write fails instead of interleaving with the new one's.
TEST_F(EtcdStore, SecondWriterFailsWith409AndWritesNothing) {
  auto leader = open(), deposed = open();
  ASSERT_TRUE(leader && deposed);
  ASSERT_TRUE(leader->apply({{"apps", "/a", std::string("new")}}, {Json{{"type", "x"}}}));
  std::vector<int64_t> ids;
  auto r = deposed->apply({{"apps", "/b", std::string("stale")}}, {Json{{"type", "y"}}}, &ids);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 409);
  EXPECT_NE(r.error().message.find("changed by another server"), std::string::npos) << r.error().message;
  EXPECT_TRUE(ids.empty());
  auto b = leader->get("apps", "/b");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->has_value());
  auto evs = leader->events_since(0, 10);
  ASSERT_TRUE(evs);
  EXPECT_EQ(evs->size(), 1u);
  // The failed writer re-read the sequence: it sees the leader's event, and
  // the leader, whose view is now stale, is the one refused.
  EXPECT_EQ(deposed->last_event_id(), 1);
  ASSERT_TRUE(deposed->apply({{"apps", "/b", std::string("v")}}, {}));
  auto again = leader->apply({{"apps", "/a", std::string("v2")}}, {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, 409);
}

TEST_F(EtcdStore, ListsAndEventsSpanManyPages) {
  o_.page_size = 3;
  auto s = open();
  ASSERT_TRUE(s);
  std::vector<store::Write> writes;
  std::vector<Json> events;
  for (int i = 9; i >= 0; --i) writes.push_back({"apps", "/app" + std::to_string(i), std::to_string(i)});
  for (int i = 0; i < 10; ++i) events.push_back(Json{{"n", i}});
  ASSERT_TRUE(s->apply(writes, events));
  auto all = s->list("apps");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*all)[i].first, "/app" + std::to_string(i));
  auto evs = s->events_since(2, 5);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 5u);
  EXPECT_EQ((*evs)[0]["id"], 3);
  EXPECT_EQ((*evs)[4]["id"], 7);
  auto rest = s->events_since(0, 100);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->size(), 10u);
}

TEST_F(EtcdStore, PrunesTheOldestEventsBeyondTheBound) {
  o_.max_events = 5;
  o_.prune_every = 4;
  auto s = open();
  ASSERT_TRUE(s);
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(s->apply({}, {Json{{"n", i}}}));
  auto evs = s->events_since(0, 100);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 5u);
  EXPECT_EQ((*evs)[0]["id"], 16);
  EXPECT_EQ(s->last_event_id(), 20);
}

TEST_F(EtcdStore, FallsOverToTheNextEndpoint) {
  std::string dead = "127.0.0.1:" + std::to_string(free_port());
  o_.endpoints.insert(o_.endpoints.begin(), dead);
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->apply({{"apps", "/a", std::string("1")}}, {}));
  auto v = s->get("apps", "/a");
  ASSERT_TRUE(v && *v);

  o_.endpoints = {dead};
  auto none = store::open_etcd_store(o_);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find(dead), std::string::npos) << none.error().message;
}

TEST_F(EtcdStore, OversizedOrTooManyWritesAreRefusedClearly) {
  auto s = open();
  ASSERT_TRUE(s);
  auto big = s->apply({{"apps", "/big", std::string(2 << 20, 'x')}}, {});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, 413);
  EXPECT_NE(big.error().message.find("over the etcd store's limit"), std::string::npos) << big.error().message;
  std::vector<store::Write> many;
  for (int i = 0; i < 200; ++i) many.push_back({"apps", std::to_string(i), std::string("1")});
  auto r = s->apply(many, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(o_.endpoints[0]), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("--max-txn-ops"), std::string::npos) << r.error().message;
  auto all = s->list("apps");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty());
}

// ---- leader election (store/election.h) against the same etcd

namespace {

struct Candidate {
  explicit Candidate(const store::EtcdStoreOptions& etcd, const std::string& id) {
    store::ElectionOptions o;
    o.etcd = etcd;
    o.id = id;
    o.url = "http://" + id + ":7070";
    o.ttl_seconds = 3;
    o.poll = std::chrono::milliseconds(100);
    election = std::make_unique<store::LeaderElection>(o);
    election->start([this] { ++elected; }, [this](const std::string& why) {
      lost_why = why;
      ++lost;
    });
  }
  std::unique_ptr<store::LeaderElection> election;
  std::atomic<int> elected{0}, lost{0};
  std::string lost_why;
};

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds within) {
  auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace

TEST_F(EtcdStore, OneLeaderAmongThreeAndAStoppedLeaderHandsOverAtOnce) {
  std::vector<std::unique_ptr<Candidate>> c;
  for (const char* id : {"s1", "s2", "s3"}) c.push_back(std::make_unique<Candidate>(o_, id));
  auto leaders = [&] {
    int n = 0;
    for (auto& x : c) n += x && x->election->is_leader();
    return n;
  };
  ASSERT_TRUE(eventually([&] { return leaders() == 1; }, std::chrono::seconds(5)));
  size_t first = 0;
  while (!c[first]->election->is_leader()) ++first;
  // Everyone names the same leader, with its URL.
  ASSERT_TRUE(eventually([&] {
    for (auto& x : c) {
      auto l = x->election->leader();
      if (!l || l->id != c[first]->election->leader()->id) return false;
    }
    return true;
  }, std::chrono::seconds(2)));
  EXPECT_EQ(c[first]->election->leader()->url, "http://" + c[first]->election->leader()->id + ":7070");
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // past a TTL: renewals keep it
  EXPECT_EQ(leaders(), 1);
  EXPECT_TRUE(c[first]->election->is_leader());
  EXPECT_EQ(c[first]->lost.load(), 0);

  auto resigned = std::chrono::steady_clock::now();
  c[first]->election->resign();  // revokes the lease: no waiting for the TTL
  c[first].reset();
  ASSERT_TRUE(eventually([&] { return leaders() == 1; }, std::chrono::seconds(2)));
  EXPECT_LT(std::chrono::steady_clock::now() - resigned, std::chrono::milliseconds(1500));
  int elections = 0;
  for (auto& x : c)
    if (x) elections += x->elected;
  EXPECT_EQ(elections, 1);
}

TEST_F(EtcdStore, ALeaderWhoseKeyIsDeletedGivesUpBeforeAnotherLeads) {
  Candidate a(o_, "a");
  ASSERT_TRUE(eventually([&] { return a.election->is_leader(); }, std::chrono::seconds(5)));
  store::etcd::EtcdClient etcd(o_.endpoints, std::chrono::seconds(2));
  ASSERT_TRUE(etcd.call("kv/deleterange", Json{{"key", store::etcd::base64(o_.prefix + "leader")}}));
  // It notices at its next renewal (every TTL/3) and never campaigns again.
  ASSERT_TRUE(eventually([&] { return a.lost.load() == 1; }, std::chrono::seconds(4)));
  EXPECT_FALSE(a.election->is_leader());
  EXPECT_NE(a.lost_why.find("deleted or taken"), std::string::npos) << a.lost_why;
  Candidate b(o_, "b");
  ASSERT_TRUE(eventually([&] { return b.election->is_leader(); }, std::chrono::seconds(3)));
  EXPECT_FALSE(a.election->is_leader());
}

TEST(StoreUrl, BadUrlsNameTheProblem) {
  auto expect_error = [](const std::string& url, const std::string& says) {
    auto s = store::open_store(url, "/nonexistent/state.db");
    ASSERT_FALSE(s) << url;
    EXPECT_NE(s.error().message.find(says), std::string::npos) << url << ": " << s.error().message;
  };
  expect_error("redis://127.0.0.1:6379", "expected sqlite:PATH or etcd://");
  expect_error("etcd://", "names no etcd endpoint");
  expect_error("etcd://127.0.0.1", "bad etcd endpoint '127.0.0.1'");
  expect_error("etcd://127.0.0.1:2379,:2380", "bad etcd endpoint ':2380'");
  expect_error("etcd://127.0.0.1:99999", "bad etcd endpoint '127.0.0.1:99999'");
  expect_error("sqlite:", "names no file");
}

TEST(StoreUrl, EndpointsAndPrefix) {
  auto o = store::parse_etcd_url("etcd://127.0.0.1:2379,[::1]:2380/prod");
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->endpoints, (std::vector<std::string>{"127.0.0.1:2379", "[::1]:2380"}));
  EXPECT_EQ(o->prefix, "/prod/");
  auto d = store::parse_etcd_url("etcd://h:1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->prefix, "/stele/");
}

namespace stele::store::etcd {
namespace {

// What etcd's replies carry, decoded without a server (fuzz/etcd_reply_fuzz.cpp
// found that an unpadded value overran Beast's decoder: now refused).
TEST(EtcdCodec, RangeRepliesDecodeAndBadBase64IsRefused) {
  std::vector<KeyValue> kvs;
  auto ok = decode_kvs(Json::parse(R"({"kvs":[{"key":"Zm9v","mod_revision":"3","value":"YmF6"},{"key":"bA=="}]})"), kvs);
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ(kvs.size(), 2u);
  EXPECT_EQ(kvs[0].key, "foo");
  EXPECT_EQ(kvs[0].value, "baz");
  EXPECT_EQ(kvs[0].mod_revision, 3);
  EXPECT_EQ(kvs[1].key, "l");
  EXPECT_EQ(kvs[1].value, "");  // keys_only: no value
  EXPECT_TRUE(decode_kvs(Json::parse(R"({"header":{}})"), kvs));  // no match: no "kvs"
  EXPECT_EQ(kvs.size(), 2u);
  auto unpadded = unbase64(std::string(127, 'q'));
  ASSERT_FALSE(unpadded);
  EXPECT_NE(unpadded.error().message.find("not a multiple of 4"), std::string::npos);
  EXPECT_FALSE(unbase64("Zm9v!!!!"));
  EXPECT_FALSE(decode_kvs(Json::parse(R"({"kvs":[{"key":"Zm9"}]})"), kvs));
  EXPECT_FALSE(decode_kvs(Json::parse(R"({"kvs":{"key":"Zm9v"}})"), kvs));
  EXPECT_EQ(unbase64(base64(std::string("\0\xff\x01", 3))).value(), std::string("\0\xff\x01", 3));
}

}  // namespace
}  // namespace stele::store::etcd
