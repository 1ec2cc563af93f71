// A POSIX ustar writer for directory trees, shared by slugs (artifact/slug.h,
// compressed and content-addressed) and Docker build contexts (docker/, plain
// tar streamed to the engine).
//
// Entries are what collect_tree() found: paths '/'-separated and relative to
// the tree root, sorted bytewise by the caller when determinism matters.
// Headers carry mtime 0, uid/gid 0, empty uname/gname, dirs 0755, files 0755
// when any exec bit is set else 0644, symlinks as symlinks. Paths too long for
// ustar name/prefix, long link targets and sizes ≥ 8 GiB get a pax 'x' header.
// Blocking (disk I/O); not thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace stele::artifact {

struct TreeEntry {
  std::string rel;   // relative path, '/'-separated
  char type = '0';   // '0' file, '5' dir, '2' symlink
  unsigned mode = 0644;
  uint64_t size = 0;
  std::string link;  // symlink target, verbatim
};

// Appends every entry under root (skipping a top-level .git), parents before
// children, in readdir order. Fails on sockets, fifos and devices. Error
// messages start with `label` ("slug", "docker build context").
Result<void> collect_tree(const std::filesystem::path& root, const std::string& label,
                          std::vector<TreeEntry>& out);

// Where the tar bytes go.
class TarSink {
 public:
  virtual ~TarSink() = default;
  virtual Result<void> write(const char* p, size_t n) = 0;
};

class TarWriter {
 public:
  TarWriter(TarSink& sink, std::string label) : sink_(sink), label_(std::move(label)) {}
  // Writes e's header and, for files, the bytes of root/e.rel; fails when the
  // file changes size while read.
  Result<void> add(const TreeEntry& e, const std::filesystem::path& root);
  // The two zero blocks that end an archive.
  Result<void> finish();

 private:
  Result<void> write_pax(const std::string& pax);
  Result<void> data(const char* p, size_t n, uint64_t total);
  Result<void> copy_file(const std::filesystem::path& abs, const TreeEntry& e);

  TarSink& sink_;
  std::string label_;
};

}  // namespace stele::artifact
