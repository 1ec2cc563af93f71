// The proxy end to end over real sockets on 127.0.0.1: threaded backends
// (harness.h) behind a Proxy on its own io thread.
#include "router/proxy.h"

#include <gtest/gtest.h>

#include <set>

#include "harness.h"

namespace stele::router::test {
namespace {

// One app "/web" on host web.localhost with the given instances.
RouteTable web_table(uint64_t version, std::vector<Instance> instances, Balance b = Balance::kRoundRobin) {
  return make_table(version, {route("web.localhost", "/", "/web", b)}, {{"/web", std::move(instances)}});
}

TEST(Proxy, RoutesTwoHostsToTwoBackends) {
  Backend a("app-a"), b("app-b");
  ProxyHarness h;
  h.set_table(make_table(1, {route("a.localhost", "/", "/a"), route("b.localhost", "/", "/b")},
                         {{"/a", {instance("a-r1.0.0", a.port)}}, {"/b", {instance("b-r1.0.0", b.port)}}}));
  EXPECT_EQ(fetch(h.port, get("a.localhost", "/")).body, "app-a");
  EXPECT_EQ(fetch(h.port, get("B.LOCALHOST:7080", "/")).body, "app-b");
  EXPECT_EQ(a.requests().size(), 1u);
  EXPECT_EQ(b.requests().size(), 1u);
}

TEST(Proxy, LongestPathPrefixWins) {
  Backend site("site"), api("api");
  ProxyHarness h;
  h.set_table(make_table(1, {route("web.localhost", "/", "/site"), route("web.localhost", "/api", "/api")},
                         {{"/site", {instance("s", site.port)}}, {"/api", {instance("a", api.port)}}}));
  EXPECT_EQ(fetch(h.port, get("web.localhost", "/api/users?x=1")).body, "api");
  EXPECT_EQ(fetch(h.port, get("web.localhost", "/apiary")).body, "site");
  EXPECT_EQ(fetch(h.port, get("web.localhost", "/")).body, "site");
  EXPECT_EQ(api.last().target, "/api/users?x=1");  // the path is forwarded unchanged
}

TEST(Proxy, RoundRobinSpreadsRequests) {
  Backend a("a"), b("b"), c("c");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("a", a.port), instance("b", b.port), instance("c", c.port)}));
  std::map<std::string, int> seen;
  for (int i = 0; i < 30; ++i) seen[fetch(h.port, get("web.localhost", "/")).body]++;
  EXPECT_EQ(seen["a"], 10);
  EXPECT_EQ(seen["b"], 10);
  EXPECT_EQ(seen["c"], 10);
}

TEST(Proxy, LeastConnectionsAvoidsTheBusyInstance) {
  auto slow_on = [](std::string name) {
    return [name](const Message& m) {
      Reply r{ok_response(name)};
      if (m.target == "/slow") r.delay = 800ms;
      return r;
    };
  };
  Backend a("a", slow_on("a")), b("b", slow_on("b"));
  ProxyOptions o = fast_options();
  o.response_timeout = 3s;
  ProxyHarness h(o);
  h.set_table(web_table(1, {instance("a", a.port), instance("b", b.port)}, Balance::kLeastConn));
  auto slow = std::async(std::launch::async, [&] { return fetch(h.port, get("web.localhost", "/slow")).body; });
  while (a.active + b.active == 0) std::this_thread::sleep_for(1ms);
  std::string busy = a.active ? "a" : "b";
  EXPECT_EQ(h.on_io([&] { return h.proxy.in_flight_for_task(busy); }), 1u);
  for (int i = 0; i < 4; ++i) EXPECT_NE(fetch(h.port, get("web.localhost", "/quick")).body, busy);
  EXPECT_EQ(slow.get(), busy);
  // The count drops once the proxy has finished the exchange, just after the
  // client has its response.
  size_t left = 1;
  for (int i = 0; i < 200 && left; ++i) {
    left = h.on_io([&] { return h.proxy.in_flight_for_task(busy); });
    if (left) std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(left, 0u);
}

TEST(Proxy, UpstreamConnectionsAreKeptAliveAndReused) {
  Backend a("a");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("a", a.port)}));
  int fd = connect_to(h.port);
  std::string buf;
  for (int i = 0; i < 5; ++i) {
    send_all(fd, get("web.localhost", "/k"));
    EXPECT_EQ(read_response(fd, buf).body, "a");
  }
  ::close(fd);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fetch(h.port, get("web.localhost", "/k")).body, "a");
  EXPECT_EQ(a.accepts.load(), 1);
  auto stats = h.on_io([&] { return h.proxy.stats(); });
  EXPECT_EQ(stats.upstream_connects, 1u);
  EXPECT_EQ(stats.upstream_reuses, 9u);
}

