// Shipper over real loopback sockets: spools in a temp dir shipped to one or
// two real ForwardServers (each with its own LogStore), a destination that is
// down and comes back, extra (never finished) sources, and the
// "stele_replicated" option on the wire.
#include "logs/shipper.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.h"

#include "common/json.h"
#include "logs/forward_codec.h"
#include "logs/forward_server.h"
#include "logs/log_store.h"
#include "logs/spool.h"

namespace stele::logs {
namespace {
using test_support::eventually;
using test_support::pack;
namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;

// A 127.0.0.1 port nobody listens on: bound (so the kernel picks a free one), then closed.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Writes `n` records {"log": "<what> <i>", "n": i} with `tag` into dir's spool
// "records", small segments so that a spool spans several of them.
void write_spool(const fs::path& dir, const std::string& tag, int n, bool finish, const std::string& what = "line") {
  fs::create_directories(dir);
  SpoolWriterOptions o;
  o.segment_bytes = 2048;
  SpoolWriter w(dir.string(), "records", o);
  for (int i = 0; i < n; ++i) {
    w.append(tag, 1700000000LL * 1000000000LL + i, pack(Json{{"log", what + " " + std::to_string(i)}, {"n", i}}));
    if (i % 10 == 9) w.flush();  // several flushes: several frames batches, segments roll
  }
  if (finish) w.finish();
  else w.flush();
  ASSERT_TRUE(w.last_error().empty()) << w.last_error();
  ASSERT_EQ(w.dropped(), 0u);
}

// The spool files ("records.*": segments, end marker, cursors) in a directory.
std::vector<std::string> spool_files(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto n = e.path().filename().string();
    if (n.rfind("records.", 0) == 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> segment_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& n : spool_files(dir))
    if (n.size() == 16 && std::all_of(n.begin() + 8, n.end(), ::isdigit)) out.push_back(n);
  return out;
}

// A ForwardServer with its own LogStore, io_context and thread.
class Receiver {
 public:
  Receiver(fs::path dir, std::string listen, LogStoreOptions so = {})
      : dir_(std::move(dir)), store_(dir_.string(), std::move(so)) {
    auto o = store_.open();
    EXPECT_TRUE(o) << o.error().message;
    ForwardServerOptions fo;
    fo.listen = std::move(listen);
    // What a server would relay to its peers: requests not marked "stele_replicated".
    fo.relay = [this](std::span<const LogEntry> entries) { relayed_ += entries.size(); };
    server_ = std::make_unique<ForwardServer>(io_, store_, std::move(fo));
    auto b = server_->start();
    EXPECT_TRUE(b) << b.error().message;
    if (b) address_ = *b;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Receiver() {
    asio::post(io_, [this] { server_->stop(); });
    work_.reset();
    io_.stop();
    thread_.join();
    server_.reset();
  }
  const std::string& address() const { return address_; }
  // Every stored record with `tag`, as its "n" field.
  std::vector<int> ns(const std::string& tag) const {
    LogQuery q;
    q.tag = tag;
    q.limit = 1'000'000;
    auto r = store_.query(q);
    EXPECT_TRUE(r) << r.error().message;
    std::vector<int> out;
    if (r)
      for (const auto& x : *r) out.push_back(x.record.value("n", -1));
    return out;
  }
  size_t count(const std::string& tag) const { return ns(tag).size(); }
  size_t relayed() const { return relayed_.load(); }

 private:
  fs::path dir_;
  LogStore store_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<ForwardServer> server_;
  std::thread thread_;
  std::string address_;
  std::atomic<size_t> relayed_{0};
};

// Exactly the records 0..n-1, each once.
void expect_each_once(const std::vector<int>& got, int n, const std::string& who) {
  EXPECT_EQ(got.size(), size_t(n)) << who << " stored a wrong number of records (duplicates or losses)";
  std::set<int> uniq(got.begin(), got.end());
  EXPECT_EQ(uniq.size(), size_t(n)) << who;
  if (!uniq.empty()) {
    EXPECT_EQ(*uniq.begin(), 0) << who;
    EXPECT_EQ(*uniq.rbegin(), n - 1) << who;
  }
}

class ShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stele-ship-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(tasks());
  }
  void TearDown() override {
    stop_shipper();
    fs::remove_all(dir_);
  }
  fs::path tasks() const { return dir_ / "tasks"; }
  std::unique_ptr<Receiver> receiver(const std::string& name, const std::string& listen = "127.0.0.1:0",
                                     LogStoreOptions so = {}) {
    return std::make_unique<Receiver>(dir_ / name, listen, std::move(so));
  }
  ShipperOptions options() const {
    ShipperOptions o;
    o.tasks_dir = tasks().string();
    o.node = "node-a";
    o.scan_interval = 50ms;
    o.batch_bytes = 1024;  // several requests per segment
    return o;
  }
  // Runs f on the shipper's io thread and waits for it.
  template <class F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(io_, [&task] { task(); });
    return fut.get();
  }
  void start_shipper(ShipperOptions o, std::vector<ShipDestination> to) {
    shipper_ = std::make_unique<Shipper>(io_, workers_, std::move(o));
    shipper_->set_destinations(std::move(to));
    shipper_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop_shipper() {
    if (!thread_.joinable()) return;
    on_io([this] { shipper_->stop(); });
    work_.reset();
    io_.stop();
    thread_.join();
    workers_.join();
    shipper_.reset();
  }
  bool drained(const std::string& task, std::chrono::milliseconds timeout) {
    auto fut = asio::co_spawn(io_, shipper_->drained(task, timeout), asio::use_future);
    return fut.get();
  }
  std::vector<Shipper::DestinationStats> destination_stats() {
    return on_io([this] { return shipper_->destinations(); });
  }

  fs::path dir_;
  asio::io_context io_;
  asio::thread_pool workers_{2};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<Shipper> shipper_;
  std::thread thread_;
};

TEST_F(ShipperTest, TwoDestinationsEachGetEveryRecordOnceThenTheTaskSpoolIsRemoved) {
  auto a = receiver("recv-a");
  // The secondary is slower (a slow disk): the primary is done well before it,
  // and must not finish the source while the secondary still ships it.
  LogStoreOptions slow;
  slow.before_wal_sync_for_test = [] { std::this_thread::sleep_for(5ms); };
  auto b = receiver("recv-b", "127.0.0.1:0", slow);
  constexpr int kN = 300;
  const std::string tag = "stele.shop_web.stdout";
  write_spool(tasks() / "task-1", tag, kN, /*finish=*/true);
  ASSERT_GT(segment_files(tasks() / "task-1").size(), 2u) << "the spool should span several segments";

  start_shipper(options(), {{a->address(), ""}, {b->address(), ""}});
  EXPECT_TRUE(drained("task-1", 5000ms)) << "the primary never acked the task's records";
  // The primary acked everything: its store holds every record already.
  expect_each_once(a->ns(tag), kN, "primary");

  // Once both acked, the source is finished: every spool file goes, cursors included.
  EXPECT_TRUE(eventually([&] { return spool_files(tasks() / "task-1").empty(); }))
      << "left behind: " << ::testing::PrintToString(spool_files(tasks() / "task-1"));
  expect_each_once(a->ns(tag), kN, "primary");
  expect_each_once(b->ns(tag), kN, "secondary");
  EXPECT_EQ(on_io([this] { return shipper_->stats().sources_finished; }), 1u);
  // Nothing is shipped again after the source is gone.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(a->count(tag), size_t(kN));
  EXPECT_EQ(b->count(tag), size_t(kN));
  // A finished (removed) task is drained at once.
  EXPECT_TRUE(drained("task-1", 0ms));
}

TEST_F(ShipperTest, DownDestinationIsRetriedAndHoldsSegmentsUntilItComesBack) {
  uint16_t port = closed_port();
  const std::string down = "127.0.0.1:" + std::to_string(port);
  auto live = receiver("recv-live");
  constexpr int kN = 200;
  const std::string tag = "stele.shop_web.stdout";
  const fs::path task = tasks() / "task-2";
  write_spool(task, tag, kN, /*finish=*/true);
  auto segments = segment_files(task);
  ASSERT_GT(segments.size(), 2u);

  // The down one is the primary: drained() waits for it.
  start_shipper(options(), {{down, ""}, {live->address(), ""}});
  ASSERT_TRUE(eventually([&] { return live->count(tag) >= size_t(kN); })) << "the live destination was held up";
  EXPECT_FALSE(drained("task-2", 300ms)) << "drained() although the primary never acked";

  // The live one got everything, once; the down one is failing and retried.
  expect_each_once(live->ns(tag), kN, "live");
  auto st = destination_stats();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].address, down);
  EXPECT_TRUE(st[0].failing);
  EXPECT_GE(st[0].failures, 2u) << "the down destination is not retried";
  EXPECT_EQ(st[0].records, 0u);
  EXPECT_FALSE(st[1].failing);
  EXPECT_EQ(st[1].records, uint64_t(kN));
  // Every segment is still there: the down destination has not acked any.
  EXPECT_EQ(segment_files(task), segments);
  EXPECT_TRUE(fs::exists(task / "records.end"));

  // It comes back on the same address.
  auto back = receiver("recv-back", down);
  ASSERT_EQ(back->address(), down);
  EXPECT_TRUE(drained("task-2", 5000ms)) << "the primary never caught up";
  EXPECT_TRUE(eventually([&] { return spool_files(task).empty(); }))
      << "left behind: " << ::testing::PrintToString(spool_files(task));
  expect_each_once(back->ns(tag), kN, "came back");
  expect_each_once(live->ns(tag), kN, "live");
  st = destination_stats();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_FALSE(st[0].failing);
  EXPECT_EQ(st[0].records, uint64_t(kN));
}

