#include "artifact/tar_reader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace stele::artifact {

namespace {

std::string field(const char* b, size_t off, size_t len) { return std::string(b + off, strnlen(b + off, len)); }

uint64_t octal(const char* b, size_t off, size_t len) {
  uint64_t v = 0;
  size_t i = off;
  while (i < off + len && b[i] == ' ') ++i;  // leading spaces (old tars)
  for (; i < off + len && b[i] >= '0' && b[i] <= '7'; ++i) v = v * 8 + (b[i] - '0');
  return v;
}

}  // namespace

bool tar_end_block(const char* block) {
  return std::all_of(block, block + kTarBlock, [](char c) { return c == 0; });
}

Result<TarEntry> decode_tar_header(const char* b) {
  unsigned sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(b[i]);
  if (sum != octal(b, 148, 8)) return fail(std::string("corrupt tar header (bad checksum)"));
  std::string prefix = field(b, 345, 155), name = field(b, 0, 100);
  return TarEntry{prefix.empty() ? name : prefix + "/" + name, field(b, 157, 100), b[156],
                  static_cast<unsigned>(octal(b, 100, 8)), octal(b, 124, 12)};
}

void apply_pax(const std::string& data, TarEntry& over) {
  for (size_t i = 0; i < data.size();) {
    size_t sp = data.find(' ', i);
    if (sp == std::string::npos) return;
    size_t len = std::strtoull(data.c_str() + i, nullptr, 10);
    if (len == 0 || i + len > data.size() || sp + 2 > i + len) return;
    std::string rec = data.substr(sp + 1, i + len - sp - 2);
    size_t eq = rec.find('=');
    std::string key = rec.substr(0, eq), value = eq == std::string::npos ? "" : rec.substr(eq + 1);
    if (key == "path") over.path = value;
    if (key == "linkpath") over.link = value;
    if (key == "size") over.size = std::strtoull(value.c_str(), nullptr, 10);
    i += len;
  }
}

}  // namespace stele::artifact
