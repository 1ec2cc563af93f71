// The agent's on-disk record buffer (spool) and the executor's line splitter,
// against real files in a temp dir.
#include "logs/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "logs/line_splitter.h"

namespace stele::logs {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> records_of(const SpoolBatch& b) {
  std::vector<std::string> out;
  for (const auto& e : b.entries) out.emplace_back(e.record);
  return out;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("stele-spool-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Reads everything from `pos` on, following segments, as the shipper does.
  std::vector<std::string> read_all(SpoolPos& pos, size_t max = 1 << 20) {
    SpoolReader r(dir_, "rec");
    std::vector<std::string> out;
    for (int i = 0; i < 1000; ++i) {
      auto b = r.read(pos, max);
      EXPECT_TRUE(b) << b.error().message;
      if (!b) break;
      for (auto& s : records_of(*b)) out.push_back(s);
      bool moved = !(b->end == pos);
      pos = b->end;
      if (!moved) break;
    }
    return out;
  }
  std::string dir_;
};

TEST_F(SpoolTest, RecordsComeBackInOrderWithTagAndTime) {
  {
    SpoolWriter w(dir_, "rec");
    w.append("stele.web.stdout", 111, "rec-a");
    w.append("stele.web.stderr", 222, "rec-b");
    w.flush();
  }
  SpoolReader r(dir_, "rec");
  auto b = r.read({}, 1 << 20);
  ASSERT_TRUE(b) << b.error().message;
  ASSERT_EQ(b->entries.size(), 2u);
  EXPECT_EQ(b->entries[0].tag, "stele.web.stdout");
  EXPECT_EQ(b->entries[0].time_ns, 111);
  EXPECT_EQ(b->entries[0].record, "rec-a");
  EXPECT_EQ(b->entries[1].tag, "stele.web.stderr");
  EXPECT_EQ(b->entries[1].time_ns, 222);
  EXPECT_FALSE(r.drained(b->end)) << "no end marker yet: more may come";
}

TEST_F(SpoolTest, SegmentsRollAndTheReaderFollowsThemToTheEnd) {
  SpoolWriterOptions o;
  o.segment_bytes = 200;
  SpoolWriter w(dir_, "rec", o);
  std::vector<std::string> want;
  for (int i = 0; i < 50; ++i) {
    want.push_back("record-" + std::to_string(i));
    w.append("t", i, want.back());
    w.flush();
  }
  w.finish();
  SpoolPos pos;
  EXPECT_EQ(read_all(pos, 100), want);
  SpoolReader r(dir_, "rec");
  EXPECT_TRUE(r.drained(pos));
  r.release_before(pos);
  int segments = 0;
  for (auto& e : fs::directory_iterator(dir_))
    if (e.path().filename().string().rfind("rec.0", 0) == 0) ++segments;
  EXPECT_EQ(segments, 1) << "shipped segments are deleted, the last is kept";
}

TEST_F(SpoolTest, ExactRangeResendReturnsTheSameRecords) {
  SpoolWriter w(dir_, "rec");
  for (int i = 0; i < 10; ++i) w.append("t", i, "r" + std::to_string(i));
  w.flush();
  SpoolReader r(dir_, "rec");
  auto first = r.read({}, 30);  // a few frames
  ASSERT_TRUE(first);
  ASSERT_GT(first->entries.size(), 0u);
  ASSERT_LT(first->entries.size(), 10u);
  // More was written since; the resend must not grow.
  for (int i = 10; i < 20; ++i) w.append("t", i, "r" + std::to_string(i));
  w.flush();
  auto again = r.read({}, 1 << 20, first->end.offset);
  ASSERT_TRUE(again);
  EXPECT_EQ(records_of(*again), records_of(*first));
  EXPECT_EQ(again->end, first->end);
}

TEST_F(SpoolTest, CursorSurvivesAndKeepsTheInflightRange) {
  auto none = load_spool_cursor(dir_, "rec");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->acked, SpoolPos{});
  EXPECT_FALSE(none->inflight_end);
  ASSERT_TRUE(save_spool_cursor(dir_, "rec", SpoolCursor{{3, 40}, 90}));
  auto c = load_spool_cursor(dir_, "rec");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->acked, (SpoolPos{3, 40}));
  EXPECT_EQ(c->inflight_end, 90u);
  ASSERT_TRUE(save_spool_cursor(dir_, "rec", SpoolCursor{{3, 90}, std::nullopt}));
  c = load_spool_cursor(dir_, "rec");
  EXPECT_FALSE(c->inflight_end);
}

TEST_F(SpoolTest, TornFrameOfAKilledWriterIsSkippedOnceTheSegmentIsComplete) {
  {
    SpoolWriter w(dir_, "rec");
    w.append("t", 1, "whole");
    w.flush();
  }
  SpoolReader r(dir_, "rec");
  {  // half a frame, as a writer killed inside write(2) would leave
    int fd = ::open(r.segment_path(1).c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "\x40\0\0\0abc", 7), 7);
    ::close(fd);
  }
  SpoolPos pos;
  EXPECT_EQ(read_all(pos), std::vector<std::string>{"whole"});
  EXPECT_EQ(pos.segment, 1u) << "not complete yet: the bytes may still be coming";
  {
    SpoolWriter w(dir_, "rec");  // a new writer starts a new segment
    w.append("t", 2, "after");
    w.finish();
  }
  EXPECT_EQ(read_all(pos), std::vector<std::string>{"after"});
  EXPECT_TRUE(r.drained(pos));
}

TEST_F(SpoolTest, AFullSpoolDropsAndThenSaysHowMany) {
  SpoolWriterOptions o;
  o.segment_bytes = 100;
  o.max_bytes = 300;
  SpoolWriter w(dir_, "rec", o);
  for (int i = 0; i < 40; ++i) {
    w.append("t", i, std::string(30, 'a'));
    w.flush();
  }
  EXPECT_GT(w.dropped(), 0u);
  // The shipper catches up and deletes what it shipped.
  SpoolPos pos;
  read_all(pos);
  SpoolReader(dir_, "rec").release_before(pos);
  ::unlink(SpoolReader(dir_, "rec").segment_path(pos.segment).c_str());
  w.append("t", 99, "fresh");
  w.finish();
  auto rest = read_all(pos);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_NE(rest[0].find("records dropped"), std::string::npos) << rest[0];
  EXPECT_EQ(rest[1], "fresh");
}

// ---- line splitter

std::vector<std::string> split(LineSplitter& s, std::initializer_list<std::string_view> chunks, bool flush) {
  std::vector<std::string> out;
  auto emit = [&](std::string_view l) { out.emplace_back(l); };
  for (auto c : chunks) s.feed(c, emit);
  if (flush) s.flush(emit);
  return out;
}

TEST(LineSplitter, SplitsLinesAndJoinsPartialOnes) {
  LineSplitter s;
  EXPECT_EQ(split(s, {"a\nb", "c\n\nd"}, false), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_TRUE(s.has_partial());
  EXPECT_EQ(split(s, {"e"}, true), (std::vector<std::string>{"de"}));
  EXPECT_FALSE(s.has_partial());
}

TEST(LineSplitter, CapsLongLinesWithAMarker) {
  LineSplitter s(8);
  auto out = split(s, {"0123456789abc", "def\nshort\n"}, false);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "01234567 [stele: line truncated, 8 more bytes dropped]");
  EXPECT_EQ(out[1], "short");
  EXPECT_EQ(s.truncated_lines(), 1u);
}

}  // namespace
}  // namespace stele::logs
