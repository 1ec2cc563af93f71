// TLS termination: certificates per host name (SNI) from a directory, their
// reload, HTTP->HTTPS redirects, and requests, upgrades and timeouts over TLS.
// Certificates come from a test CA made with the openssl command line.
#include "router/certificates.h"

#include <gtest/gtest.h>

#include "tls_harness.h"

namespace stele::router::test {
namespace {

RouteTable web_table(uint16_t backend_port, bool redirect_https = false) {
  Route r = route("*", "/", "/web");
  r.redirect_https = redirect_https;
  return make_table(1, {r}, {{"/web", {instance("web-r1.0.0", backend_port)}}});
}

// A proxy with a plain and a TLS listener on the certificates of `pki`.
struct TlsProxy {
  explicit TlsProxy(const TestPki& pki, ProxyOptions o = fast_options())
      : h(o), certs(std::make_shared<CertificateStore>(pki.certs)) {
    certs->reload();
    auto bound = h.on_io([&] { return h.proxy.listen_tls("127.0.0.1:0", certs); });
    EXPECT_TRUE(bound) << bound.error().message;
    tls_port = static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1)));
  }
  ProxyHarness h;
  std::shared_ptr<CertificateStore> certs;
  uint16_t tls_port = 0;
};

TEST(Certificates, FileNamesGiveHostNames) {
  EXPECT_EQ(certificate_name("web.example.com"), "web.example.com");
  EXPECT_EQ(certificate_name("_wildcard.Example.COM"), "*.example.com");
  EXPECT_EQ(certificate_name("default"), "default");
}

TEST(Certificates, SniPicksEachHostsCertificate) {
  TestPki pki;
  pki.issue("a.test", "a.test", "a.test");
  pki.issue("b.test", "b.test", "b.test");
  pki.issue("_wildcard.wild.test", "*.wild.test", "wild");
  Backend b("app");
  TlsProxy t(pki);
  t.h.set_table(web_table(b.port));
  for (std::string name : {"a.test", "b.test"}) {
    TlsResult r = tls_fetch(t.tls_port, name, pki.ca(), get(name, "/x"));
    ASSERT_TRUE(r.handshake) << name;
    EXPECT_TRUE(r.verified) << name;
    EXPECT_EQ(r.cn, name);
    EXPECT_EQ(r.alpn, "http/1.1");
    EXPECT_EQ(r.status(), 200);
    EXPECT_EQ(r.body(), "app");
  }
  TlsResult w = tls_fetch(t.tls_port, "x.wild.test", pki.ca(), get("x.wild.test", "/"));
  EXPECT_TRUE(w.verified);
  EXPECT_EQ(w.cn, "wild");
  // A wildcard covers one label, and without default.crt nothing else is served.
  EXPECT_FALSE(TlsClient(t.tls_port, "y.x.wild.test", pki.ca()).result.handshake);
  TlsResult other = TlsClient(t.tls_port, "other.test", pki.ca()).result;
  EXPECT_FALSE(other.handshake);
  EXPECT_NE(other.error.find("unrecognized name"), std::string::npos) << other.error;  // the alert came
  EXPECT_FALSE(TlsClient(t.tls_port, "", pki.ca()).result.handshake);
  // The app learns the request came over TLS; the access record says so.
  EXPECT_EQ(b.last().header("x-forwarded-proto"), "https");
  auto lines = t.h.lines(3);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_NE(lines[0].find("\tstatus:200\t"), std::string::npos);
  EXPECT_NE(lines[0].find("\tscheme:https"), std::string::npos) << lines[0];
}

TEST(Certificates, DefaultServesUnknownNamesAndClientsWithoutSni) {
  TestPki pki;
  pki.issue("a.test", "a.test", "a.test");
  pki.issue("default", "fallback.test", "fallback");
  Backend b("app");
  TlsProxy t(pki);
  t.h.set_table(web_table(b.port));
  EXPECT_EQ(TlsClient(t.tls_port, "a.test", pki.ca()).result.cn, "a.test");
  EXPECT_EQ(TlsClient(t.tls_port, "A.TEST.", pki.ca()).result.cn, "a.test");
  EXPECT_EQ(TlsClient(t.tls_port, "unknown.test", pki.ca()).result.cn, "fallback");
  TlsResult r = tls_fetch(t.tls_port, "", pki.ca(), get("whatever", "/"));
  EXPECT_EQ(r.cn, "fallback");
  EXPECT_EQ(r.body(), "app");
}

