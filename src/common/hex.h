// Hex digits, for the parsers that read them (percent-encoding, chunk sizes,
// git pkt-line lengths). Header-only so fuzz targets need no extra sources.
#pragma once

namespace stele {

// 0..15 for [0-9a-fA-F], else -1.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace stele
