// A cluster CA and node certificates with OpenSSL's C API (tls_certs.h).
#include "net/tls_certs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "net/tls.h"

namespace stele::net {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCaCommonName = "Stele cluster CA";

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

Result<PKey> make_p256_key() {
  std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return fail("cannot make an EC P-256 key: " + openssl_errors());
  return PKey(raw);
}

// One v3 extension from its OpenSSL config text ("critical,CA:TRUE").
Result<void> add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  if (!ext) return fail(std::string("certificate extension ") + OBJ_nid2sn(nid) + " '" + value + "': " + openssl_errors());
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return fail(std::string("certificate extension ") + OBJ_nid2sn(nid) + ": " + openssl_errors());
  return {};
}

// A certificate for `key` named `cn`, valid from 5 minutes ago (clock skew
// between hosts) for `days`, with a random 127-bit serial; not yet signed.
Result<Cert> new_certificate(EVP_PKEY* key, const std::string& cn, int days) {
  Cert x(X509_new());
  if (!x) return fail("cannot make a certificate: " + openssl_errors());
  X509_set_version(x.get(), 2);
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get())))
    return fail("cannot make a serial number: " + openssl_errors());
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), static_cast<long>(days) * 86400);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Stele"), -1, -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1)
    return fail("bad common name '" + cn + "': " + openssl_errors());
  if (X509_set_pubkey(x.get(), key) != 1) return fail("cannot set the public key: " + openssl_errors());
  return x;
}

// Writes `path` through a temporary file and a rename; mode 0600 or 0644.
Result<void> write_pem(const fs::path& path, mode_t mode, const std::function<bool(FILE*)>& write) {
  fs::path tmp = path;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return fail("cannot write " + tmp.string() + ": " + std::strerror(errno));
  ::fchmod(fd, mode);  // whatever the umask
  FILE* f = ::fdopen(fd, "w");
  bool ok = f && write(f);
  ok = f && std::fflush(f) == 0 && ::fsync(fd) == 0 && ok;
  if (f) std::fclose(f);
  else ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return fail("cannot write " + path.string() + ": " + openssl_errors());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot write " + path.string() + ": " + std::strerror(errno));
  return {};
}

Result<CertificateFiles> write_pair(const fs::path& dir, const std::string& stem, X509* cert, EVP_PKEY* key) {
  CertificateFiles out{(dir / (stem + ".crt")).string(), (dir / (stem + ".key")).string()};
  auto k = write_pem(out.key, 0600, [key](FILE* f) {
    return PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  });
  if (!k) return fail(k.error());
  auto c = write_pem(out.cert, 0644, [cert](FILE* f) { return PEM_write_X509(f, cert) == 1; });
  if (!c) return fail(c.error());
  return out;
}

bool valid_stem(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-' || s == "ca") return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

bool valid_dns(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '*') return false;
  return true;
}

Result<void> check_days(int days) {
  if (days < 1 || days > 36500) return fail("--days: expected 1 to 36500, got " + std::to_string(days));
  return {};
}

template <class T>
Result<T> read_pem(const fs::path& path, T (*read)(FILE*)) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return fail("cannot read " + path.string() + ": " + std::strerror(errno));
  T v = read(f);
  std::fclose(f);
  if (!v) return fail("cannot read " + path.string() + ": " + openssl_errors());
  return v;
}

}  // namespace

Result<CertificateFiles> make_cluster_ca(const std::string& dir, int days, bool force) {
  if (auto d = check_days(days); !d) return fail(d.error());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot make " + dir + ": " + ec.message());
  for (const char* f : {"ca.crt", "ca.key"})
    if (!force && fs::exists(fs::path(dir) / f))
      return fail((fs::path(dir) / f).string() + " exists: pass --force to make a new CA (certificates it signed " +
                  "will no longer verify)");
  auto key = make_p256_key();
  if (!key) return fail(key.error());
  auto cert = new_certificate(key->get(), kCaCommonName, days);
  if (!cert) return fail(cert.error());
  X509* x = cert->get();
  X509_set_issuer_name(x, X509_get_subject_name(x));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}})
    if (auto r = add_extension(x, x, nid, value); !r) return fail(r.error());
  if (X509_sign(x, key->get(), EVP_sha256()) == 0) return fail("cannot sign the CA certificate: " + openssl_errors());
  return write_pair(dir, "ca", x, key->get());
}

Result<CertificateFiles> make_node_certificate(const std::string& dir, const NodeCertificateRequest& req) {
  if (!valid_stem(req.name))
    return fail("bad node name '" + req.name + "': letters, digits, '.', '-' and '_' (not 'ca')");
  if (auto d = check_days(req.days); !d) return fail(d.error());
  if (req.ips.empty() && req.dns.empty()) return fail("node " + req.name + ": give at least one --ip or --dns");
  std::string san;
  for (const auto& ip : req.ips) {
    ASN1_OCTET_STRING* a = a2i_IPADDRESS(ip.c_str());
    if (!a) return fail("--ip: '" + ip + "' is not an IP address");
    ASN1_OCTET_STRING_free(a);
    san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  }
  for (const auto& d : req.dns) {
    if (!valid_dns(d)) return fail("--dns: '" + d + "' is not a DNS name");
    san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  }
  fs::path ca_crt = fs::path(dir) / "ca.crt", ca_key = fs::path(dir) / "ca.key";
  if (!fs::exists(ca_crt) || !fs::exists(ca_key)) return fail("no CA in " + dir + ": run stele certs init --dir " + dir);
  auto ca = read_pem<X509*>(ca_crt, [](FILE* f) { return PEM_read_X509(f, nullptr, nullptr, nullptr); });
  if (!ca) return fail(ca.error());
  Cert ca_cert(*ca);
  auto cak = read_pem<EVP_PKEY*>(ca_key, [](FILE* f) { return PEM_read_PrivateKey(f, nullptr, nullptr, nullptr); });
  if (!cak) return fail(cak.error());
  PKey ca_pkey(*cak);
  if (X509_check_private_key(ca_cert.get(), ca_pkey.get()) != 1)
    return fail(ca_key.string() + " does not match " + ca_crt.string());
  auto key = make_p256_key();
  if (!key) return fail(key.error());
  auto cert = new_certificate(key->get(), req.name, req.days);
  if (!cert) return fail(cert.error());
  X509* x = cert->get();
  X509_set_issuer_name(x, X509_get_subject_name(ca_cert.get()));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, std::string("critical,CA:FALSE")},
                            std::pair{NID_key_usage, std::string("critical,digitalSignature,keyEncipherment")},
                            std::pair{NID_ext_key_usage, std::string("serverAuth,clientAuth")},
                            std::pair{NID_subject_key_identifier, std::string("hash")},
                            std::pair{NID_authority_key_identifier, std::string("keyid:always")},
                            std::pair{NID_subject_alt_name, san}})
    if (auto r = add_extension(x, ca_cert.get(), nid, value); !r) return fail(r.error());
  if (X509_sign(x, ca_pkey.get(), EVP_sha256()) == 0)
    return fail("cannot sign the certificate of " + req.name + ": " + openssl_errors());
  return write_pair(dir, req.name, x, key->get());
}

}  // namespace stele::net