TEST_F(ShipperTest, ExtraSourcesReachEveryDestinationAndAreNeverRemoved) {
  auto a = receiver("recv-a");
  auto b = receiver("recv-b");
  constexpr int kTask = 50, kExtra = 120;
  const std::string task_tag = "stele.shop_web.stdout", extra_tag = "stele.router.access";
  const fs::path extra = dir_ / "relay-spool";
  write_spool(tasks() / "task-3", task_tag, kTask, /*finish=*/true);
  // Even an extra spool whose writer finished is the owner's own: never removed.
  write_spool(extra, extra_tag, kExtra, /*finish=*/true, "access");

  auto o = options();
  o.extra_sources = {{"relay", extra.string()}};
  start_shipper(o, {{a->address(), ""}, {b->address(), ""}});
  ASSERT_TRUE(eventually([&] { return spool_files(tasks() / "task-3").empty(); })) << "the task was not finished";
  ASSERT_TRUE(eventually([&] { return a->count(extra_tag) >= size_t(kExtra) && b->count(extra_tag) >= size_t(kExtra); }));
  // A few more scans: the extra source, drained by both, must stay.
  std::this_thread::sleep_for(300ms);
  expect_each_once(a->ns(extra_tag), kExtra, "a (extra)");
  expect_each_once(b->ns(extra_tag), kExtra, "b (extra)");
  expect_each_once(a->ns(task_tag), kTask, "a (task)");
  expect_each_once(b->ns(task_tag), kTask, "b (task)");
  EXPECT_TRUE(SpoolReader(extra.string(), "records").exists());
  EXPECT_TRUE(fs::exists(extra / "records.end"));
  EXPECT_TRUE(fs::exists(extra / ("records.cursor." + destination_key(a->address()))));
  EXPECT_TRUE(fs::exists(extra / ("records.cursor." + destination_key(b->address()))));
  EXPECT_EQ(on_io([this] { return shipper_->stats().sources_finished; }), 1u) << "only the task is finished";
}

