#include "metrics/tsdb.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace stele::metrics;

namespace {

constexpr int64_t kT0 = 1'699'999'800;  // a multiple of 600

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/stele-tsdb-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

TsdbOptions options(const fs::path& dir, const std::string& retentions = "10s:1h,1m:1d",
                    Aggregation agg = Aggregation::average, double xff = 0.5) {
  TsdbOptions o;
  o.dir = dir.string();
  o.schemas = Schemas(make_schema("test", ".*", parse_retentions(retentions).value(), agg, xff).value());
  o.max_series = 100;
  return o;
}

std::vector<double> values(const Series& s) { return s.values; }

bool none(double v) { return std::isnan(v); }

}  // namespace

TEST(Tsdb, PointsAreReadBackAtTheirAlignedSlots) {
  TempDir d;
  Tsdb db(options(d.path));
  ASSERT_TRUE(db.open());
  std::vector<Point> pts = {{"a.b.c", 1.5, kT0 + 3}, {"a.b.c", 2.5, kT0 + 10}, {"a.b.c", 4, kT0 + 30}};
  auto r = db.append(pts, kT0 + 40);
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_TRUE(r.error.empty());
  auto s = db.fetch_one("a.b.c", kT0 - 10, kT0 + 30, kT0 + 40);
  ASSERT_TRUE(s);
  // whisper's window: both ends aligned down and moved one step later, so
  // from kT0 - 10 to kT0 + 30 reads the slots kT0 .. kT0 + 30.
  EXPECT_EQ(s->start, kT0);
  EXPECT_EQ(s->step, 10);
  ASSERT_EQ(s->values.size(), 4u);
  EXPECT_EQ(s->values[0], 1.5);  // kT0+3 lands in the kT0 slot
  EXPECT_EQ(s->values[1], 2.5);
  EXPECT_TRUE(none(s->values[2]));
  EXPECT_EQ(s->values[3], 4);
}

TEST(Tsdb, OlderRangesReadTheRollupWithItsAggregation) {
  TempDir d;
  Tsdb db(options(d.path, "10s:1h,1m:1d", Aggregation::max));
  ASSERT_TRUE(db.open());
  std::vector<Point> pts;
  for (int i = 0; i < 6; ++i) pts.push_back({"m.x", double(i), kT0 + 10 * i});
  for (int i = 0; i < 2; ++i) pts.push_back({"m.x", 100.0 + i, kT0 + 60 + 10 * i});  // 2 of 6: under xff 0.5
  db.append(pts, kT0 + 130);
  int64_t later = kT0 + 3 * 3600;  // the 10s archive no longer covers the range
  auto s = db.fetch_one("m.x", kT0 - 60, kT0 + 60, later);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->step, 60);
  ASSERT_EQ(s->values.size(), 2u);
  EXPECT_EQ(s->start, kT0);
  EXPECT_EQ(s->values[0], 5);      // max of 0..5 at kT0
  EXPECT_TRUE(none(s->values[1]));  // only 2 of 6 known: xff 0.5 not met
}

TEST(Tsdb, PointsOlderThanEveryRetentionAreDroppedAndCounted) {
  TempDir d;
  Tsdb db(options(d.path));
  ASSERT_TRUE(db.open());
  std::vector<Point> pts = {{"old", 1, kT0}};
  db.append(pts, kT0 + 2 * 86400);
  db.fetch_one("old", kT0, kT0 + 10, kT0 + 2 * 86400);  // applies pending
  EXPECT_EQ(db.stats().points_dropped_old, 1u);
}

TEST(Tsdb, SeriesLimitRefusesNewSeriesWithAClearErrorAndKeepsOldOnes) {
  TempDir d;
  auto o = options(d.path);
  o.max_series = 2;
  Tsdb db(o);
  ASSERT_TRUE(db.open());
  std::vector<Point> pts = {{"s1", 1, kT0}, {"s2", 2, kT0}, {"s3", 3, kT0}, {"s1", 4, kT0 + 10}};
  auto r = db.append(pts, kT0 + 20);
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_EQ(r.refused, 1u);
  EXPECT_NE(r.error.find("series limit 2 reached"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("'s3'"), std::string::npos) << r.error;
  EXPECT_EQ(db.stats().series_refused, 1u);
  auto s = db.fetch_one("s1", kT0 - 10, kT0 + 20, kT0 + 20);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->values[1], 4);
}