TEST(Proxy, ChunkedBodiesStreamBothWaysUnchanged) {
  std::string big;
  for (int i = 0; i < 300'000; ++i) big += static_cast<char>('a' + i % 26);
  Backend echo("echo", [](const Message& m) {
    // Answers the received payload reversed, in chunks of 1000.
    std::string rev(m.body.rbegin(), m.body.rend());
    std::string raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t at = 0; at < rev.size(); at += 1000) {
      std::string part = rev.substr(at, 1000);
      char len[16];
      snprintf(len, sizeof len, "%zx\r\n", part.size());
      raw += len + part + "\r\n";
    }
    return Reply{raw + "0\r\n\r\n"};
  });
  ProxyHarness h;
  h.set_table(web_table(1, {instance("e", echo.port)}));
  std::string req = "POST /up HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t at = 0; at < big.size(); at += 7000) {
    std::string part = big.substr(at, 7000);
    char len[16];
    snprintf(len, sizeof len, "%zx;x=y\r\n", part.size());
    req += len + part + "\r\n";
  }
  req += "0\r\nX-Sum: 1\r\n\r\n";
  Message m = fetch(h.port, req);
  ASSERT_TRUE(m.ok);
  EXPECT_TRUE(m.chunked);
  EXPECT_EQ(m.body, std::string(big.rbegin(), big.rend()));
  EXPECT_EQ(echo.last().body, big);
  EXPECT_EQ(echo.last().header("transfer-encoding"), "chunked");
}

TEST(Proxy, ContentLengthBodyIsStreamed) {
  std::string big(2 << 20, 'z');
  Backend sink("sink", [](const Message& m) { return Reply{ok_response(std::to_string(m.body.size()))}; });
  ProxyHarness h;
  h.set_table(web_table(1, {instance("s", sink.port)}));
  std::string req = "PUT /f HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n";
  EXPECT_EQ(fetch(h.port, req + big).body, std::to_string(big.size()));
}

TEST(Proxy, Http10ClientsGetDelimitedResponsesAndCloses) {
  Backend b("b", [](const Message& m) {
    if (m.target == "/eof") return Reply{"HTTP/1.0 200 OK\r\n\r\nuntil-close", Reply::Mode::kNormal, 0ms, true};
    return Reply{ok_response("ten")};
  });
  ProxyHarness h;
  h.set_table(web_table(1, {instance("b", b.port)}));
  // No keep-alive: the response is length-delimited and the connection ends.
  int fd = connect_to(h.port);
  send_all(fd, "GET /x HTTP/1.0\r\nHost: web.localhost\r\n\r\n");
  std::string buf;
  Message m = read_response(fd, buf);
  EXPECT_EQ(m.body, "ten");
  EXPECT_EQ(m.header("connection"), "close");
  EXPECT_FALSE(fill(fd, buf));  // closed
  ::close(fd);
  EXPECT_EQ(b.last().minor, 0);
  // Keep-alive 1.0: two requests on one connection.
  fd = connect_to(h.port);
  for (int i = 0; i < 2; ++i) {
    send_all(fd, "GET /x HTTP/1.0\r\nHost: web.localhost\r\nConnection: keep-alive\r\n\r\n");
    m = read_response(fd, buf);
    EXPECT_EQ(m.body, "ten");
    EXPECT_EQ(m.header("connection"), "keep-alive");
  }
  ::close(fd);
  // A close-delimited upstream response reaches the client close-delimited.
  m = fetch(h.port, "GET /eof HTTP/1.0\r\nHost: web.localhost\r\n\r\n");
  EXPECT_EQ(m.body, "until-close");
}

TEST(Proxy, PipelinedRequestsAreAnsweredInOrder) {
  Backend b("b", [](const Message& m) {
    Reply r{ok_response("answer" + m.target)};
    if (m.target == "/1") r.delay = 150ms;
    return r;
  });
  ProxyHarness h;
  h.set_table(web_table(1, {instance("b", b.port)}));
  int fd = connect_to(h.port);
  send_all(fd, get("web.localhost", "/1") + "POST /2 HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 3\r\n\r\nabc" +
                   get("web.localhost", "/3"));
  std::string buf;
  EXPECT_EQ(read_response(fd, buf).body, "answer/1");
  EXPECT_EQ(read_response(fd, buf).body, "answer/2");
  EXPECT_EQ(read_response(fd, buf).body, "answer/3");
  ::close(fd);
  EXPECT_EQ(b.requests()[1].body, "abc");
}

