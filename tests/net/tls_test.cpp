// TLS across hosts: `stele certs` material (a CA and node certificates that
// verify, with their SANs) and the HTTPS API listener + client (a good CA
// verifies, a wrong one fails with OpenSSL's reason, plain HTTP gets no
// answer).
#include "net/tls.h"
#include "net/tls_certs.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>
#include <utility>  // before asio, for g++ 12

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "net/http_client.h"
#include "net/http_server.h"
#include "net/router.h"

namespace {

namespace fs = std::filesystem;
using namespace stele;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/stele-tls-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};

X509* read_cert(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return nullptr;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  return x;
}

// X509_verify_cert of `leaf` against `ca` for TLS server use; the reason when it fails.
std::string verify(const std::string& ca, const std::string& leaf) {
  X509* root = read_cert(ca);
  X509* x = read_cert(leaf);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, x, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  int ok = X509_verify_cert(ctx);
  std::string why = ok == 1 ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(x);
  X509_free(root);
  return why;
}

TEST(ClusterCertificates, NodeCertificateVerifiesAgainstTheCaWithItsSans) {
  TempDir d;
  auto ca = net::make_cluster_ca(d.str(), 30, false);
  ASSERT_TRUE(ca) << ca.error().message;
  struct stat st {};
  ASSERT_EQ(stat(ca->key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto node = net::make_node_certificate(d.str(), {"server1", {"127.0.0.1", "::1"}, {"stele.internal"}, 10});
  ASSERT_TRUE(node) << node.error().message;
  EXPECT_EQ(node->cert, (d.path / "server1.crt").string());
  ASSERT_EQ(stat(node->key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(verify(ca->cert, node->cert), "");

  X509* x = read_cert(node->cert);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "::1", 0), 1);
  EXPECT_EQ(X509_check_host(x, "stele.internal", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_ip_asc(x, "10.0.0.1", 0), 1);
  EXPECT_NE(X509_check_host(x, "other.internal", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);  // clientAuth too
  X509_free(x);

  // Another cluster's CA does not vouch for it.
  TempDir other;
  ASSERT_TRUE(net::make_cluster_ca(other.str(), 30, false));
  EXPECT_NE(verify((other.path / "ca.crt").string(), node->cert), "");
}

TEST(ClusterCertificates, ClearErrors) {
  TempDir d;
  auto no_ca = net::make_node_certificate(d.str(), {"n", {"127.0.0.1"}, {}, 10});
  ASSERT_FALSE(no_ca);
  EXPECT_NE(no_ca.error().message.find("no CA in " + d.str() + ": run stele certs init"), std::string::npos)
      << no_ca.error().message;
  ASSERT_TRUE(net::make_cluster_ca(d.str(), 30, false));
  auto again = net::make_cluster_ca(d.str(), 30, false);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("--force"), std::string::npos) << again.error().message;
  EXPECT_TRUE(net::make_cluster_ca(d.str(), 30, true));
  auto bad_ip = net::make_node_certificate(d.str(), {"n", {"300.1.1.1"}, {}, 10});
  ASSERT_FALSE(bad_ip);
  EXPECT_NE(bad_ip.error().message.find("300.1.1.1"), std::string::npos);
  EXPECT_FALSE(net::make_node_certificate(d.str(), {"../n", {"127.0.0.1"}, {}, 10}));
  EXPECT_FALSE(net::make_node_certificate(d.str(), {"n", {}, {}, 10}));  // no SAN at all
}

// An HTTPS HttpServer on its own thread answering GET /ping.
struct HttpsServer {
  boost::asio::io_context io;
  net::Router router;
  std::unique_ptr<net::HttpServer> server;
  std::string bound;
  std::thread thread;

  HttpsServer(const std::string& crt, const std::string& key) {
    router.add("GET", "/ping", [](net::HttpRequest&) -> net::awaitable<net::HttpResponse> {
      co_return net::HttpResponse::text(200, "pong");
    });
    auto ctx = net::make_server_context(crt, key);
    EXPECT_TRUE(ctx) << ctx.error().message;
    net::ServerOptions so;
    so.tls = *ctx;
    server = std::make_unique<net::HttpServer>(io, router, so);
    auto b = server->listen("127.0.0.1:0");
    EXPECT_TRUE(b);
    bound = *b;
    thread = std::thread([this] { io.run(); });
  }
  ~HttpsServer() {
    boost::asio::post(io, [this] { server->stop(); io.stop(); });
    thread.join();
  }
  uint16_t port() const { return static_cast<uint16_t>(std::stoi(bound.substr(bound.rfind(':') + 1))); }
};

TEST(HttpsClient, VerifiesTheServerAgainstTheCaAndItsName) {
  TempDir d, other;
  ASSERT_TRUE(net::make_cluster_ca(d.str(), 30, false));
  ASSERT_TRUE(net::make_cluster_ca(other.str(), 30, false));
  auto node = net::make_node_certificate(d.str(), {"server", {"127.0.0.1"}, {"localhost"}, 10});
  ASSERT_TRUE(node);
  HttpsServer s(node->cert, node->key);
  std::string port = std::to_string(s.port());

  net::set_client_ca_file((d.path / "ca.crt").string());
  auto ok = net::http_request_sync("GET", "https://127.0.0.1:" + port + "/ping");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "pong");
  auto by_name = net::http_request_sync("GET", "https://localhost:" + port + "/ping");
  ASSERT_TRUE(by_name) << by_name.error().message;
  EXPECT_EQ(by_name->status, 200);
  std::string body;
  auto streamed = net::http_stream_sync("GET", "https://127.0.0.1:" + port + "/ping", "", {},
                                        [&](std::string_view d) { return body.append(d), true; });
  ASSERT_TRUE(streamed) << streamed.error().message;
  EXPECT_EQ(body, "pong");

  // The wrong CA: a clear error naming the server and OpenSSL's reason.
  net::set_client_ca_file((other.path / "ca.crt").string());
  auto wrong = net::http_request_sync("GET", "https://127.0.0.1:" + port + "/ping");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("127.0.0.1:" + port), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("certificate verify failed"), std::string::npos) << wrong.error().message;

  // The right CA but a certificate that does not name 127.0.0.1.
  {
    auto dns_only = net::make_node_certificate(d.str(), {"dnsonly", {}, {"stele.internal"}, 10});
    ASSERT_TRUE(dns_only);
    HttpsServer s2(dns_only->cert, dns_only->key);
    net::set_client_ca_file((d.path / "ca.crt").string());
    auto mismatch = net::http_request_sync("GET", "https://127.0.0.1:" + std::to_string(s2.port()) + "/ping");
    ASSERT_FALSE(mismatch);
    EXPECT_NE(mismatch.error().message.find("certificate verify failed"), std::string::npos)
        << mismatch.error().message;
  }

  // Plain HTTP to the HTTPS listener: no HTTP answer.
  auto plain = net::http_request_sync("GET", "http://127.0.0.1:" + port + "/ping", "", {}, std::chrono::seconds(5));
  EXPECT_FALSE(plain);
  net::set_client_ca_file("");
}

TEST(HttpsServer, BadCertificateOrKeyNamesTheFile) {
  TempDir d;
  ASSERT_TRUE(net::make_cluster_ca(d.str(), 30, false));
  auto a = net::make_node_certificate(d.str(), {"a", {"127.0.0.1"}, {}, 10});
  auto b = net::make_node_certificate(d.str(), {"b", {"127.0.0.1"}, {}, 10});
  ASSERT_TRUE(a && b);
  auto missing = net::make_server_context(d.str() + "/nope.crt", a->key);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.crt"), std::string::npos) << missing.error().message;
  auto mismatch = net::make_server_context(a->cert, b->key);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message.find(b->key), std::string::npos) << mismatch.error().message;
}

}  // namespace