TEST(Tsdb, BadTimestampsAreRefused) {
  TempDir d;
  Tsdb db(options(d.path));
  ASSERT_TRUE(db.open());
  std::vector<Point> pts = {{"t", 1, 0}, {"t", 1, int64_t(1) << 33}};
  auto r = db.append(pts, kT0);
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_EQ(r.refused, 2u);
  EXPECT_NE(r.error.find("outside"), std::string::npos);
}

TEST(Tsdb, FindWalksTheTreeWithGlobs) {
  TempDir d;
  Tsdb db(options(d.path));
  ASSERT_TRUE(db.open());
  std::vector<Point> pts = {{"a.b.c", 1, kT0}, {"a.b", 1, kT0}, {"a.x.c", 1, kT0}, {"z.q", 1, kT0}};
  db.append(pts, kT0);
  auto f = db.find(GlobPattern::compile("a.*").value());
  std::vector<FindNode> want = {{"a.b", false}, {"a.b", true}, {"a.x", false}};
  EXPECT_EQ(f, want);
  auto l = db.leaves(GlobPattern::compile("{a,z}.*.c").value());
  EXPECT_EQ(l, (std::vector<std::string>{"a.b.c", "a.x.c"}));
  auto series = db.fetch(GlobPattern::compile("a.[bx].c").value(), kT0 - 10, kT0 + 10, kT0 + 10);
  ASSERT_TRUE(series);
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ((*series)[1].name, "a.x.c");
  EXPECT_EQ((*series)[1].path_expression, "a.[bx].c");
}

// A process that appends, waits for durability and dies without closing:
// everything synced is there after reopening (WAL replay), and the store
// keeps working (torn WAL tail cut).
TEST(Tsdb, SyncedPointsSurviveACrash) {
  TempDir d;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Tsdb db(options(d.path));
    if (!db.open()) _exit(2);
    for (int i = 0; i < 100; ++i) {
      std::string name = "crash.s" + std::to_string(i);
      std::vector<Point> pts = {{name, double(i), kT0}, {name, double(i) + 0.5, kT0 + 10}};
      db.append(pts, kT0 + 20);
    }
    if (!db.sync()) _exit(3);
    _exit(0);  // no close(): no checkpoint
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // A torn frame at the end of the last segment, as a crash mid-write leaves.
  fs::path last;
  for (auto& e : fs::directory_iterator(d.path / "wal")) last = std::max(last, e.path());
  std::ofstream(last, std::ios::app) << "STSD-torn";
  Tsdb db(options(d.path));
  ASSERT_TRUE(db.open());
  EXPECT_EQ(db.stats().series, 100u);
  auto s = db.fetch_one("crash.s42", kT0 - 10, kT0 + 10, kT0 + 20);
  ASSERT_TRUE(s);
  EXPECT_EQ(values(*s), (std::vector<double>{42, 42.5}));
  std::vector<Point> more = {{"crash.s42", 7, kT0 + 20}};
  EXPECT_EQ(db.append(more, kT0 + 25).accepted, 1u);
  ASSERT_TRUE(db.checkpoint());
  db.close();
  Tsdb again(options(d.path));
  ASSERT_TRUE(again.open());
  auto s2 = again.fetch_one("crash.s42", kT0 - 10, kT0 + 20, kT0 + 30);
  ASSERT_TRUE(s2);
  EXPECT_EQ(values(*s2), (std::vector<double>{42, 42.5, 7}));
}

TEST(Tsdb, DiskIsBoundedByTheSeriesLimit) {
  TempDir d;
  auto o = options(d.path, "10s:6h,1m:7d");
  o.max_series = 10;
  Tsdb db(o);
  ASSERT_TRUE(db.open());
  // 2160 + 10080 slots, 12 bytes each (8-byte aligned arrays), 10 series.
  EXPECT_EQ(db.stats().data_bytes_bound, ((2160 * 4 + 2160 * 8 + 10080 * 4 + 10080 * 8) * 10 + 4095) / 4096 * 4096);
}
