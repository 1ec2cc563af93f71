// The embedded dashboard: what ui/embed.py compiled in is what index.html
// names, with types and caching the routes rely on.
#include "ui/assets.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

using stele::ui::Asset;
using stele::ui::find_asset;
using stele::ui::index_asset;

namespace {

// "/ui/app-<hash>.js" and "/ui/app-<hash>.css" named by index.html.
std::vector<std::string> referenced(std::string_view html) {
  std::vector<std::string> out;
  std::regex ref(R"re((?:src|href)="/ui/([^"]+)")re");
  std::string text(html);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), ref); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1]);
  return out;
}

bool is_gzip(std::string_view b) { return b.size() > 18 && b[0] == '\x1f' && b[1] == '\x8b'; }

}  // namespace

TEST(UiAssets, IndexIsRevalidatedAndNamesOneScriptAndOneStylesheet) {
  const Asset& index = index_asset();
  EXPECT_FALSE(index.immutable);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  auto refs = referenced(index.body);
  ASSERT_EQ(refs.size(), 2u) << index.body;
  for (const auto& name : refs) {
    const Asset* a = find_asset(name);
    ASSERT_NE(a, nullptr) << name << " is named by index.html but not embedded";
    EXPECT_TRUE(a->immutable) << name;
    EXPECT_GT(a->body.size(), 1000u) << name;
    bool js = name.ends_with(".js");
    EXPECT_EQ(a->content_type, js ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8");
  }
}

TEST(UiAssets, EveryAssetHasASmallerGzipTwin) {
  for (std::string_view name : {"index.html"}) {
    const Asset* a = find_asset(name);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(is_gzip(a->gzip));
  }
  for (const auto& name : referenced(index_asset().body)) {
    const Asset* a = find_asset(name);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(is_gzip(a->gzip)) << name;
    EXPECT_LT(a->gzip.size(), a->body.size()) << name;
  }
}

TEST(UiAssets, UnknownPathsAreNotFound) {
  EXPECT_EQ(find_asset(""), nullptr);
  EXPECT_EQ(find_asset("apps/hello"), nullptr);
  EXPECT_EQ(find_asset("../index.html"), nullptr);
  EXPECT_EQ(find_asset("/index.html"), nullptr);
}

TEST(UiAssets, TheBundleStaysUnder300KiBGzipped) {
  size_t total = index_asset().gzip.size();
  for (const auto& name : referenced(index_asset().body)) total += find_asset(name)->gzip.size();
  EXPECT_LT(total, 300u * 1024u);
}
