// SHA-256 over OpenSSL EVP, as lowercase hex. Sha256 is a streaming hasher:
// update() any number of times, then final() once. Not thread-safe; one
// instance per stream.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stele::artifact {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::string_view data);
  void update(const void* data, size_t n);
  // Lowercase hex digest; the hasher must not be used afterwards.
  std::string final();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string sha256_hex(std::string_view data);
// Digest of a file's bytes, streamed; fails when it cannot be read.
Result<std::string> sha256_file(const std::string& path);

// True for 64 lowercase hex characters.
bool is_sha256_hex(std::string_view s);

}  // namespace stele::artifact