// With `replicated`, the receiver sees "stele_replicated" on every request and
// does not relay them to its peers; without it, it does.
TEST_F(ShipperTest, ReplicatedShipperRequestsAreNotRelayedByTheReceiver) {
  auto a = receiver("recv-a");
  constexpr int kN = 40;
  const std::string tag = "stele.shop_web.stdout";
  write_spool(tasks() / "task-r", tag, kN, /*finish=*/true);
  auto o = options();
  o.replicated = true;
  start_shipper(o, {{a->address(), ""}});
  EXPECT_TRUE(drained("task-r", 5000ms));
  expect_each_once(a->ns(tag), kN, "receiver");
  EXPECT_EQ(a->relayed(), 0u) << "requests of a replicated shipper were relayed again";
}

TEST_F(ShipperTest, UnreplicatedShipperRequestsAreRelayedByTheReceiver) {
  auto a = receiver("recv-a");
  constexpr int kN = 40;
  const std::string tag = "stele.shop_web.stdout";
  write_spool(tasks() / "task-u", tag, kN, /*finish=*/true);
  start_shipper(options(), {{a->address(), ""}});
  EXPECT_TRUE(drained("task-u", 5000ms));
  expect_each_once(a->ns(tag), kN, "receiver");
  EXPECT_EQ(a->relayed(), size_t(kN));
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

// An extra source whose receiver refuses it (here: metric points, fluent_signal
// 1, to a server without a signal sink) waits out its own retry backoff; the
// shipper must idle meanwhile, not rescan the spool in a loop (it used to:
// about 1.4 CPU-seconds per 1.5 s, as a round with nothing sent did not sleep).
TEST_F(ShipperTest, RefusedExtraSourceDoesNotBusyLoop) {
  auto a = receiver("recv-a");  // no signal_sink: fluent_signal 1 requests are closed unacked
  const fs::path extra = dir_ / "metrics-spool";
  write_spool(extra, "stele.metrics", 10, /*finish=*/false, "m");
  auto o = options();
  o.tasks_dir = "";
  o.signal_tag = "stele.metrics";
  o.extra_sources = {{"metrics", extra.string()}};
  start_shipper(o, {{a->address(), ""}});
  ASSERT_TRUE(eventually([&] {
    auto st = destination_stats();
    return !st.empty() && st[0].failures >= 1;
  }));
  double c0 = cpu_seconds();
  std::this_thread::sleep_for(1500ms);
  double used = cpu_seconds() - c0;
  EXPECT_LT(used, 0.3) << "the shipper burned " << used << " CPU-seconds in 1.5 s while its only source was refused";
  auto st = destination_stats();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(st[0].failing);
  EXPECT_EQ(st[0].records, 0u);
}

// ---- "stele_replicated" on the wire ----

Result<const ForwardMessage*> decode(ForwardDecoder& d, std::string_view bytes) {
  d.feed(bytes);
  return d.next();
}

TEST(ShipperReplicatedOption, EncodedFlagIsDecoded) {
  std::vector<OwnedLogEntry> owned{{"t.x", 1700000000LL * 1000000000LL, pack(Json{{"log", "a"}})},
                                   {"t.x", 1700000001LL * 1000000000LL, pack(Json{{"log", "b"}})}};
  std::vector<LogEntry> views;
  for (auto& e : owned) views.push_back(e.view());
  for (bool compress : {false, true}) {
    for (bool replicated : {false, true}) {
      ForwardDecoder d;
      auto m = decode(d, encode_packed_forward("t.x", views, "c1", compress, std::nullopt, replicated));
      ASSERT_TRUE(m) << m.error().message;
      ASSERT_TRUE(*m);
      EXPECT_EQ((*m)->options.replicated, replicated) << "compress=" << compress;
      EXPECT_EQ((*m)->entries.size(), 2u);
      EXPECT_EQ((*m)->options.chunk.value_or(""), "c1");
    }
  }
  // The default (no argument) is not replicated; with a signal it still is carried.
  ForwardDecoder d1;
  auto m1 = decode(d1, encode_packed_forward("t.x", views, "c2", false));
  ASSERT_TRUE(m1 && *m1);
  EXPECT_FALSE((*m1)->options.replicated);
  ForwardDecoder d2;
  auto m2 = decode(d2, encode_packed_forward("t.x", views, "c3", false, 1, true));
  ASSERT_TRUE(m2 && *m2);
  EXPECT_TRUE((*m2)->options.replicated);
  EXPECT_EQ((*m2)->options.fluent_signal, 1);
}

TEST(ShipperReplicatedOption, JsonRequestCarriesTheFlag) {
  ForwardDecoder d;
  auto m = decode(d, R"(["t.j", 1700000000, {"log": "x"}, {"chunk": "j1", "stele_replicated": true}])");
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_TRUE(*m);
  EXPECT_TRUE((*m)->json);
  EXPECT_TRUE((*m)->options.replicated);
  ForwardDecoder d2;
  auto m2 = decode(d2, R"(["t.j", 1700000000, {"log": "x"}, {"chunk": "j2", "stele_replicated": false}])");
  ASSERT_TRUE(m2 && *m2);
  EXPECT_FALSE((*m2)->options.replicated);
}

TEST(ShipperReplicatedOption, NonBooleanIsADecodeErrorNamingTheOption) {
  {
    ForwardDecoder d;
    auto m = decode(d, R"(["t.j", 1700000000, {"log": "x"}, {"stele_replicated": "yes"}])");
    ASSERT_FALSE(m) << "a JSON request with \"stele_replicated\": \"yes\" was accepted";
    EXPECT_NE(m.error().message.find("stele_replicated"), std::string::npos) << m.error().message;
  }
  {
    ForwardDecoder d;
    auto m = decode(d, pack(Json::array({"t.m", 1700000000, Json{{"log", "x"}}, Json{{"stele_replicated", "yes"}}})));
    ASSERT_FALSE(m) << "a msgpack request with \"stele_replicated\": \"yes\" was accepted";
    EXPECT_NE(m.error().message.find("stele_replicated"), std::string::npos) << m.error().message;
  }
  {
    // Also in PackedForward mode (what the shipper sends), an integer 1 is not a boolean.
    std::string entries;
    Json::to_msgpack(Json::array({1700000000, Json{{"log", "a"}}}), entries);
    Json req = Json::array({"t.p", Json::binary(std::vector<uint8_t>(entries.begin(), entries.end())),
                            Json{{"chunk", "p1"}, {"stele_replicated", 1}}});
    ForwardDecoder d;
    auto m = decode(d, pack(req));
    ASSERT_FALSE(m) << "a PackedForward request with \"stele_replicated\": 1 was accepted";
    EXPECT_NE(m.error().message.find("stele_replicated"), std::string::npos) << m.error().message;
  }
}

}  // namespace
}  // namespace stele::logs

