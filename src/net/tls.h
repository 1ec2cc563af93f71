// TLS settings and contexts shared by every TLS endpoint of Stele: the API
// listener (HttpServer), its HTTPS client (http_client), the forward input
// and the agents' shippers (logs/), and the router's per-host certificates
// (router/certificates). One place decides the protocol versions and suites.
//
// Server contexts: TLS 1.2 and 1.3 only, ECDHE with AES-GCM or
// ChaCha20-Poly1305 for TLS 1.2 (OpenSSL's defaults for 1.3), no
// compression, no renegotiation, ALPN "http/1.1" when the client offers it.
//
// Client contexts: the same versions, the peer's certificate always verified
// against a CA file (or the system's trust store when none is configured) --
// there is no insecure mode. set_peer_name() adds the name check (DNS or IP
// subjectAltName) and SNI for host names.
//
// Thread-safety: the functions are safe from any thread. The client trust
// setting (set_client_ca_file) is meant to be made once in main, before any
// client runs; client_context() may be called concurrently.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include "common/result.h"

namespace stele::net {

using TlsContext = boost::asio::ssl::context;

// The reasons OpenSSL queued for the last failure, "; "-joined (and taken off
// the thread's error queue); "unknown error" when there are none.
std::string openssl_errors();

// The server settings above, applied to `ctx`.
void configure_server_context(SSL_CTX* ctx);

// A configured server context holding the certificate chain of `crt` (leaf
// first, PEM) and the unencrypted private key of `key`, or nullptr with
// `error` naming the file at fault ("certificate FILE: reason", "key FILE
// does not match certificate FILE: reason").
std::shared_ptr<SSL_CTX> load_server_pair(const std::string& crt, const std::string& key, std::string& error);

// The same as an asio context, for listeners (API, forward input). The error
// names the file at fault.
Result<std::shared_ptr<TlsContext>> make_server_context(const std::string& crt, const std::string& key);

// A client context trusting the certificates of `ca_file` (PEM, one or more);
// "" = the system's default trust store. Peers are always verified.
Result<std::shared_ptr<TlsContext>> make_client_context(const std::string& ca_file);

// The CA file https:// URLs and TLS forward destinations are verified with
// ("" = the system's trust store). Set once, early (main: --tls-ca, --ca,
// $STELE_CA).
void set_client_ca_file(std::string path);
std::string client_ca_file();
// The client context for the configured CA file, made once and shared.
Result<std::shared_ptr<TlsContext>> client_context();

// Before the handshake of a client connection to `host` (a DNS name or an IP
// literal): the certificate must name it (subjectAltName DNS or IP entry);
// SNI is sent for DNS names.
Result<void> set_peer_name(SSL* ssl, const std::string& host);

// Why a client handshake with `peer` ("host:port") failed, as one readable
// line: a certificate that does not verify gives OpenSSL's verification
// reason ("certificate verify failed: unable to get local issuer
// certificate"), anything else the stream error.
std::string handshake_failure(SSL* ssl, const std::string& peer, const boost::system::error_code& ec);

}  // namespace stele::net