TEST(Proxy, UpgradeIsSplicedBothWays) {
  Backend ws("ws", [](const Message& m) {
    EXPECT_EQ(m.header("upgrade"), "websocket");
    EXPECT_EQ(m.header("connection"), "upgrade");
    return Reply{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                 Reply::Mode::kUpgradeEcho};
  });
  ProxyHarness h;
  h.set_table(web_table(1, {instance("w", ws.port)}));
  int fd = connect_to(h.port);
  send_all(fd, get("web.localhost", "/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n"));
  std::string buf;
  Message m = read_response(fd, buf, true);
  EXPECT_EQ(m.status, 101);
  EXPECT_EQ(m.header("upgrade"), "websocket");
  for (std::string msg : std::vector<std::string>{"hello", "second frame", std::string(100000, 'w')}) {
    send_all(fd, msg);
    while (buf.size() < msg.size() && fill(fd, buf)) {
    }
    EXPECT_EQ(buf, msg);
    buf.clear();
  }
  ::close(fd);
}

TEST(Proxy, OversizedHeadGets431) {
  Backend b("b");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("b", b.port)}));
  Message m = fetch(h.port, get("web.localhost", "/", "X-Big: " + std::string(64 * 1024, 'x') + "\r\n"));
  EXPECT_EQ(m.status, 431);
  EXPECT_EQ(b.requests().size(), 0u);
}

TEST(Proxy, OversizedBodiesGet413) {
  Backend b("b");
  ProxyOptions o = fast_options();
  o.max_body_bytes = 1000;
  ProxyHarness h(o);
  h.set_table(web_table(1, {instance("b", b.port)}));
  Message m = fetch(h.port, "POST / HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 1001\r\n\r\n");
  EXPECT_EQ(m.status, 413);
  std::string chunked = "POST / HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "190\r\n" + std::string(400, 'c') + "\r\n";
  m = fetch(h.port, chunked + "0\r\n\r\n");
  EXPECT_EQ(m.status, 413);
  EXPECT_NE(m.body.find("larger than 1000 bytes"), std::string::npos);
}

TEST(Proxy, NoRouteAndNoHealthyInstanceAre503NamingTheCause) {
  Backend b("b");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("b", b.port, false)}));
  Message m = fetch(h.port, get("web.localhost", "/"));
  EXPECT_EQ(m.status, 503);
  EXPECT_NE(m.body.find("/web"), std::string::npos);
  EXPECT_NE(m.body.find("no healthy instance"), std::string::npos);
  m = fetch(h.port, get("nowhere.localhost", "/"));
  EXPECT_EQ(m.status, 503);
  EXPECT_NE(m.body.find("no route for host 'nowhere.localhost'"), std::string::npos) << m.body;
  EXPECT_EQ(b.requests().size(), 0u);
}

TEST(Proxy, RefusedUpstreamIs502) {
  ProxyHarness h;
  uint16_t dead = closed_port();
  h.set_table(web_table(1, {instance("d", dead)}));
  Message m = fetch(h.port, get("web.localhost", "/"));
  EXPECT_EQ(m.status, 502);
  EXPECT_NE(m.body.find("127.0.0.1:" + std::to_string(dead)), std::string::npos);
  EXPECT_NE(m.body.find("refused"), std::string::npos) << m.body;
}

TEST(Proxy, FailedConnectIsRetriedOnAnotherInstance) {
  Backend live("live");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("dead", closed_port()), instance("live", live.port)}));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(fetch(h.port, get("web.localhost", "/")).status, 200);
    Message post = fetch(h.port, "POST / HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 2\r\n\r\nhi");
    EXPECT_EQ(post.status, 200);  // nothing was sent to the refusing instance
  }
  EXPECT_GE(h.on_io([&] { return h.proxy.stats().retries; }), 4u);
}