TEST(Certificates, OnlyTls12AndNewerAreSpoken) {
  TestPki pki;
  pki.issue("a.test", "a.test", "a.test");
  TlsProxy t(pki);
  EXPECT_FALSE(TlsClient(t.tls_port, "a.test", pki.ca(), TLS1_1_VERSION).result.handshake);
  EXPECT_TRUE(TlsClient(t.tls_port, "a.test", pki.ca(), TLS1_2_VERSION).result.handshake);
}

TEST(Certificates, BadPairsAreReportedByFileAndTheOldOneStays) {
  TestPki pki;
  pki.issue("a.test", "a.test", "a.test v1");
  pki.issue("b.test", "b.test", "b.test");
  CertificateStore store(pki.certs);
  CertificateReload first = store.reload();
  EXPECT_EQ(first.loaded, (std::vector<std::string>{"a.test", "b.test"}));
  EXPECT_TRUE(first.errors.empty());
  EXPECT_TRUE(store.reload().loaded.empty());  // nothing changed, nothing re-read

  // a.test's certificate replaced by b.test's: it does not match a.test.key.
  fs::copy_file(pki.certs / "b.test.crt", pki.certs / "a.test.crt", fs::copy_options::overwrite_existing);
  std::ofstream(pki.certs / "junk.test.crt") << "not a certificate\n";
  std::ofstream(pki.certs / "junk.test.key") << "not a key\n";
  fs::copy_file(pki.certs / "b.test.crt", pki.certs / "nokey.test.crt");
  CertificateReload bad = store.reload();
  EXPECT_TRUE(bad.loaded.empty());
  ASSERT_EQ(bad.errors.size(), 3u);
  std::string all = bad.errors[0] + "\n" + bad.errors[1] + "\n" + bad.errors[2];
  EXPECT_NE(all.find("a.test.key does not match certificate " + (pki.certs / "a.test.crt").string()),
            std::string::npos) << all;
  EXPECT_NE(all.find("certificate " + (pki.certs / "junk.test.crt").string()), std::string::npos) << all;
  EXPECT_NE(all.find("nokey.test.crt has no key file"), std::string::npos) << all;
  EXPECT_EQ(store.names(), (std::vector<std::string>{"a.test", "b.test"}));
  EXPECT_TRUE(store.reload().errors.empty());  // reported once, not at every check

  Backend b("app");
  TlsProxy t(pki);  // its own store: the bad a.test pair never loaded there
  EXPECT_FALSE(TlsClient(t.tls_port, "a.test", pki.ca()).result.handshake);
  // The first store still serves the pair it had.
  std::shared_ptr<SSL_CTX> kept = store.select("a.test");
  ASSERT_TRUE(kept);
  char cn[64] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_CTX_get0_certificate(kept.get())), NID_commonName, cn,
                            sizeof cn);
  EXPECT_STREQ(cn, "a.test v1");
}

TEST(Certificates, ChangedFilesAreReloadedWithoutDroppingConnections) {
  TestPki pki;
  pki.issue("a.test", "a.test", "a.test v1");
  Backend b("app");
  ProxyOptions o = fast_options();
  o.cert_check_interval = std::chrono::milliseconds(50);
  TlsProxy t(pki, o);
  t.h.set_table(web_table(b.port));
  TlsClient open(t.tls_port, "a.test", pki.ca());
  ASSERT_TRUE(open.result.handshake);
  EXPECT_EQ(open.result.cn, "a.test v1");

  // The proxy re-reads the directory by itself: a new name, a renewed pair.
  pki.issue("c.test", "c.test", "c.test");
  pki.issue("a.test", "a.test", "a.test v2");
  std::string cn;
  for (int i = 0; i < 100 && cn != "a.test v2"; ++i) {
    std::this_thread::sleep_for(20ms);
    cn = TlsClient(t.tls_port, "a.test", pki.ca()).result.cn;
  }
  EXPECT_EQ(cn, "a.test v2");
  EXPECT_EQ(TlsClient(t.tls_port, "c.test", pki.ca()).result.cn, "c.test");
  // The connection made before the reload goes on.
  ASSERT_TRUE(open.send(get("a.test", "/again")));
  std::string resp = open.read_response();
  EXPECT_EQ(resp.substr(0, 12), "HTTP/1.1 200") << resp;

  fs::remove(pki.certs / "c.test.crt");
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    std::this_thread::sleep_for(20ms);
    refused = !TlsClient(t.tls_port, "c.test", pki.ca()).result.handshake;
  }
  EXPECT_TRUE(refused) << "c.test still served after its .crt was removed";
}

