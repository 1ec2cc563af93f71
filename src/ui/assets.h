// The dashboard's built files (ui/, bundled by ui/build.mjs), embedded in the
// binary by ui/embed.py. Read-only static data: safe from any thread.
#pragma once
#include <cstddef>
#include <string_view>

namespace stele::ui {

struct Asset {
  std::string_view path;          // "index.html", "app-<hash>.js", ...
  std::string_view content_type;  // with charset for text
  std::string_view body;
  std::string_view gzip;          // the same bytes gzip-compressed
  bool immutable;                 // content-hashed name: cacheable forever
};

// The asset at `path` (relative to /ui/, no leading '/'), or nullptr.
const Asset* find_asset(std::string_view path);
// The SPA's entry page (always present in a built binary).
const Asset& index_asset();

}  // namespace stele::ui
