// ForwardClient against a real ForwardServer and LogStore on 127.0.0.1 (acks,
// the shared-key handshake, a server that goes away and comes back, a server
// that never acks), and ForwardRelay, the client's `--forward-to` user: a
// source store relayed into a ForwardServer, retry while the upstream is
// down, and the same chunk resent after a restart.
#include "logs/forward_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "test_support.h"

#include "logs/forward_codec.h"
#include "logs/forward_relay.h"
#include "logs/forward_server.h"
#include "net/tls.h"
#include "net/tls_certs.h"

namespace stele::logs {
namespace {
using test_support::eventually;
using test_support::pack;
namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string packed_request(std::string_view tag, int n, std::string_view chunk) {
  std::vector<OwnedLogEntry> owned;
  for (int i = 0; i < n; ++i)
    owned.push_back({std::string(tag), 1700000000LL * 1000000000LL + i, pack(Json{{"log", "line " + std::to_string(i)}})});
  std::vector<LogEntry> views;
  for (auto& e : owned) views.push_back(e.view());
  return encode_packed_forward(tag, views, chunk, false);
}

// A loopback listener that accepts connections and reads what arrives but
// never answers: a server that stores nothing and acks nothing. Every
// complete request's chunk id and record count is kept.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~SilentServer() {
    done_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // (chunk id, records) of every request received so far.
  std::vector<std::pair<std::string, size_t>> requests() {
    std::lock_guard l(mu_);
    return requests_;
  }

 private:
  void serve() {
    std::vector<std::pair<int, std::unique_ptr<ForwardDecoder>>> conns;
    while (!done_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (auto& [c, d] : conns) fds.push_back({c, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) conns.emplace_back(::accept(fd_, nullptr, nullptr), std::make_unique<ForwardDecoder>());
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        auto& dec = *conns[i - 1].second;
        auto span = dec.prepare(65536);
        ssize_t n = ::recv(fds[i].fd, span.data(), span.size(), 0);
        dec.commit(n > 0 ? static_cast<size_t>(n) : 0);
        for (auto m = dec.next(); m && *m; m = dec.next()) {
          std::lock_guard l(mu_);
          requests_.emplace_back(std::string((*m)->options.chunk.value_or("")), (*m)->entries.size());
        }
      }
    }
    for (auto& [c, d] : conns) ::close(c);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::vector<std::pair<std::string, size_t>> requests_;
  std::thread thread_;
};

// One io thread for clients, servers and relays; stores in a temp dir.
class ForwardClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stele-fwdc-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    store_ = open_store("upstream");
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    on_io([this] {
      relay_.reset();
      server_.reset();
    });
    work_.reset();
    io_.stop();
    thread_.join();
    store_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<LogStore> open_store(const std::string& name) {
    auto s = std::make_unique<LogStore>((dir_ / name).string(), LogStoreOptions{});
    EXPECT_TRUE(s->open());
    return s;
  }

  // Runs fn on the io thread and waits for it.
  void on_io(std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().get();
  }

  // Runs a coroutine on the io thread and waits for its result.
  Result<void> run(std::function<net::awaitable<Result<void>>()> make) {
    std::promise<Result<void>> p;
    on_io([&] {
      auto aw = make();
      asio::co_spawn(io_, std::move(aw), [&p](std::exception_ptr e, Result<void> r) {
        p.set_value(e ? Result<void>(fail("exception in the coroutine")) : std::move(r));
      });
    });
    return p.get_future().get();
  }

  Result<void> send(ForwardClient& c, const std::string& request, const std::string& chunk) {
    return run([&]() { return c.send(request, chunk); });
  }

  // (Re)starts the upstream ForwardServer on `port` (0: any) into store_.
  std::string start_server(uint16_t port = 0, std::string shared_key = {}) {
    std::string bound;
    on_io([&] {
      server_.reset();
      ForwardServerOptions o;
      o.listen = "127.0.0.1:" + std::to_string(port);
      o.shared_key = shared_key;
      o.self_hostname = "upstream";
      server_ = std::make_unique<ForwardServer>(io_, *store_, o);
      auto b = server_->start();
      ASSERT_TRUE(b) << b.error().message;
      bound = *b;
    });
    return bound;
  }
  void stop_server() {
    on_io([this] { server_.reset(); });
  }
  ForwardServer::Stats server_stats() {
    ForwardServer::Stats s;
    on_io([&] { s = server_->stats(); });
    return s;
  }

