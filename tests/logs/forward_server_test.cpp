// ForwardServer over real loopback sockets into a real LogStore in a temp dir:
// acks only after the records are queryable, split writes, dedup of resent
// chunks, per-connection failure, the shared-key handshake, signals and the
// UDP heartbeat.
#include "logs/forward_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.h"

#include "logs/forward_codec.h"

namespace stele::logs {
namespace {
using test_support::eventually;
using test_support::pack;
namespace fs = std::filesystem;
namespace asio = boost::asio;

// Message mode, hand-built: [tag, time(uint32), record, {"chunk": id}?].
std::string message_request(std::string_view tag, uint32_t secs, const Json& rec, std::string_view chunk = {}) {
  Json req = Json::array({std::string(tag), secs, rec});
  if (!chunk.empty()) req.push_back(Json{{"chunk", std::string(chunk)}});
  return pack(req);
}

std::string packed_request(std::string_view tag, int n, std::string_view chunk, bool gzip = false,
                           std::optional<int64_t> signal = std::nullopt) {
  std::vector<OwnedLogEntry> owned;
  for (int i = 0; i < n; ++i)
    owned.push_back({std::string(tag), 1700000000LL * 1000000000LL + i, pack(Json{{"log", "line " + std::to_string(i)}, {"n", i}})});
  std::vector<LogEntry> views;
  for (auto& e : owned) views.push_back(e.view());
  return encode_packed_forward(tag, views, chunk, gzip, signal);
}

// A blocking loopback client (POSIX sockets, receive timeout).
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~Client() { ::close(fd_); }
  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Next decoded server message (ack, HELO, PONG); nullopt on EOF/timeout.
  std::optional<ForwardMessage> next(int timeout_ms = 5000) {
    for (;;) {
      auto m = dec_.next();
      if (!m) return std::nullopt;
      if (*m) return **m;
      if (!read(timeout_ms)) return std::nullopt;
    }
  }
  // Raw bytes until `n` arrived or EOF/timeout (JSON acks).
  std::string raw(size_t n, int timeout_ms = 5000) {
    std::string out;
    char buf[4096];
    while (out.size() < n && wait(timeout_ms)) {
      ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  // True when the server closed the connection (EOF) without sending more.
  bool closed_silently(int timeout_ms = 5000) {
    if (!wait(timeout_ms)) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  bool wait(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
  }
  bool read(int timeout_ms) {
    if (!wait(timeout_ms)) return false;
    auto span = dec_.prepare(4096);
    ssize_t r = ::recv(fd_, span.data(), span.size(), 0);
    if (r <= 0) return false;
    dec_.commit(static_cast<size_t>(r));
    return true;
  }
  int fd_ = -1;
  ForwardDecoder dec_;
};

class ForwardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stele-fwd-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    store_ = std::make_unique<LogStore>(dir_.string(), LogStoreOptions{});
    ASSERT_TRUE(store_->open());
  }
  void TearDown() override {
    if (thread_.joinable()) {
      asio::post(io_, [this] { server_->stop(); });
      work_.reset();
      io_.stop();
      thread_.join();
    }
    server_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  void start(ForwardServerOptions o = {}) {
    o.listen = "127.0.0.1:0";
    server_ = std::make_unique<ForwardServer>(io_, *store_, std::move(o));
    auto b = server_->start();
    ASSERT_TRUE(b) << b.error().message;
    port_ = static_cast<uint16_t>(std::stoi(b->substr(b->rfind(':') + 1)));
    thread_ = std::thread([this] { io_.run(); });
  }
  size_t stored(const std::string& tag) {
    LogQuery q;
    q.tag = tag;
    auto r = store_->query(q);
    EXPECT_TRUE(r);
    return r ? r->size() : 0;
  }

  fs::path dir_;
  std::unique_ptr<LogStore> store_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<ForwardServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_F(ForwardServerTest, PackedForwardSplitAnywhereIsStoredBeforeItsAck) {
  start();
  Client c(port_);
  std::string req = packed_request("ext.app", 50, "chunk-1", /*gzip=*/true);
  // Partial writes: the request arrives in three pieces with pauses between.
  c.send(req.substr(0, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  c.send(req.substr(1, req.size() / 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  c.send(req.substr(1 + req.size() / 2));
  auto ack = c.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->kind, ForwardKind::kAck);
  EXPECT_EQ(ack->ack, "chunk-1");
  // Acked = durable: every record is visible the moment the ack arrived.
  EXPECT_EQ(stored("ext.app"), 50u);
}

TEST_F(ForwardServerTest, MessageWithoutTimeGetsTheTimeOfReceipt) {
  start();
  Client c(port_);
  auto before = std::chrono::system_clock::now();
  c.send(message_request("ext.t", 0, Json{{"log", "no time"}}, "m1"));
  auto ack = c.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack, "m1");
  LogQuery q;
  q.tag = "ext.t";
  auto r = store_->query(q);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  int64_t t0 = std::chrono::duration_cast<std::chrono::nanoseconds>(before.time_since_epoch()).count();
  EXPECT_GE((*r)[0].time_ns, t0);
  EXPECT_EQ((*r)[0].record["log"], "no time");
}

TEST_F(ForwardServerTest, SeveralRequestsInOneWriteAreEachAckedInOrder) {
  start();
  Client c(port_);
  c.send(message_request("ext.p", 1700000000, Json{{"log", "a"}}, "p1") +
         packed_request("ext.p", 3, "p2") + message_request("ext.p", 1700000001, Json{{"log", "b"}}) +
         message_request("ext.p", 1700000002, Json{{"log", "c"}}, "p3"));
  for (const char* id : {"p1", "p2", "p3"}) {
    auto ack = c.next();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->ack, id);
  }
  EXPECT_EQ(stored("ext.p"), 6u);
}

TEST_F(ForwardServerTest, ResentChunkIsStoredOnceAndAckedAgain) {
  start();
  std::string req = packed_request("ext.dup", 10, "same-chunk");
  {
    Client c(port_);
    c.send(req);
    ASSERT_TRUE(c.next());
  }
  Client again(port_);  // a sender that lost the first ack resends on a new connection
  again.send(req);
  auto ack = again.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack, "same-chunk");
  EXPECT_EQ(stored("ext.dup"), 10u);
}

TEST_F(ForwardServerTest, MalformedRequestClosesOnlyItsConnection) {
  start();
  Client good(port_);
  Client bad(port_);
  bad.send(std::string("\x94\xa3" "tag\xc1", 6));  // 0xc1 is never valid msgpack
  EXPECT_TRUE(bad.closed_silently());
  good.send(packed_request("ext.good", 2, "g1"));
  auto ack = good.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack, "g1");
  EXPECT_EQ(stored("ext.good"), 2u);
}

TEST_F(ForwardServerTest, RefusedAppendIsNeverAcked) {
  start();
  Client c(port_);
  c.send(packed_request("ext.refused", 2, std::string(2000, 'x')));  // the store refuses chunk ids > 1024
  EXPECT_TRUE(c.closed_silently());
  EXPECT_EQ(stored("ext.refused"), 0u);
}

TEST_F(ForwardServerTest, SignalWithoutSinkIsClosedUnacked) {
  start();
  Client c(port_);
  c.send(packed_request("metrics", 2, "s1", false, 1));
  EXPECT_TRUE(c.closed_silently());
  EXPECT_EQ(stored("metrics"), 0u);
}

TEST_F(ForwardServerTest, SignalGoesToTheSinkAndIsAcked) {
  std::promise<size_t> got;
  ForwardServerOptions o;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<bool> durable{false};
  o.signal_sink = [&](const ForwardMessage& m) -> Result<std::function<Result<void>()>> {
    got.set_value(m.entries.size());
    return std::function<Result<void>()>([&, gate]() -> Result<void> {
      gate.wait();
      durable = true;
      return {};
    });
  };
  start(std::move(o));
  Client c(port_);
  c.send(packed_request("metrics", 4, "s2", false, 1));
  EXPECT_EQ(got.get_future().get(), 4u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(durable);  // the ack waits for the sink's durability
  release.set_value();
  auto ack = c.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack, "s2");
  EXPECT_TRUE(durable);
  EXPECT_EQ(stored("metrics"), 0u);  // signals are the sink's, not the log store's
}

TEST_F(ForwardServerTest, SignalWhoseStoreFailsIsNotAcked) {
  ForwardServerOptions o;
  o.signal_sink = [](const ForwardMessage&) -> Result<std::function<Result<void>()>> {
    return std::function<Result<void>()>([]() -> Result<void> { return fail("disk full"); });
  };
  start(std::move(o));
  Client c(port_);
  c.send(packed_request("metrics", 2, "s3", false, 1));
  EXPECT_TRUE(c.closed_silently());
}

TEST_F(ForwardServerTest, JsonRequestGetsJsonAck) {
  start();
  Client c(port_);
  c.send(R"(["ext.json", 1700000000, {"log": "from json"}, {"chunk": "j1"}])");
  std::string want = encode_ack_json("j1");
  EXPECT_EQ(c.raw(want.size()), want);
  EXPECT_EQ(stored("ext.json"), 1u);
}

// Group commit: requests of several connections that wait while the disk is
// busy are stored together, one fdatasync for all of them.
TEST_F(ForwardServerTest, ConcurrentConnectionsShareOneGroupCommit) {
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::atomic<int> syncs{0};
  LogStoreOptions slow;  // a slow disk: the first group's sync waits for `go`
  slow.before_wal_sync_for_test = [&] {
    if (syncs.fetch_add(1) == 0) gate.wait();
  };
  store_.reset();
  fs::remove_all(dir_);
  store_ = std::make_unique<LogStore>(dir_.string(), slow);
  ASSERT_TRUE(store_->open());
  start();
  Client first(port_);
  first.send(packed_request("ext.g", 10, "g0"));
  for (int i = 0; i < 500 && syncs.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(syncs.load(), 1);
  std::vector<std::unique_ptr<Client>> others;
  for (int i = 1; i <= 4; ++i) {
    others.push_back(std::make_unique<Client>(port_));
    others.back()->send(packed_request("ext.g", 10, "g" + std::to_string(i)));
  }
  // Until the server has decoded all five (handed to the writer in the same step).
  auto requests = [this] {
    std::promise<uint64_t> p;
    asio::post(io_, [&] { p.set_value(server_->stats().requests); });
    return p.get_future().get();
  };
  for (int i = 0; i < 500 && requests() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(requests(), 5u);
  go.set_value();
  auto ack = first.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack, "g0");
  for (int i = 1; i <= 4; ++i) {
    auto a = others[i - 1]->next();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ack, "g" + std::to_string(i));
  }
  auto st = store_->stats();
  EXPECT_EQ(st.appends, 5u);
  EXPECT_EQ(st.batches, 2u);    // g0 alone, then g1-g4 together
  EXPECT_EQ(st.wal_syncs, 2u);  // one stream: one fdatasync per group
  EXPECT_EQ(stored("ext.g"), 50u);
}

// A connection decodes ahead while its requests are stored; a bad request
// behind good ones closes it only after the good ones are acked.
TEST_F(ForwardServerTest, RequestsBeforeAMalformedOneAreAckedFirst) {
  start();
  Client c(port_);
  c.send(packed_request("ext.m", 5, "ok1") + packed_request("ext.m", 5, "ok2") +
         std::string("\x94\xa3" "tag\xc1", 6));
  for (const char* id : {"ok1", "ok2"}) {
    auto ack = c.next();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->ack, id);
  }
  EXPECT_TRUE(c.closed_silently());
  EXPECT_EQ(stored("ext.m"), 10u);
}

class ForwardHandshakeTest : public ForwardServerTest {
 protected:
  void SetUp() override {
    ForwardServerTest::SetUp();
    ForwardServerOptions o;
    o.shared_key = "s3cret";
    o.self_hostname = "stele-test";
    start(std::move(o));
  }
};

TEST_F(ForwardHandshakeTest, RightKeyIsAcceptedThenEventsFlow) {
  Client c(port_);
  auto helo = c.next();
  ASSERT_TRUE(helo);
  ASSERT_EQ(helo->kind, ForwardKind::kHelo);
  std::string nonce(helo->helo.nonce);
  Helo h = helo->helo;
  h.nonce = nonce;
  c.send(encode_ping("client-host", "salty", h, "s3cret"));
  auto pong = c.next();
  ASSERT_TRUE(pong);
  ASSERT_EQ(pong->kind, ForwardKind::kPong);
  EXPECT_TRUE(pong->pong.auth_ok) << pong->pong.reason;
  EXPECT_EQ(pong->pong.server_hostname, "stele-test");
  EXPECT_TRUE(verify_pong(pong->pong, "salty", nonce, "s3cret"));
  c.send(packed_request("ext.auth", 3, "a1"));
  auto ack = c.next();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack, "a1");
  EXPECT_EQ(stored("ext.auth"), 3u);
}

TEST_F(ForwardHandshakeTest, WrongKeyIsRefused) {
  Client c(port_);
  auto helo = c.next();
  ASSERT_TRUE(helo);
  std::string nonce(helo->helo.nonce);
  Helo h = helo->helo;
  h.nonce = nonce;
  c.send(encode_ping("client-host", "salty", h, "wrong"));
  auto pong = c.next();
  ASSERT_TRUE(pong);
  EXPECT_FALSE(pong->pong.auth_ok);
  EXPECT_FALSE(pong->pong.reason.empty());
  c.send(packed_request("ext.noauth", 1, "n1"));
  EXPECT_FALSE(c.next(2000));  // closed, never acked
  EXPECT_EQ(stored("ext.noauth"), 0u);
}

TEST_F(ForwardHandshakeTest, EventsBeforePingAreRefused) {
  Client c(port_);
  ASSERT_TRUE(c.next());  // HELO
  c.send(packed_request("ext.early", 1, "e1"));
  EXPECT_TRUE(c.closed_silently());
  EXPECT_EQ(stored("ext.early"), 0u);
}

TEST_F(ForwardServerTest, UdpHeartbeatIsAnswered) {
  start();
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::send(fd, "", 0, 0), 0);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char buf[16];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  ASSERT_EQ(n, 1);
  EXPECT_EQ(buf[0], 0);
}

TEST_F(ForwardServerTest, BindFailureNamesTheFlag) {
  start();
  ForwardServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port_);
  ForwardServer second(io_, *store_, o);
  auto r = second.start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--forward-listen"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace stele::logs
