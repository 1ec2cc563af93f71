// Slugs: the built tree of a release as a deterministic tar.zst named by the
// sha256 of its bytes. Same tree (paths, contents, exec bits, symlink
// targets) → same bytes → same digest, whatever the files' mtimes, owners or
// readdir order.
//
// Format: POSIX ustar entries sorted bytewise by path (parents before
// children), mtime 0, uid/gid 0, empty uname/gname, dirs 0755, files 0755
// when any exec bit is set else 0644, symlinks as symlinks. Paths too long
// for ustar name/prefix, long link targets and sizes ≥ 8 GiB get a pax 'x'
// header. Compressed with zstd level 3, single-threaded, content checksum.
//
// Both functions are blocking (disk I/O): run them on a worker thread. They
// stream: memory use is bounded by the list of paths, not file sizes.
#pragma once
#include <cstdint>
#include <string>

#include "common/result.h"

namespace stele::artifact {

struct Slug {
  std::string digest;  // sha256 of the .tar.zst, 64 lowercase hex
  std::string path;    // <out_dir>/<digest>.tar.zst
  uint64_t size = 0;   // bytes of the .tar.zst
};

// Packs tree_dir (skipping a top-level .git) into out_dir. Fails, naming the
// path, on sockets, fifos and devices, or when a file changes size while read.
// out_dir must exist; a slug already there with the same digest is replaced
// by identical bytes.
Result<Slug> make_slug(const std::string& tree_dir, const std::string& out_dir);

// Extracts a slug into dest_dir (created if missing), restoring modes (no
// setuid/setgid/sticky bits). Refuses absolute paths, ".." components, hard
// links and special files, and any entry whose path would pass through (or
// end on) a symlink already extracted: nothing is written outside dest_dir.
// A symlink's own target is stored verbatim and may point anywhere. On
// failure dest_dir may hold a partial tree; the caller discards it.
Result<void> unpack_slug(const std::string& slug_path, const std::string& dest_dir);

}  // namespace stele::artifact
