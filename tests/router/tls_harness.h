// TLS test helpers: a test CA and host certificates made with the openssl
// command line in a temp dir, and a blocking OpenSSL client that verifies
// the router's certificate against that CA.
#pragma once
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "harness.h"

namespace stele::router::test {

namespace fs = std::filesystem;

// A temp dir with a test CA (ca.crt, ca.key) and, in certs/, the pairs
// issue() makes. Removed at the end.
class TestPki {
 public:
  TestPki() {
    char tmpl[] = "/tmp/stele-tls-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    certs = dir / "certs";
    fs::create_directories(certs);
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj '/CN=Stele Test CA'"
        " -keyout " + (dir / "ca.key").string() + " -out " + ca().string());
  }
  ~TestPki() { fs::remove_all(dir); }

  fs::path ca() const { return dir / "ca.crt"; }

  // Writes <stem>.crt/.key into `into` (default certs/): a certificate for
  // `dns` (SAN) with common name `cn`, signed by the CA.
  void issue(const std::string& stem, const std::string& dns, const std::string& cn, fs::path into = {}) {
    if (into.empty()) into = certs;
    fs::path work = dir / "work";
    fs::create_directories(work);
    std::ofstream(work / "ext.cnf") << "subjectAltName=DNS:" << dns << "\n";
    std::string key = (work / "h.key").string(), csr = (work / "h.csr").string(), crt = (work / "h.crt").string();
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=" + cn + "' -keyout " + key +
        " -out " + csr);
    run("openssl x509 -req -days 2 -in " + csr + " -CA " + ca().string() + " -CAkey " + (dir / "ca.key").string() +
        " -CAcreateserial -extfile " + (work / "ext.cnf").string() + " -out " + crt);
    // Replaced by rename, as a deployment tool would, so a reload never
    // reads a half-written file.
    fs::copy_file(key, work / "k.tmp", fs::copy_options::overwrite_existing);
    fs::copy_file(crt, work / "c.tmp", fs::copy_options::overwrite_existing);
    fs::rename(work / "k.tmp", into / (stem + ".key"));
    fs::rename(work / "c.tmp", into / (stem + ".crt"));
  }

  fs::path dir, certs;

 private:
  static void run(const std::string& cmd) {
    int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    ASSERT_EQ(rc, 0) << cmd;
  }
};

// What a TLS client saw: the handshake, the certificate, ALPN, and the raw
// response bytes it read until the server closed (or the read timed out).
struct TlsResult {
  bool handshake = false;
  bool verified = false;
  std::string error;     // why the handshake failed, as OpenSSL says
  std::string cn;        // server certificate's common name
  std::string alpn;      // protocol the server selected
  std::string response;  // raw bytes
  int status() const { return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0; }
  std::string body() const {
    size_t at = response.find("\r\n\r\n");
    return at == std::string::npos ? "" : response.substr(at + 4);
  }
};

// A blocking TLS client connection to the proxy on 127.0.0.1:port.
class TlsClient {
 public:
  // `sni` empty: no server name sent. `max_version` 0: the library's.
  TlsClient(uint16_t port, const std::string& sni, const fs::path& ca, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);  // checked after, to tell the cases apart
    if (max_version) {
      SSL_CTX_set_security_level(ctx_, 0);
      SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
    }
    static const unsigned char protos[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx_, protos, sizeof protos - 1);
    fd_ = connect_to(port);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (!sni.empty()) {
      SSL_set_tlsext_host_name(ssl_, sni.c_str());
      SSL_set1_host(ssl_, sni.c_str());
    }
    ERR_clear_error();
    result.handshake = fd_ >= 0 && SSL_connect(ssl_) == 1;
    if (!result.handshake) {
      char why[256] = {0};
      ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
      result.error = why;
      return;
    }
    result.verified = SSL_get_verify_result(ssl_) == X509_V_OK;
    if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
      char cn[256] = {0};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
      result.cn = cn;
      X509_free(peer);
    }
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    result.alpn.assign(reinterpret_cast<const char*>(p), n);
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool send(std::string_view data) { return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) > 0; }
  // Reads once (blocks up to the socket's receive timeout); "" at the end.
  std::string read_some() {
    char buf[65536];
    int n = SSL_read(ssl_, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  // Reads until `response` holds a whole response to one request with a
  // Content-Length (or the connection ends).
  std::string read_response() {
    std::string got;
    for (;;) {
      size_t end = got.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = got.find("Content-Length: ");
        size_t want = cl == std::string::npos || cl > end ? 0 : std::stoul(got.substr(cl + 16));
        if (got.size() >= end + 4 + want) return got;
      }
      std::string more = read_some();
      if (more.empty()) return got;
      got += more;
    }
  }

  TlsResult result;

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

// One request over a new TLS connection.
inline TlsResult tls_fetch(uint16_t port, const std::string& sni, const fs::path& ca, const std::string& raw) {
  TlsClient c(port, sni, ca);
  if (c.result.handshake && c.send(raw)) c.result.response = c.read_response();
  return c.result;
}

}  // namespace stele::router::test
