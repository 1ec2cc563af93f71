#include "metrics/series_index.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace stele::metrics {
namespace {

TEST(SeriesIndex, FindsWhatWasInsertedAcrossGrowth) {
  SeriesIndex idx;
  std::vector<std::string> names;
  for (uint32_t i = 0; i < 50'000; ++i) {
    names.push_back("stele.task.host" + std::to_string(i % 7) + ".app-r" + std::to_string(i) + ".0.cpu.usage");
    idx.insert(names.back(), i * 3);  // ids need not be dense
  }
  EXPECT_EQ(idx.size(), 50'000u);
  for (uint32_t i = 0; i < names.size(); ++i) ASSERT_EQ(idx.find(names[i]), i * 3) << names[i];
  EXPECT_FALSE(idx.find("stele.task.host0.app-r1.0.cpu.usag"));  // a prefix
  EXPECT_FALSE(idx.find("stele.task.host0.app-r1.0.cpu.usagex"));
  EXPECT_FALSE(idx.find(""));
}

TEST(SeriesIndex, BatchLookupAgreesWithSingleLookups) {
  SeriesIndex idx;
  std::vector<std::string> names;
  for (uint32_t i = 0; i < 3000; ++i) names.push_back("a.b.series" + std::to_string(i) + ".metric");
  for (uint32_t i = 0; i < names.size(); i += 2) idx.insert(names[i], i);  // every other one
  std::vector<uint32_t> out(names.size(), 7);
  idx.find_batch(names.size(), [&](size_t i) { return std::string_view(names[i]); }, out.data());
  for (uint32_t i = 0; i < names.size(); ++i)
    EXPECT_EQ(out[i], i % 2 == 0 ? i : SeriesIndex::kNone) << names[i];
  idx.find_batch(0, [&](size_t i) { return std::string_view(names[i]); }, out.data());  // nothing to do
}

TEST(SeriesIndex, NamesWithEqualLengthsAndSharedPrefixesStayApart) {
  SeriesIndex idx;
  idx.insert("x.1", 1);
  idx.insert("x.2", 2);
  idx.insert("", 3);  // the empty name is a name like any other
  EXPECT_EQ(idx.find("x.1"), 1u);
  EXPECT_EQ(idx.find("x.2"), 2u);
  EXPECT_EQ(idx.find(""), 3u);
  EXPECT_FALSE(idx.find("x.3"));
}

}  // namespace
}  // namespace stele::metrics