TEST(Proxy, SilentUpstreamIs504AndEarlyCloseIs502) {
  Backend hang("hang", [](const Message& m) {
    return Reply{"", m.target == "/close" ? Reply::Mode::kCloseSilently : Reply::Mode::kHang};
  });
  ProxyHarness h;
  h.set_table(web_table(1, {instance("h", hang.port)}));
  auto start = std::chrono::steady_clock::now();
  Message m = fetch(h.port, get("web.localhost", "/"));
  EXPECT_EQ(m.status, 504);
  EXPECT_NE(m.body.find("did not answer within 500 ms"), std::string::npos) << m.body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  m = fetch(h.port, "POST /close HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_EQ(m.status, 502);
  EXPECT_NE(m.body.find("closed the connection before answering"), std::string::npos) << m.body;
}

TEST(Proxy, IdempotentRequestsAnInstanceDropsUnansweredGoToAnother) {
  // "dying" accepts and closes without answering, as an instance does when
  // it is stopped with requests in its listen queue.
  Backend dying("dying", [](const Message&) { return Reply{"", Reply::Mode::kCloseSilently}; });
  Backend live("live");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("dying", dying.port), instance("live", live.port)}));
  for (int i = 0; i < 4; ++i) {
    Message m = fetch(h.port, get("web.localhost", "/"));
    EXPECT_EQ(m.status, 200) << m.body;
  }
  // A POST may have been acted on: never sent twice; the one sent to the
  // dying instance is a 502.
  int bad = 0;
  for (int i = 0; i < 4; ++i) {
    Message post = fetch(h.port, "POST / HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 2\r\n\r\nhi");
    bad += post.status == 502;
  }
  EXPECT_EQ(bad, 2);  // round-robin: every other one
}

TEST(Proxy, SlowlorisIsCutAtTheHeaderTimeoutWhileOthersAreServed) {
  Backend b("b");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("b", b.port)}));
  int slow = connect_to(h.port);
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> cut{false};
  std::thread trickler([&] {
    std::string head = get("web.localhost", "/", "X-Pad: " + std::string(200, 'p') + "\r\n");
    for (char c : head) {
      if (!send_all(slow, std::string_view(&c, 1))) break;
      std::this_thread::sleep_for(20ms);
      char probe;
      if (::recv(slow, &probe, 1, MSG_DONTWAIT) == 0) {
        cut = true;
        break;
      }
    }
  });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fetch(h.port, get("web.localhost", "/")).body, "b");
  trickler.join();
  EXPECT_TRUE(cut);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 2s);
  ::close(slow);
  EXPECT_EQ(b.requests().size(), 5u);
}

TEST(Proxy, ForwardedHeadersReachTheBackend) {
  Backend b("b");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("b", b.port)}));
  fetch(h.port, get("Web.Localhost:8080", "/h",
                    "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nConnection: X-Hop\r\nX-Hop: 1\r\n"));
  Message got = b.last();
  EXPECT_EQ(got.header("x-forwarded-for"), "203.0.113.9, 127.0.0.1");
  EXPECT_EQ(got.header("x-forwarded-proto"), "http");
  EXPECT_EQ(got.header("x-forwarded-host"), "Web.Localhost:8080");
  EXPECT_EQ(got.header("host"), "Web.Localhost:8080");
  EXPECT_EQ(got.headers.count("x-hop"), 0u);
  EXPECT_EQ(got.headers.count("connection"), 0u);
}

TEST(Proxy, TableSwapKeepsInFlightRequestsAndMovesNewOnes) {
  Backend old_b("old", [](const Message&) { return Reply{ok_response("old"), Reply::Mode::kNormal, 400ms}; });
  Backend new_b("new");
  ProxyOptions o = fast_options();
  o.response_timeout = 3s;
  ProxyHarness h(o);
  h.set_table(web_table(1, {instance("old", old_b.port)}));
  int keep = connect_to(h.port);  // a client connection that outlives the swap
  auto slow = std::async(std::launch::async, [&] { return fetch(h.port, get("web.localhost", "/slow")).body; });
  while (old_b.active == 0) std::this_thread::sleep_for(1ms);
  h.proxy.set_table(web_table(2, {instance("old", old_b.port, false), instance("new", new_b.port)}));
  EXPECT_EQ(fetch(h.port, get("web.localhost", "/")).body, "new");
  send_all(keep, get("web.localhost", "/"));
  std::string buf;
  EXPECT_EQ(read_response(keep, buf).body, "new");
  ::close(keep);
  EXPECT_EQ(slow.get(), "old");
}

