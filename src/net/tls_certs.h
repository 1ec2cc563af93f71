// A cluster's certificate authority and node certificates (`stele certs`),
// made with OpenSSL's C API: EC P-256 keys, SHA-256 signatures, X.509 v3.
//
// Files in the directory (PEM; keys unencrypted and written 0600):
//   ca.crt, ca.key          the CA: CN "Stele cluster CA", basicConstraints
//                           CA:TRUE (critical), keyUsage keyCertSign+cRLSign
//   <name>.crt, <name>.key  a node: CN <name>, subjectAltName the given IPs
//                           and DNS names, EKU serverAuth+clientAuth, signed
//                           by ca.key
// Files are written to a temporary name and renamed, so a reader never sees
// half a file. Nothing is overwritten unless asked (force).
//
// Thread-safety: the functions share no state.
#pragma once
#include <string>
#include <vector>

#include "common/result.h"

namespace stele::net {

struct CertificateFiles {
  std::string cert;  // path of the .crt
  std::string key;   // path of the .key
};

// Makes DIR (and parents) and the CA in it. Refuses (naming the file) when
// ca.crt or ca.key exists, unless `force`.
Result<CertificateFiles> make_cluster_ca(const std::string& dir, int days, bool force);

struct NodeCertificateRequest {
  std::string name;              // file stem and CN: letters, digits, '.', '-', '_'
  std::vector<std::string> ips;  // IPv4/IPv6 literals for IP SANs
  std::vector<std::string> dns;  // names for DNS SANs
  int days = 825;
};

// Signs a node certificate with the CA of DIR. Errors: "no CA in DIR: run
// stele certs init --dir DIR", a bad IP or name (naming it), no SAN at all.
// Replaces an existing <name>.crt/.key (a node's certificate is re-issued).
Result<CertificateFiles> make_node_certificate(const std::string& dir, const NodeCertificateRequest& req);

}  // namespace stele::net
