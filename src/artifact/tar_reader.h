// Decoding of ustar headers, shared by every tar Stele reads (slugs,
// `stele restore`'s backups): one header block, pax extended records, the
// padding after an entry's data. Pure; the callers own their byte sources.
#pragma once
#include <cstdint>
#include <string>

#include "common/result.h"

namespace stele::artifact {

inline constexpr size_t kTarBlock = 512;
// Extended headers (pax 'x', GNU 'L'/'K') larger than this are refused.
inline constexpr uint64_t kMaxTarMeta = 1u << 20;

struct TarEntry {
  std::string path, link;
  char type = '0';
  unsigned mode = 0;
  uint64_t size = 0;
};

// True for an all-zero block (the end of the archive).
bool tar_end_block(const char* block);
// A header block, its checksum verified (else an error saying so).
Result<TarEntry> decode_tar_header(const char* block);
// Applies pax "len key=value\n" records (path, linkpath, size) to `over`.
void apply_pax(const std::string& records, TarEntry& over);
// Bytes of padding after `size` bytes of data.
inline uint64_t tar_padding(uint64_t size) { return (kTarBlock - size % kTarBlock) % kTarBlock; }

}  // namespace stele::artifact