// The drain handshake: a table that takes an instance out of the pool is
// acknowledged only once the request in flight to it has its answer, so the
// server stops the instance after it -- and at the latest after
// drain_ack_timeout, so a hanging request cannot hold every deploy.
TEST(Proxy, TableTakingAnInstanceOutIsAcknowledgedAfterItsLastRequest) {
  Backend old_b("old", [](const Message& m) {
    if (m.target == "/hang") return Reply{"", Reply::Mode::kHang};
    return Reply{ok_response("old"), Reply::Mode::kNormal, 600ms};
  });
  Backend new_b("new");
  ProxyOptions o = fast_options();
  o.response_timeout = 5s;
  o.drain_ack_timeout = 1500ms;
  ProxyHarness h(o);
  h.set_table(web_table(1, {instance("old", old_b.port), instance("new", new_b.port)}));
  h.set_table(web_table(2, {instance("old", old_b.port)}));
  auto slow = std::async(std::launch::async, [&] { return fetch(h.port, get("web.localhost", "/slow")).body; });
  while (old_b.active == 0) std::this_thread::sleep_for(1ms);
  h.proxy.set_table(web_table(3, {instance("old", old_b.port, false), instance("new", new_b.port)}));
  // New requests move at once; the acknowledgement waits for "/slow".
  EXPECT_EQ(fetch(h.port, get("web.localhost", "/")).body, "new");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(h.proxy.applied_version(), 2u);
  EXPECT_EQ(slow.get(), "old");
  for (int i = 0; i < 500 && h.proxy.applied_version() != 3; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(h.proxy.applied_version(), 3u);

  // A request that never ends holds the acknowledgement drain_ack_timeout.
  h.set_table(web_table(4, {instance("old", old_b.port)}));
  auto hung = std::async(std::launch::async, [&] { return fetch(h.port, get("web.localhost", "/hang")).status; });
  while (old_b.requests().size() < 2) std::this_thread::sleep_for(1ms);
  auto start = std::chrono::steady_clock::now();
  h.proxy.set_table(web_table(5, {instance("new", new_b.port)}));
  while (h.proxy.applied_version() != 5 && std::chrono::steady_clock::now() - start < 5s)
    std::this_thread::sleep_for(5ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(h.proxy.applied_version(), 5u);
  EXPECT_GE(took, 1400ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(hung.get(), 504);
}

// An instance going away closes a pooled connection just as a request is
// sent on it and refuses the next: the GET is resent, first to the same
// instance on a new connection, then to another, and the client sees 200.
TEST(Proxy, StaleConnectionToADyingInstanceIsResentElsewhere) {
  auto served = std::make_shared<std::atomic<int>>(0);
  Backend dying("dying", [served](const Message&) {
    if (served->fetch_add(1) == 0) return Reply{ok_response("dying")};
    return Reply{"", Reply::Mode::kCloseSilently};
  });
  Backend live("live");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("dying", dying.port), instance("live", live.port)}));
  int ok = 0;
  for (int i = 0; i < 6; ++i) ok += fetch(h.port, get("web.localhost", "/")).status == 200;
  EXPECT_EQ(ok, 6);
  EXPECT_GE(served->load(), 3);  // the dying instance did get the resends
}

TEST(Proxy, HttpsRedirectPerRoute) {
  ProxyHarness h;
  Route r = route("web.localhost", "/", "/web");
  r.redirect_https = true;
  h.set_table(make_table(1, {r}, {}));
  Message m = fetch(h.port, get("web.localhost:7080", "/a?b=1"));
  EXPECT_EQ(m.status, 301);
  EXPECT_EQ(m.header("location"), "https://web.localhost/a?b=1");
}

TEST(Proxy, AccessLogHasOneLtsvLinePerRequest) {
  Backend b("b");
  ProxyHarness h;
  h.set_table(web_table(1, {instance("web-r1.0.0", b.port)}));
  fetch(h.port, get("web.localhost", "/logged?x=1"));
  fetch(h.port, get("other.localhost", "/"));
  auto lines = h.lines(2);
  ASSERT_EQ(lines.size(), 2u);
  std::string want = "\thost:web.localhost\tmethod:GET\tpath:/logged?x=1\tstatus:200\tsize:1\treqtime:0.0";
  EXPECT_NE(lines[0].find(want), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\tupstream:127.0.0.1:" + std::to_string(b.port) + "\tapp:/web\ttask:web-r1.0.0"),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[0].rfind("time:20", 0), 0u);
  EXPECT_NE(lines[1].find("status:503"), std::string::npos);
  EXPECT_NE(lines[1].find("upstream:-\tapp:-\ttask:-"), std::string::npos) << lines[1];
}

TEST(Proxy, ListensOnIpv6Loopback) {
  boost::asio::io_context io;
  Proxy p(io);
  auto bound = p.listen("[::1]:0");
  if (!bound) GTEST_SKIP() << "no ::1 here: " << bound.error().message;
  EXPECT_EQ(bound->rfind("[::1]:", 0), 0u);
}

}  // namespace
}  // namespace stele::router::test
