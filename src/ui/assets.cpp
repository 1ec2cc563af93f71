#include "ui/assets.h"

#include <cstdlib>

namespace stele::ui {

// Defined in the generated assets_data.cpp (build dir).
extern const Asset kAssets[];
extern const size_t kAssetCount;

const Asset* find_asset(std::string_view path) {
  for (size_t i = 0; i < kAssetCount; ++i)
    if (kAssets[i].path == path) return &kAssets[i];
  return nullptr;
}

const Asset& index_asset() {
  const Asset* a = find_asset("index.html");
  if (!a) std::abort();  // embed.py always writes it: a broken build
  return *a;
}

}  // namespace stele::ui
