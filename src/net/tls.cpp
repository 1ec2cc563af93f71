// TLS contexts shared by Stele's endpoints (tls.h).
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstring>
#include <map>
#include <mutex>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

namespace stele::net {

namespace {

// TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate"
// without DHE, which would need parameters per context).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                  void*) {
  // `in` is a list of length-prefixed protocol names.
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned i = 0; i < inlen;) {
    unsigned n = in[i];
    if (i + 1 + n <= inlen && n == sizeof kHttp11 && std::memcmp(in + i + 1, kHttp11, n) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::mutex client_mu;
std::string client_ca;                               // GUARDED_BY(client_mu)
std::map<std::string, std::shared_ptr<TlsContext>> client_contexts;  // GUARDED_BY(client_mu), by CA file

}  // namespace

std::string openssl_errors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

void configure_server_context(SSL_CTX* c) {
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(c, kTls12Ciphers);
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);  // idle keep-alive connections hold no record buffers
}

std::shared_ptr<SSL_CTX> load_server_pair(const std::string& crt, const std::string& key, std::string& error) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> c(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!c) {
    error = "cannot make a TLS context: " + openssl_errors();
    return nullptr;
  }
  configure_server_context(c.get());
  if (SSL_CTX_use_certificate_chain_file(c.get(), crt.c_str()) != 1) {
    error = "certificate " + crt + ": " + openssl_errors();
  } else if (SSL_CTX_use_PrivateKey_file(c.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair as it loads the key.
    bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    error = "key " + key + (mismatch ? " does not match certificate " + crt : "") + ": " + openssl_errors();
  } else if (SSL_CTX_check_private_key(c.get()) != 1) {
    error = "key " + key + " does not match certificate " + crt + ": " + openssl_errors();
  } else {
    return c;
  }
  return nullptr;
}

Result<std::shared_ptr<TlsContext>> make_server_context(const std::string& crt, const std::string& key) {
  std::string error;
  auto pair = load_server_pair(crt, key, error);
  if (!pair) return fail(error);
  // No TLS 1.3 session tickets: Stele's clients never resume, and a ticket
  // arriving unasked would look like unsolicited data to the forward
  // client's check for a stale kept connection.
  SSL_CTX_set_num_tickets(pair.get(), 0);
  SSL_CTX_up_ref(pair.get());  // the asio context takes its own reference
  return std::make_shared<TlsContext>(pair.get());
}

Result<std::shared_ptr<TlsContext>> make_client_context(const std::string& ca_file) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (!raw) return fail("cannot make a TLS context: " + openssl_errors());
  auto ctx = std::make_shared<TlsContext>(raw);  // owns raw
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(raw, kTls12Ciphers);
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(raw)
                           : SSL_CTX_load_verify_locations(raw, ca_file.c_str(), nullptr);
  if (ok != 1)
    return fail("CA file " + (ca_file.empty() ? std::string("(system default)") : ca_file) + ": " + openssl_errors());
  return ctx;
}

void set_client_ca_file(std::string path) {
  std::lock_guard lock(client_mu);
  client_ca = std::move(path);
}

std::string client_ca_file() {
  std::lock_guard lock(client_mu);
  return client_ca;
}

Result<std::shared_ptr<TlsContext>> client_context() {
  std::lock_guard lock(client_mu);
  auto it = client_contexts.find(client_ca);
  if (it != client_contexts.end()) return it->second;
  auto ctx = make_client_context(client_ca);
  if (!ctx) return ctx;
  client_contexts.emplace(client_ca, *ctx);
  return ctx;
}

Result<void> set_peer_name(SSL* ssl, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (!ec) {  // an IP literal: matched against IP SANs, no SNI (RFC 6066)
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) return fail("bad IP address '" + host + "'");
    return {};
  }
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, host.c_str()) != 1) return fail("bad host name '" + host + "': " + openssl_errors());
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return fail("cannot set SNI '" + host + "': " + openssl_errors());
  return {};
}

std::string handshake_failure(SSL* ssl, const std::string& peer, const boost::system::error_code& ec) {
  long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (v != X509_V_OK)
    return "TLS handshake with " + peer + " failed: certificate verify failed: " +
           X509_verify_cert_error_string(v) + " (is --ca / --tls-ca / STELE_CA the CA that signed the server's certificate?)";
  std::string why = ec.message();
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    why = buf;
  }
  return "TLS handshake with " + peer + " failed: " + why;
}

}  // namespace stele::net
