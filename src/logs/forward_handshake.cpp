// The forward protocol's shared-key handshake: HELO, PING, PONG (SHA-512).
#include "logs/forward_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "logs/msgpack.h"

namespace stele::logs {
// ---- handshake ----

std::string sha512_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha512(), nullptr);
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned i = 0; i < n; ++i) out += {digits[md[i] >> 4], digits[md[i] & 15]};
  return out;
}

std::string shared_key_digest(std::string_view salt, std::string_view hostname, std::string_view nonce,
                              std::string_view shared_key) {
  std::string in;
  in.append(salt).append(hostname).append(nonce).append(shared_key);
  return sha512_hex(in);
}

std::string password_digest(std::string_view auth_salt, std::string_view username, std::string_view password) {
  std::string in;
  in.append(auth_salt).append(username).append(password);
  return sha512_hex(in);
}

std::string encode_helo(std::string_view nonce, std::string_view auth_salt, bool keepalive) {
  std::string out;
  msgpack::Writer w(out);
  w.array(2);
  w.str("HELO");
  w.map(3);
  w.str("nonce");
  w.bin(nonce);  // random bytes, as Fluentd sends them
  w.str("auth");
  w.bin(auth_salt);
  w.str("keepalive");
  w.boolean(keepalive);
  return out;
}

std::string encode_ping(std::string_view hostname, std::string_view salt, const Helo& helo,
                        std::string_view shared_key, std::string_view username, std::string_view password) {
  std::string out;
  msgpack::Writer w(out);
  w.array(6);
  w.str("PING");
  w.str(hostname);
  w.str(salt);
  w.str(shared_key_digest(salt, hostname, helo.nonce, shared_key));
  bool user = !helo.auth_salt.empty();
  w.str(user ? username : "");
  w.str(user ? password_digest(helo.auth_salt, username, password) : "");
  return out;
}

std::string encode_pong(bool auth_ok, std::string_view reason, std::string_view server_hostname,
                        const Ping& ping, std::string_view nonce, std::string_view shared_key) {
  std::string out;
  msgpack::Writer w(out);
  w.array(5);
  w.str("PONG");
  w.boolean(auth_ok);
  w.str(reason);
  w.str(server_hostname);
  w.str(auth_ok ? shared_key_digest(ping.shared_key_salt, server_hostname, nonce, shared_key) : "");
  return out;
}

namespace {
bool same_digest(std::string_view got, const std::string& want) {
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
}
}  // namespace

Result<void> verify_ping(const Ping& ping, std::string_view nonce, std::string_view shared_key,
                         std::string_view auth_salt, std::optional<std::string_view> password) {
  if (!same_digest(ping.shared_key_digest,
                   shared_key_digest(ping.shared_key_salt, ping.hostname, nonce, shared_key)))
    return fail("shared_key mismatch", 401);
  if (auth_salt.empty()) return {};
  if (!password || !same_digest(ping.password_digest, password_digest(auth_salt, ping.username, *password)))
    return fail("username/password mismatch", 401);
  return {};
}

Result<void> verify_pong(const Pong& pong, std::string_view salt, std::string_view nonce,
                         std::string_view shared_key) {
  if (!pong.auth_ok) return fail("server refused authentication: " + std::string(pong.reason), 401);
  if (!same_digest(pong.shared_key_digest, shared_key_digest(salt, pong.server_hostname, nonce, shared_key)))
    return fail("server's shared_key digest does not match: it does not know the shared key", 401);
  return {};
}

}  // namespace stele::logs
