#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pipeline/pipeline.h"

namespace stele::pipeline {

bool valid_hub_signature(const std::string& secret, std::string_view body, const std::string& header) {
  static const std::string prefix = "sha256=";
  if (header.size() != prefix.size() + 64 || header.compare(0, prefix.size(), prefix) != 0) return false;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len))
    return false;
  static const char* hex = "0123456789abcdef";
  std::string expected;
  for (unsigned i = 0; i < len; ++i) {
    expected += hex[mac[i] >> 4];
    expected += hex[mac[i] & 15];
  }
  std::string given = header.substr(prefix.size());
  for (auto& c : given) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

}  // namespace stele::pipeline