  std::vector<LogResult> stored(LogStore& s, const std::string& tag = {}) {
    LogQuery q;
    q.tag = tag;
    q.after = 0;
    q.limit = 100000;
    auto r = s.query(q);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::vector<LogResult>{};
  }

  std::unique_ptr<ForwardClient> client(const std::string& address, std::string shared_key = {}) {
    ForwardClientOptions o;
    o.address = address;
    o.shared_key = std::move(shared_key);
    o.self_hostname = "test-client";
    o.connect_timeout = 2s;
    o.ack_timeout = 2s;
    return std::make_unique<ForwardClient>(io_.get_executor(), o);
  }

  fs::path dir_;
  std::unique_ptr<LogStore> store_;  // the upstream's
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<ForwardServer> server_;
  std::unique_ptr<ForwardRelay> relay_;
  std::thread thread_;
};

// ---- ForwardClient ----

TEST_F(ForwardClientTest, SendsOnOneConnectionAndReturnsOnceAcked) {
  std::string addr = start_server();
  auto c = client(addr);
  ASSERT_TRUE(send(*c, packed_request("t.a", 3, "c1"), "c1"));
  // Acked = durable: the records are queryable when send() returns.
  EXPECT_EQ(stored(*store_, "t.a").size(), 3u);
  ASSERT_TRUE(send(*c, packed_request("t.b", 2, "c2"), "c2"));
  EXPECT_EQ(stored(*store_, "t.b").size(), 2u);
  EXPECT_TRUE(c->connected());
  EXPECT_EQ(server_stats().connections, 1u);
}

TEST_F(ForwardClientTest, SharedKeyHandshake) {
  std::string addr = start_server(0, "s3cret");
  auto good = client(addr, "s3cret");
  auto r = send(*good, packed_request("t.key", 2, "k1"), "k1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(stored(*store_, "t.key").size(), 2u);

  auto wrong = client(addr, "guess");
  r = send(*wrong, packed_request("t.intruder", 2, "k2"), "k2");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(addr), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("shared_key mismatch"), std::string::npos) << r.error().message;
  EXPECT_FALSE(wrong->connected());

  auto none = client(addr);  // no key configured: the server's HELO is the error
  r = send(*none, packed_request("t.intruder", 2, "k3"), "k3");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("HELO"), std::string::npos) << r.error().message;
  EXPECT_EQ(stored(*store_, "t.intruder").size(), 0u);
}

TEST_F(ForwardClientTest, ServerGoneThenBackResentChunkIsStoredOnce) {
  std::string addr = start_server();
  uint16_t port = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
  auto c = client(addr);
  std::string a = packed_request("t.a", 4, "A"), b = packed_request("t.b", 3, "B");
  ASSERT_TRUE(send(*c, a, "A"));
  stop_server();
  auto r = send(*c, b, "B");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(addr), std::string::npos) << r.error().message;
  EXPECT_FALSE(c->connected());

  start_server(port);
  ASSERT_TRUE(send(*c, b, "B"));
  ASSERT_TRUE(send(*c, a, "A"));  // as if A's ack had been lost: acked again, not stored again
  EXPECT_EQ(stored(*store_, "t.a").size(), 4u);
  EXPECT_EQ(stored(*store_, "t.b").size(), 3u);
  EXPECT_EQ(server_stats().duplicates, 4u);
}

