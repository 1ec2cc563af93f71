// Content-addressed artifact store: <dir>/sha256/<hex>, temps in <dir>/tmp.
// Every artifact is verified on the way in (the bytes' sha256 must equal the
// digest the caller claims) and lands atomically: temp file, fsync, rename,
// fsync of the directory. A reader never sees a partial artifact.
//
// Errors: a malformed digest (not 64 lowercase hex) → code 400; bytes that do
// not match the claimed digest → code 422 "digest mismatch: expected X, got Y"
// and nothing is stored; unknown digest in remove() → 404; disk errors → 500.
//
// Thread-safety: the store holds no mutable state beyond the filesystem.
// Concurrent puts (even of the same digest, from several threads or processes)
// are safe and idempotent — each writes its own temp file and the rename is
// atomic. One ArtifactWriter must be used by one thread at a time.
// All calls block on disk I/O: keep them off the network threads for large
// artifacts.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "artifact/sha256.h"

namespace stele::artifact {

// A streaming put: write() chunks, then commit(). Destroying an uncommitted
// writer discards its temp file.
class ArtifactWriter {
 public:
  ArtifactWriter(ArtifactWriter&&) noexcept;
  ArtifactWriter& operator=(ArtifactWriter&&) noexcept;
  ~ArtifactWriter();
  Result<void> write(std::string_view chunk);
  // Verifies the digest and publishes the artifact; returns its path. The
  // writer is spent afterwards, whether commit succeeded or not.
  Result<std::string> commit();

 private:
  friend class ArtifactStore;
  ArtifactWriter(std::string expected, std::string tmp, std::string final_path, std::string dir, int fd);
  void discard();
  std::string expected_, tmp_, final_, dir_;
  int fd_ = -1;
  Sha256 hash_;
};

class ArtifactStore {
 public:
  // Creates <dir>/sha256 and <dir>/tmp if missing (errors surface on put).
  explicit ArtifactStore(std::string dir);

  // Checks the digest's format: 400 unless 64 lowercase hex characters.
  static Result<void> validate_digest(const std::string& digest);

  // Copies src_path into the store, verifying its bytes hash to
  // expected_digest. Returns the stored path. Storing an artifact already
  // present succeeds and leaves identical bytes.
  Result<std::string> put_file(const std::string& src_path, const std::string& expected_digest);
  Result<ArtifactWriter> begin(const std::string& expected_digest);

  // False for unknown or malformed digests.
  bool has(const std::string& digest) const;
  // Where the artifact lives (or would live); does not check existence.
  std::string path(const std::string& digest) const;
  Result<void> remove(const std::string& digest);
  // Digests of all stored artifacts, sorted.
  std::vector<std::string> list() const;

 private:
  std::string dir_;
};

}  // namespace stele::artifact
