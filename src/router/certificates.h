// CertificateStore: the TLS certificates of the router's TLS listener, one
// per host name, read from a directory and re-read when its files change.
//
// Files in the directory (one pair per name, PEM):
//   <host>.crt + <host>.key                      "web.example.com.crt": that exact name
//   _wildcard.<domain>.crt + _wildcard.<domain>.key  "*.<domain>": any name one label
//                                                 below <domain> ("a.example.com", not
//                                                 "a.b.example.com" nor "example.com"),
//                                                 as certificate wildcards match
//   default.crt + default.key                    names nothing else matches, and clients
//                                                 that send no SNI
// The .crt holds the certificate then its chain (leaf first); the .key its
// private key, unencrypted. Names are taken from the file names, lower case,
// not from the certificates (a certificate that does not cover its name fails
// the client's verification, not the load). Other files are ignored.
//
// Selection (the OpenSSL servername callback of context()): the exact name,
// else the wildcard of its parent domain, else "default"; with none of them
// the handshake fails with an unrecognized_name alert.
//
// Reload: reload() stats the files and loads only pairs whose .crt or .key
// changed (mtime or size) since the last attempt. A pair that does not load
// (unreadable, not PEM, key not matching the certificate, .key missing) is
// logged with its file names and the certificate in force before stays in
// force; it is tried again once either file changes. A pair whose .crt is
// removed is dropped. Connections already established keep the certificate
// they were handshaken with; nothing is closed by a reload.
//
// TLS settings of every context (net/tls.h, shared with the API listener and
// the forward input): TLS 1.2 and 1.3 only, ECDHE with AES-GCM or
// ChaCha20-Poly1305 for TLS 1.2 (OpenSSL's defaults for 1.3), no
// compression, no renegotiation, ALPN "http/1.1" (a client offering only
// other protocols gets no ALPN answer).
//
// Thread-safety: reload(), select() and names() may be called from any
// thread (reload() calls are serialized); context() is used by the proxy's
// io thread to make streams, and its callback may run on any thread.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>

namespace stele::router {

// The name a pair of files serves, from their stem: "web.example.com" ->
// "web.example.com", "_wildcard.example.com" -> "*.example.com", "default"
// -> "default" (upper case is lowered).
std::string certificate_name(std::string_view stem);

// What one reload() did; names as certificate_name() gives them.
struct CertificateReload {
  std::vector<std::string> loaded;   // pairs (re)loaded and now in force
  std::vector<std::string> removed;  // pairs whose .crt went away
  std::vector<std::string> errors;   // one line per refused pair, naming its files
};

class CertificateStore {
 public:
  // Nothing is loaded before the first reload().
  explicit CertificateStore(std::filesystem::path dir);
  ~CertificateStore();
  CertificateStore(const CertificateStore&) = delete;
  CertificateStore& operator=(const CertificateStore&) = delete;

  // Scans the directory now (see the top). Errors are also logged.
  CertificateReload reload();

  // The context new server streams are made with: it holds no certificate
  // itself, its servername callback switches each handshake to the
  // selected name's context.
  boost::asio::ssl::context& context() { return base_; }

  // The context a ClientHello naming `server_name` gets ("" = no SNI), or
  // nullptr when the handshake is refused.
  std::shared_ptr<SSL_CTX> select(std::string_view server_name) const;
  // Names in force, sorted.
  std::vector<std::string> names() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct Stamp {
    std::filesystem::file_time_type crt_mtime, key_mtime;
    uintmax_t crt_size = 0, key_size = 0;
    bool has_key = false;
    bool operator==(const Stamp&) const = default;
  };
  struct Found {  // a .crt of the directory, its .key and their stamp
    std::filesystem::path crt, key;
    Stamp stamp;
  };
  using Contexts = std::map<std::string, std::shared_ptr<SSL_CTX>, std::less<>>;
  static int on_server_name(SSL* ssl, int* alert, void* self);
  // Every *.crt of the directory by name; `ec` set when it cannot be listed.
  std::map<std::string, Found> scan(std::error_code& ec) const;

  const std::filesystem::path dir_;
  boost::asio::ssl::context base_;
  mutable std::mutex mu_;
  std::shared_ptr<const Contexts> contexts_;  // GUARDED_BY(mu_); replaced whole by reload()
  std::mutex reload_mu_;
  std::map<std::string, Stamp> tried_;  // GUARDED_BY(reload_mu_): stamps last attempted per name
  bool dir_missing_ = false;            // GUARDED_BY(reload_mu_): logged once until it appears
};

}  // namespace stele::router