TEST(Certificates, RedirectHttpsPointsAtTheTlsListener) {
  TestPki pki;
  pki.issue("web.localhost", "web.localhost", "web.localhost");
  Backend b("app");
  TlsProxy t(pki);
  t.h.set_table(web_table(b.port, true));
  std::string https = "https://web.localhost:" + std::to_string(t.tls_port);
  Message m = fetch(t.h.port, get("web.localhost:7080", "/a?b=1"));
  EXPECT_EQ(m.status, 301);
  EXPECT_EQ(m.header("location"), https + "/a?b=1");
  Message head = fetch(t.h.port, "HEAD / HTTP/1.1\r\nHost: web.localhost\r\n\r\n", true);
  EXPECT_EQ(head.status, 301);
  // Other methods get 308, which keeps the method and the body.
  Message post = fetch(t.h.port, "POST /form HTTP/1.1\r\nHost: Web.Localhost\r\nContent-Length: 3\r\n\r\nx=1");
  EXPECT_EQ(post.status, 308);
  EXPECT_EQ(post.header("location"), https + "/form");
  EXPECT_TRUE(b.requests().empty());
  // Over TLS the same route is proxied.
  TlsResult r = tls_fetch(t.tls_port, "web.localhost", pki.ca(), get("web.localhost", "/a"));
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.body(), "app");
}

TEST(Certificates, RedirectToPort443LeavesThePortOut) {
  ProxyOptions o = fast_options();
  o.https_port = 443;
  ProxyHarness h(o);
  h.set_table(web_table(closed_port(), true));
  EXPECT_EQ(fetch(h.port, get("web.localhost", "/p")).header("location"), "https://web.localhost/p");
}

TEST(Certificates, UpgradeIsSplicedOverTls) {
  TestPki pki;
  pki.issue("ws.test", "ws.test", "ws.test");
  Backend echo("echo", [](const Message&) {
    return Reply{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                 Reply::Mode::kUpgradeEcho};
  });
  TlsProxy t(pki);
  t.h.set_table(web_table(echo.port));
  TlsClient c(t.tls_port, "ws.test", pki.ca());
  ASSERT_TRUE(c.result.handshake);
  c.send("GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  std::string got = c.read_some();
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 101") << got;
  for (std::string msg : {std::string("hello"), std::string(20000, 'x')}) {
    c.send(msg);
    std::string back;
    while (back.size() < msg.size()) {
      std::string more = c.read_some();
      if (more.empty()) break;
      back += more;
    }
    EXPECT_EQ(back, msg);
  }
}

TEST(Certificates, StalledHandshakeIsCutAtTheHeaderTimeout) {
  TestPki pki;
  pki.issue("a.test", "a.test", "a.test");
  TlsProxy t(pki);  // header timeout 400 ms
  int fd = connect_to(t.tls_port);
  ASSERT_GE(fd, 0);
  send_all(fd, std::string("\x16\x03\x01", 3));  // the start of a ClientHello, then nothing
  auto start = std::chrono::steady_clock::now();
  char c;
  ssize_t n = ::recv(fd, &c, 1, 0);
  auto waited = std::chrono::steady_clock::now() - start;
  ::close(fd);
  EXPECT_LE(n, 0);
  EXPECT_LT(waited, 3s);
  // Others are served meanwhile and after.
  EXPECT_EQ(TlsClient(t.tls_port, "a.test", pki.ca()).result.cn, "a.test");
}

}  // namespace
}  // namespace stele::router::test
