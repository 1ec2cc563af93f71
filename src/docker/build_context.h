// The build context of POST /build: an uncompressed tar of a directory
// (artifact/tar_writer.h: sorted, mtime 0, owners 0, a top-level .git
// skipped). Blocking disk I/O.
#pragma once
#include <string>

#include "common/result.h"

namespace stele::docker {

// Writes the tar of context_dir to tar_path (created or truncated, 0600).
// Fails naming the path on sockets, fifos, devices and unreadable files.
Result<void> write_build_context(const std::string& context_dir, const std::string& tar_path);

}  // namespace stele::docker
