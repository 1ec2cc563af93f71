// The router's certificates per host name (certificates.h).
#include "router/certificates.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstring>

#include <spdlog/spdlog.h>

namespace stele::router {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kWildcardPrefix = "_wildcard.";

// TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate"
// without DHE, which would need parameters per context).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

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

void configure(SSL_CTX* c) {
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(c, kTls12Ciphers);
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);  // idle keep-alive connections hold no record buffers
}

// The reasons OpenSSL queued for the last failure, "; "-joined.
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

// A server context holding the pair, or the reason it cannot.
std::shared_ptr<SSL_CTX> load_pair(const fs::path& crt, const fs::path& key, std::string& error) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> c(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!c) {
    error = "cannot make a TLS context: " + openssl_errors();
    return nullptr;
  }
  configure(c.get());
  if (SSL_CTX_use_certificate_chain_file(c.get(), crt.c_str()) != 1) {
    error = "certificate " + crt.string() + ": " + openssl_errors();
  } else if (SSL_CTX_use_PrivateKey_file(c.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair as it loads the key.
    bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    error = "key " + key.string() + (mismatch ? " does not match certificate " + crt.string() : "") + ": " +
            openssl_errors();
  } else if (SSL_CTX_check_private_key(c.get()) != 1) {
    error = "key " + key.string() + " does not match certificate " + crt.string() + ": " + openssl_errors();
  } else {
    return c;
  }
  return nullptr;
}

void warn_if_expired(const std::string& name, SSL_CTX* c, const fs::path& crt) {
  X509* x = SSL_CTX_get0_certificate(c);
  if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
    spdlog::warn("router: TLS certificate for '{}' ({}) has expired; serving it anyway", name, crt.string());
}

}  // namespace

std::string certificate_name(std::string_view stem) {
  std::string name = lower(stem);
  if (name.starts_with(kWildcardPrefix)) name = "*." + name.substr(kWildcardPrefix.size());
  return name;
}

CertificateStore::CertificateStore(fs::path dir)
    : dir_(std::move(dir)), base_(boost::asio::ssl::context::tls_server),
      contexts_(std::make_shared<const Contexts>()) {
  configure(base_.native_handle());
  SSL_CTX_set_tlsext_servername_callback(base_.native_handle(), &CertificateStore::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(base_.native_handle(), this);
}

CertificateStore::~CertificateStore() = default;

int CertificateStore::on_server_name(SSL* ssl, int* alert, void* self) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  std::shared_ptr<SSL_CTX> c = static_cast<CertificateStore*>(self)->select(name ? name : "");
  if (!c) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  SSL_set_SSL_CTX(ssl, c.get());  // takes its own reference: a reload may drop ours
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<SSL_CTX> CertificateStore::select(std::string_view server_name) const {
  std::shared_ptr<const Contexts> all;
  {
    std::lock_guard lk(mu_);
    all = contexts_;
  }
  std::string name = lower(server_name);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (!name.empty()) {
    if (auto it = all->find(name); it != all->end()) return it->second;
    if (size_t dot = name.find('.'); dot != std::string::npos && dot > 0) {
      if (auto it = all->find("*" + name.substr(dot)); it != all->end()) return it->second;
    }
  }
  auto it = all->find("default");
  return it == all->end() ? nullptr : it->second;
}

std::vector<std::string> CertificateStore::names() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [name, c] : *contexts_) out.push_back(name);
  return out;
}

std::map<std::string, CertificateStore::Found> CertificateStore::scan(std::error_code& ec) const {
  std::map<std::string, Found> found;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".crt") continue;
    Found f{p, fs::path(p).replace_extension(".key"), {}};
    std::error_code e1, e2;
    f.stamp.crt_mtime = fs::last_write_time(f.crt, e1);
    f.stamp.crt_size = fs::file_size(f.crt, e2);
    if (e1 || e2) continue;  // a dangling link or a directory named *.crt
    f.stamp.key_mtime = fs::last_write_time(f.key, e1);
    f.stamp.key_size = fs::file_size(f.key, e2);
    f.stamp.has_key = !e1 && !e2;
    found.emplace(certificate_name(p.stem().string()), std::move(f));
  }
  return found;
}

CertificateReload CertificateStore::reload() {
  std::lock_guard reload_lock(reload_mu_);
  CertificateReload report;
  std::error_code ec;
  std::map<std::string, Found> found = scan(ec);
  if (ec && !dir_missing_) {
    report.errors.push_back("certificate directory " + dir_.string() + ": " + ec.message());
    spdlog::error("router: TLS {}", report.errors.back());
  }
  dir_missing_ = static_cast<bool>(ec);
  if (ec) return report;  // keep what is loaded: a directory briefly away is no reason to drop certificates

  std::shared_ptr<const Contexts> current;
  {
    std::lock_guard lk(mu_);
    current = contexts_;
  }
  auto next = std::make_shared<Contexts>(*current);
  for (const auto& [name, f] : found) {
    auto tried = tried_.find(name);
    if (tried != tried_.end() && tried->second == f.stamp) continue;
    tried_[name] = f.stamp;
    std::string error;
    std::shared_ptr<SSL_CTX> c;
    if (!f.stamp.has_key) error = "certificate " + f.crt.string() + " has no key file " + f.key.string();
    else c = load_pair(f.crt, f.key, error);
    if (!c) {
      bool kept = next->count(name) > 0;
      report.errors.push_back(error);
      spdlog::error("router: TLS certificate for '{}' refused: {}{}", name, error,
                    kept ? " (the previous one stays in force)" : "");
      continue;
    }
    warn_if_expired(name, c.get(), f.crt);
    (*next)[name] = std::move(c);
    report.loaded.push_back(name);
  }
  for (auto it = next->begin(); it != next->end();) {
    if (found.count(it->first)) {
      ++it;
      continue;
    }
    report.removed.push_back(it->first);
    it = next->erase(it);
  }
  std::erase_if(tried_, [&](const auto& kv) { return !found.count(kv.first); });
  for (const auto& name : report.loaded) spdlog::info("router: TLS certificate for '{}' loaded", name);
  for (const auto& name : report.removed) spdlog::info("router: TLS certificate for '{}' removed", name);
  if (!report.loaded.empty() || !report.removed.empty()) {
    std::lock_guard lk(mu_);
    contexts_ = std::move(next);
  }
  return report;
}

}  // namespace stele::router