TEST_F(ForwardClientTest, NoAckWithinTheTimeoutIsAnError) {
  SilentServer silent;
  auto c = client(silent.address());
  auto r = send(*c, packed_request("t.x", 1, "X"), "X");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("timed out after 2000 ms waiting for the ack"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(c->connected());
}

// --forward-tls: a TLS input (the shared-key handshake inside it) and a TLS
// client verifying it with the cluster CA; one kept connection for several
// sends; a plain client or another CA gets nothing stored.
TEST_F(ForwardClientTest, TlsInputVerifiedWithTheClusterCa) {
  std::string certs = (dir_ / "certs").string(), other = (dir_ / "other").string();
  ASSERT_TRUE(net::make_cluster_ca(certs, 1, false));
  ASSERT_TRUE(net::make_cluster_ca(other, 1, false));
  auto node = net::make_node_certificate(certs, {"fwd", {"127.0.0.1"}, {}, 1});
  ASSERT_TRUE(node);
  auto ctx = net::make_server_context(node->cert, node->key);
  ASSERT_TRUE(ctx) << ctx.error().message;
  std::string addr;
  on_io([&] {
    ForwardServerOptions o;
    o.listen = "127.0.0.1:0";
    o.shared_key = "s3cret";
    o.tls = *ctx;
    server_ = std::make_unique<ForwardServer>(io_, *store_, o);
    auto b = server_->start();
    ASSERT_TRUE(b) << b.error().message;
    addr = *b;
  });
  auto tls_client = [&](bool tls) {
    ForwardClientOptions o;
    o.address = addr;
    o.shared_key = "s3cret";
    o.tls = tls;
    o.connect_timeout = 2s;
    o.ack_timeout = 2s;
    return std::make_unique<ForwardClient>(io_.get_executor(), o);
  };
  net::set_client_ca_file(certs + "/ca.crt");
  auto c = tls_client(true);
  for (const char* chunk : {"t1", "t2", "t3"}) {
    auto r = send(*c, packed_request("t.tls", 2, chunk), chunk);
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(stored(*store_, "t.tls").size(), 6u);
  EXPECT_EQ(server_stats().connections, 1u);  // kept across sends

  auto plain = tls_client(false);
  EXPECT_FALSE(send(*plain, packed_request("t.plain", 1, "p1"), "p1"));
  net::set_client_ca_file(other + "/ca.crt");
  auto wrong = tls_client(true);
  auto r = send(*wrong, packed_request("t.wrong", 1, "w1"), "w1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(addr), std::string::npos) << r.error().message;
  EXPECT_EQ(stored(*store_, "t.plain").size() + stored(*store_, "t.wrong").size(), 0u);
  net::set_client_ca_file("");
}

TEST_F(ForwardClientTest, RefusedConnectionNamesTheAddress) {
  auto c = client("127.0.0.1:1");  // nobody listens on tcpmux
  auto r = send(*c, packed_request("t.x", 1, "X"), "X");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "forward to 127.0.0.1:1: cannot connect: Connection refused");
}

// ---- ForwardRelay ----

class ForwardRelayTest : public ForwardClientTest {
 protected:
  void SetUp() override {
    ForwardClientTest::SetUp();
    source_ = open_store("source");
    cursor_ = (dir_ / "forward-to.cursor").string();
  }
  void TearDown() override {
    ForwardClientTest::TearDown();
    source_.reset();
  }

  void append(const std::string& tag, int from, int n) {
    std::vector<OwnedLogEntry> owned;
    for (int i = from; i < from + n; ++i)
      owned.push_back({tag, 1700000000LL * 1000000000LL + i * 1000 + 7,
                       pack(Json{{"log", tag + " " + std::to_string(i)}, {"i", i}, {"ok", true}})});
    std::vector<LogEntry> views;
    for (auto& e : owned) views.push_back(e.view());
    ASSERT_TRUE(source_->append(views));
  }

  void start_relay(const std::string& address) {
    on_io([&] {
      ForwardRelayOptions o;
      o.client.address = address;
      o.client.ack_timeout = 500ms;
      o.cursor_path = cursor_;
      o.batch_records = 4;  // several rounds even with few records
      o.poll_interval = 20ms;
      o.retry_initial = 20ms;
      o.retry_max = 100ms;
      relay_ = std::make_unique<ForwardRelay>(io_, *source_, o);
      auto r = relay_->start();
      ASSERT_TRUE(r) << r.error().message;
    });
  }
  void stop_relay() {
    on_io([this] { relay_.reset(); });
  }
  ForwardRelay::Stats relay_stats() {
    ForwardRelay::Stats s;
    on_io([&] { s = relay_->stats(); });
    return s;
  }
  std::string cursor_file() {
    std::ifstream in(cursor_);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  std::unique_ptr<LogStore> source_;
  std::string cursor_;
};

TEST_F(ForwardRelayTest, RelaysEveryRecordInOrderThenOnlyNewOnesAfterARestart) {
  append("app.a", 0, 3);
  append("app.b", 0, 2);
  append("app.a", 3, 6);
  std::string addr = start_server();
  start_relay(addr);
  ASSERT_TRUE(eventually([&] { return stored(*store_).size() == 11; })) << stored(*store_).size();
  auto src = stored(*source_), up = stored(*store_);
  for (size_t i = 0; i < src.size(); ++i) {
    EXPECT_EQ(up[i].tag, src[i].tag);
    EXPECT_EQ(up[i].time_ns, src[i].time_ns);
    EXPECT_EQ(up[i].record, src[i].record);
  }
  // Caught up, a new record is relayed as it arrives.
  append("app.b", 2, 1);
  ASSERT_TRUE(eventually([&] { return stored(*store_, "app.b").size() == 3; }));
  ASSERT_TRUE(eventually([&] { return relay_stats().acked_seq == 12; }));
  stop_relay();
  EXPECT_NE(cursor_file().find(" acked=12 inflight=0\n"), std::string::npos) << cursor_file();

  append("app.c", 0, 2);
  start_relay(addr);
  ASSERT_TRUE(eventually([&] { return relay_stats().acked_seq == 14; }));
  EXPECT_EQ(relay_stats().records, 2u);  // nothing before the cursor was sent again
  EXPECT_EQ(server_stats().duplicates, 0u);
  EXPECT_EQ(stored(*store_).size(), 14u);
}

TEST_F(ForwardRelayTest, RetriesUntilTheUpstreamIsThere) {
  std::string addr = start_server();
  uint16_t port = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
  stop_server();
  append("app.a", 0, 5);
  start_relay(addr);
  ASSERT_TRUE(eventually([&] { return relay_stats().failed_attempts >= 3; }));
  EXPECT_FALSE(relay_stats().delivering);
  start_server(port);
  ASSERT_TRUE(eventually([&] { return stored(*store_).size() == 5; }));
  EXPECT_TRUE(relay_stats().delivering);
}

TEST_F(ForwardRelayTest, TheChunkInFlightIsResentUnchangedAfterARestart) {
  append("app.a", 0, 3);
  SilentServer silent;  // takes the chunk, never acks it
  start_relay(silent.address());
  ASSERT_TRUE(eventually([&] { return !silent.requests().empty(); }));
  stop_relay();
  auto first = silent.requests().front();
  EXPECT_EQ(first.second, 3u);
  EXPECT_NE(cursor_file().find("acked=0 inflight=3"), std::string::npos) << cursor_file();

  append("app.a", 3, 1);  // the same tag continues: a fresh read would make one chunk of 4
  std::string addr = start_server();
  start_relay(addr);
  ASSERT_TRUE(eventually([&] { return stored(*store_).size() == 4; }));
  EXPECT_EQ(server_stats().requests, 2u);  // [1..3] as before, then [4]

  // A relay restarted with the same cursor sends the same chunk id.
  stop_relay();
  SilentServer again;
  std::string id = cursor_file().substr(0, cursor_file().find(" acked="));
  std::ofstream(cursor_) << id << " acked=0 inflight=3\n";
  start_relay(again.address());
  ASSERT_TRUE(eventually([&] { return !again.requests().empty(); }));
  EXPECT_EQ(again.requests().front(), first);
}

TEST_F(ForwardRelayTest, CorruptCursorFileIsAnError) {
  std::ofstream(cursor_) << "garbage\n";
  on_io([&] {
    ForwardRelayOptions o;
    o.client.address = "127.0.0.1:1";
    o.cursor_path = cursor_;
    relay_ = std::make_unique<ForwardRelay>(io_, *source_, o);
    auto r = relay_->start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(cursor_), std::string::npos) << r.error().message;
  });
}

}  // namespace
}  // namespace stele::logs
