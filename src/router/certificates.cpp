// The router's certificates per host name (certificates.h).
#include "router/certificates.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstring>

#include <spdlog/spdlog.h>

#include "net/tls.h"

namespace stele::router {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kWildcardPrefix = "_wildcard.";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  net::configure_server_context(base_.native_handle());
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
    else c = net::load_server_pair(f.crt.string(), f.key.string(), error);
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
