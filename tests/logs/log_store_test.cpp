// LogStore against real files in a temp dir.
#include "logs/log_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "test_support.h"

namespace stele::logs {
namespace {
using test_support::eventually;
using test_support::pack;
namespace fs = std::filesystem;

constexpr int64_t kSec = 1'000'000'000;

OwnedLogEntry entry(std::string tag, int64_t t, Json rec) { return {std::move(tag), t, pack(rec)}; }

std::vector<LogEntry> views(const std::vector<OwnedLogEntry>& es) {
  std::vector<LogEntry> out;
  for (const auto& e : es) out.push_back(e.view());
  return out;
}

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stele-logstore-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    opt_.clock = &clock_;
    opt_.wal_rewrite_bytes = 64 << 10;  // exercise wal rewrites in small tests
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<LogStore> open_store() {
    auto s = std::make_unique<LogStore>(dir_.string(), opt_);
    auto r = s->open();
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return s;
  }
  AppendResult append(LogStore& s, const std::vector<OwnedLogEntry>& es, std::string_view chunk = {}) {
    auto v = views(es);
    auto r = s.append(v, chunk);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : AppendResult{};
  }
  std::vector<LogResult> query(const LogStore& s, LogQuery q) {
    auto r = s.query(q);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::vector<LogResult>{};
  }
  // n records of app `app`, times start, start+1s, ..., field "n" = first+i.
  std::vector<OwnedLogEntry> lines(const std::string& app, int n, int64_t start, int first = 0) {
    std::vector<OwnedLogEntry> es;
    for (int i = 0; i < n; ++i)
      es.push_back(entry("stele." + app + ".stdout", start + i * kSec,
                         {{"log", "line " + std::to_string(first + i)}, {"n", first + i}, {"task", "t1"}}));
    return es;
  }

  fs::path dir_;
  SimulatedClock clock_;
  LogStoreOptions opt_;
};

TEST_F(LogStoreTest, RoundTripSurvivesReopen) {
  {
    auto s = open_store();
    auto r = append(*s, {entry("stele.web.stdout", 5 * kSec, {{"log", "hello"}, {"stream", "stdout"}}),
                         entry("stele.web.stderr", 6 * kSec, {{"log", "oops"}, {"stream", "stderr"}})});
    EXPECT_EQ(r.first_seq, 1u);
    EXPECT_EQ(r.last_seq, 2u);
    EXPECT_EQ(r.stored, 2u);
  }
  auto s = open_store();
  auto got = query(*s, {});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].stream_key, "app.web");
  EXPECT_EQ(got[0].seq, 1u);
  EXPECT_EQ(got[0].tag, "stele.web.stdout");
  EXPECT_EQ(got[0].time_ns, 5 * kSec);
  EXPECT_EQ(got[0].record, (Json{{"log", "hello"}, {"stream", "stdout"}}));
  EXPECT_EQ(got[1].record["log"], "oops");
  EXPECT_EQ(append(*s, lines("web", 1, 7 * kSec)).first_seq, 3u);  // sequence continues after reopen
}

TEST_F(LogStoreTest, StreamsPerAppAndPerExternalTag) {
  EXPECT_EQ(LogStore::stream_key_for_tag("stele.shop_web.pipeline"), "app.shop_web");
  EXPECT_EQ(LogStore::stream_key_for_tag("stele.x"), "tag.stele.x");
  EXPECT_EQ(LogStore::stream_key_for_tag("docker/nginx ../x"), "tag.docker_nginx_.._x");
  auto s = open_store();
  append(*s, {entry("stele.shop_web.stdout", 1 * kSec, {{"log", "a"}}), entry("nginx.access", 2 * kSec, {{"log", "b"}}),
              entry("stele.shop_web.pipeline", 3 * kSec, {{"log", "c"}}), entry("docker/x", 4 * kSec, {{"log", "d"}})});
  ASSERT_TRUE(s->flush());
  EXPECT_TRUE(fs::is_directory(dir_ / "app.shop_web"));
  EXPECT_TRUE(fs::is_directory(dir_ / "tag.nginx.access"));
  EXPECT_TRUE(fs::is_directory(dir_ / "tag.docker_x"));

  auto app = query(*s, {.app = "/shop/web"});
  ASSERT_EQ(app.size(), 2u);
  EXPECT_EQ(app[0].record["log"], "a");
  EXPECT_EQ(app[1].record["log"], "c");
  auto pipeline = query(*s, {.tag = "stele.shop_web.pipeline"});
  ASSERT_EQ(pipeline.size(), 1u);
  EXPECT_EQ(pipeline[0].record["log"], "c");
  auto ext = query(*s, {.tag = "docker/x"});
  ASSERT_EQ(ext.size(), 1u);
  EXPECT_EQ(ext[0].stream_key, "tag.docker_x");
  EXPECT_TRUE(query(*s, {.app = "shop_web", .tag = "nginx.access"}).empty());
}

TEST_F(LogStoreTest, FiltersOnFieldsTextTimeLimitAndCursor) {
  auto s = open_store();
  append(*s, {entry("stele.web.stdout", 1 * kSec, {{"log", "GET /a 200"}, {"task", "web-r1.0.1"}, {"stream", "stdout"}}),
              entry("stele.web.stderr", 2 * kSec, {{"log", "panic: nil map"}, {"task", "web-r1.0.1"}, {"stream", "stderr"}}),
              entry("stele.web.stdout", 3 * kSec, {{"log", "GET /b 500"}, {"task", "web-r1.1.1"}, {"stream", "stdout"}}),
              entry("metrics", 4 * kSec, {{"value", 42}, {"name", "cpu"}})});
  auto logs_of = [](const std::vector<LogResult>& rs) {
    std::vector<std::string> out;
    for (const auto& r : rs) out.push_back(r.record.value("log", r.record.dump()));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(logs_of(query(*s, {.task = "web-r1.0.1"})), (V{"GET /a 200", "panic: nil map"}));
  EXPECT_EQ(logs_of(query(*s, {.stream = "stdout"})), (V{"GET /a 200", "GET /b 500"}));
  EXPECT_EQ(logs_of(query(*s, {.grep = "GET"})), (V{"GET /a 200", "GET /b 500"}));
  EXPECT_EQ(logs_of(query(*s, {.grep = "\"name\":\"cpu\""})).size(), 1u);  // no "log": whole JSON
  EXPECT_EQ(logs_of(query(*s, {.regex = " 5[0-9]{2}$"})), (V{"GET /b 500"}));
  EXPECT_EQ(logs_of(query(*s, {.since_ns = 2 * kSec, .until_ns = 3 * kSec})), (V{"panic: nil map"}));
  EXPECT_EQ(logs_of(query(*s, {.limit = 2})).size(), 2u);
  EXPECT_EQ(query(*s, {.limit = 2})[0].time_ns, 3 * kSec);  // newest two, in time order
  EXPECT_EQ(query(*s, {.since_ns = 0, .limit = 2})[1].time_ns, 2 * kSec);  // oldest two from since
  auto follow = query(*s, {.limit = 2, .after = 2});
  ASSERT_EQ(follow.size(), 2u);
  EXPECT_EQ(follow[0].seq, 3u);
  EXPECT_EQ(follow[1].seq, 4u);
}

TEST_F(LogStoreTest, BadRegexIsAClearError) {
  auto s = open_store();
  auto r = s->query({.regex = "(unclosed"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 400);
  EXPECT_NE(r.error().message.find("regex"), std::string::npos);
  EXPECT_NE(r.error().message.find("(unclosed"), std::string::npos);
}

TEST_F(LogStoreTest, TimeRangeQueriesSkipBlocksOutsideTheRange) {
  opt_.block_bytes = 1024;
  auto s = open_store();
  for (int b = 0; b < 20; ++b) append(*s, lines("web", 20, int64_t(b) * 100 * kSec, b * 20));
  ASSERT_TRUE(s->flush());
  auto segs = s->segment_files_for_test("app.web");
  ASSERT_EQ(segs.size(), 1u);
  // Corrupt the first block's compressed bytes: only a query touching it may fail.
  {
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(9 + 44 + 10);
    f.write("\xff\xff\xff\xff", 4);
  }
  auto late = query(*s, {.since_ns = 1000 * kSec, .until_ns = 1100 * kSec});
  ASSERT_EQ(late.size(), 20u);
  EXPECT_EQ(late.front().record["n"], 200);
  EXPECT_EQ(query(*s, {.limit = 5}).back().record["n"], 399);  // newest: old blocks not needed
  auto all = s->query({.since_ns = 0});
  ASSERT_FALSE(all);
  EXPECT_NE(all.error().message.find("corrupt block"), std::string::npos);
}

TEST_F(LogStoreTest, TornTailsAreTruncatedAtRecovery) {
  opt_.block_bytes = 512;
  {
    auto s = open_store();
    append(*s, lines("web", 30, 0, 0));   // goes to blocks
    append(*s, lines("web", 2, 100 * kSec, 30));  // stays in the wal tail
  }
  auto segs = [&] {
    std::vector<fs::path> v;
    for (auto& e : fs::directory_iterator(dir_ / "app.web"))
      if (e.path().extension() == ".seg") v.push_back(e.path());
    return v;
  }();
  ASSERT_FALSE(segs.empty());
  auto junk = [](const fs::path& p, std::string_view bytes) {
    std::ofstream f(p, std::ios::app | std::ios::binary);
    f.write(bytes.data(), std::streamsize(bytes.size()));
  };
  // A partial frame header in the wal, and a frame with a bad checksum in the segment.
  junk(dir_ / "app.web" / "wal", std::string("\x40\x00\x00\x00\x12\x34", 6));
  junk(segs.back(), std::string("\x05\x00\x00\x00\xde\xad\xbe\xef\x03hello", 14));
  auto before = fs::file_size(dir_ / "app.web" / "wal");
  {
    auto s = open_store();
    EXPECT_EQ(fs::file_size(dir_ / "app.web" / "wal"), before - 6);
    auto got = query(*s, {.limit = 100, .after = 0});
    ASSERT_EQ(got.size(), 32u);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(got[i].record["n"], i);
    append(*s, lines("web", 1, 200 * kSec, 32));
  }
  auto s = open_store();
  auto got = query(*s, {.limit = 100, .after = 0});
  ASSERT_EQ(got.size(), 33u);
  EXPECT_EQ(got.back().record["n"], 32);
}

TEST_F(LogStoreTest, AckedRecordsSurviveKill9) {
  opt_.block_bytes = 8 << 10;  // many blocks and wal rewrites while the child runs
  opt_.segment_bytes = 64 << 10;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    SystemClock clock;
    LogStoreOptions o = opt_;
    o.clock = &clock;
    LogStore s(dir_.string(), o);
    if (!s.open()) ::_exit(2);
    for (int n = 0;; n += 100) {
      std::vector<OwnedLogEntry> es;
      for (int i = 0; i < 100; ++i)
        es.push_back({"stele.web.stdout", int64_t(n + i), pack({{"log", std::string(40, 'x')}, {"n", n + i}})});
      auto v = views(es);
      if (!s.append(v)) ::_exit(3);
      int last = n + 99;  // acked: tell the parent
      if (::write(fds[1], &last, sizeof last) != sizeof last) ::_exit(4);
    }
  }
  ::close(fds[1]);
  int last_acked = -1, v = 0;
  for (int acks = 0; acks < 300 && ::read(fds[0], &v, sizeof v) == sizeof v; ++acks) last_acked = v;
  ::kill(pid, SIGKILL);
  while (::read(fds[0], &v, sizeof v) == sizeof v) last_acked = v;  // acks already in flight
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GE(last_acked, 99);

  auto s = open_store();
  auto got = query(*s, {.limit = 10'000'000, .after = 0});
  ASSERT_GE(int(got.size()), last_acked + 1);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].record["n"], int(i)) << "gap or duplicate at " << i;
    if (i > 0) ASSERT_GT(got[i].seq, got[i - 1].seq);
  }
  // The recovered store keeps working.
  EXPECT_EQ(append(*s, lines("web", 1, 0)).first_seq, got.back().seq + 1);
}

TEST_F(LogStoreTest, ResentChunkIsStoredOnce) {
  opt_.block_bytes = 256;
  {
    auto s = open_store();
    auto first = append(*s, lines("web", 5, 0), "chunk-1");
    EXPECT_EQ(first.stored, 5u);
    auto again = append(*s, lines("web", 5, 0), "chunk-1");
    EXPECT_EQ(again.stored, 0u);
    EXPECT_EQ(again.duplicates, 5u);
    EXPECT_EQ(append(*s, lines("web", 5, 0), "chunk-2").stored, 5u);
    for (int i = 0; i < 20; ++i) append(*s, lines("web", 5, 0));  // blocks cut, wal rewritten
    ASSERT_TRUE(s->flush());
  }
  auto s = open_store();  // the dedup window is persisted
  EXPECT_EQ(append(*s, lines("web", 5, 0), "chunk-1").duplicates, 5u);
  EXPECT_EQ(append(*s, lines("web", 5, 0), "chunk-2").duplicates, 5u);
  EXPECT_EQ(query(*s, {.limit = 1000}).size(), 110u);
}

TEST_F(LogStoreTest, ChunkCutBetweenStreamsIsCompletedOnResend) {
  auto s = open_store();
  // "chunk-9" reached stream a before a crash (simulated: stored for a alone).
  append(*s, {entry("stele.a.stdout", 1, {{"log", "a"}})}, "chunk-9");
  auto r = append(*s, {entry("stele.a.stdout", 1, {{"log", "a"}}), entry("stele.b.stdout", 1, {{"log", "b"}})}, "chunk-9");
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(query(*s, {.app = "a"}).size(), 1u);
  EXPECT_EQ(query(*s, {.app = "b"}).size(), 1u);
}

TEST_F(LogStoreTest, RetentionBySizeDeletesOldestSegments) {
  opt_.block_bytes = 4 << 10;
  opt_.retention.max_bytes = 64 << 10;  // segments of 8 KiB (max_bytes / 8)
  auto s = open_store();
  for (int b = 0; b < 100; ++b) {
    clock_.advance_ms(1000);
    append(*s, lines("web", 50, int64_t(b) * 50 * kSec, b * 50));
    append(*s, lines("api", 50, int64_t(b) * 50 * kSec, b * 50));
  }
  uint64_t before = s->disk_bytes();
  ASSERT_GT(before, 64u << 10);
  ASSERT_TRUE(s->enforce_retention());
  // Bound: max_bytes plus, per stream, the active segment (8 KiB + a block) and
  // the wal (rewritten past 4 blocks + 64 KiB).
  const uint64_t per_stream = (8u << 10) + (4u << 10) + 4 * (4u << 10) + (64u << 10) + (8u << 10);
  EXPECT_LE(s->disk_bytes(), (64u << 10) + 2 * per_stream);
  EXPECT_LT(s->disk_bytes(), before);
  auto oldest = query(*s, {.app = "web", .since_ns = 0, .limit = 1});
  ASSERT_EQ(oldest.size(), 1u);
  EXPECT_GT(oldest[0].record["n"].get<int>(), 0);  // the start is gone...
  EXPECT_EQ(query(*s, {.app = "web", .limit = 1})[0].record["n"], 4999);  // ...the newest is kept
  // Deleted segments stay deleted across a reopen.
  auto n = query(*s, {.limit = 100000}).size();
  s.reset();
  EXPECT_EQ(open_store()->query({.limit = 100000})->size(), n);
}

TEST_F(LogStoreTest, RetentionByAgeUsesTheInjectedClock) {
  opt_.block_bytes = 1024;
  opt_.segment_age_ms = 3600'000;
  opt_.retention.max_age_ms = 86'400'000;
  auto s = open_store();
  append(*s, lines("old", 50, 0));
  append(*s, lines("web", 50, 0));
  ASSERT_TRUE(s->flush());
  clock_.advance_ms(2 * 86'400'000);
  append(*s, lines("web", 50, 100 * kSec, 50));
  ASSERT_TRUE(s->flush());
  ASSERT_TRUE(s->enforce_retention());
  EXPECT_TRUE(query(*s, {.app = "old"}).empty());  // idle stream: its segment rolled and expired
  auto web = query(*s, {.app = "web", .limit = 1000});
  ASSERT_EQ(web.size(), 50u);  // the first 50 expired with their segment
  EXPECT_EQ(web.front().record["n"], 50);
}

TEST(RetentionPolicyTest, ParsesAgeAndSize) {
  auto r = parse_retention("7d,10GB");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->max_age_ms, 7 * 86'400'000LL);
  EXPECT_EQ(r->max_bytes, 10'000'000'000ULL);
  EXPECT_EQ(parse_retention("512MiB")->max_bytes, 512ull << 20);
  EXPECT_EQ(parse_retention("12h")->max_age_ms, 12 * 3'600'000LL);
  EXPECT_EQ(parse_retention(" 1GiB , 30m ")->max_age_ms, 30 * 60'000LL);
}

TEST(RetentionPolicyTest, BadInputIsAClearError) {
  for (const char* bad : {"", "7", "7x", "d7", "7d,", ",10GB", "7d,8d", "1GB,2GB", "-1d", "7 d", "99999999999999999999d"}) {
    auto r = parse_retention(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, 400);
    EXPECT_EQ(r.error().message.rfind("--log-retention: ", 0), 0u) << r.error().message;
  }
  EXPECT_NE(parse_retention("7x").error().message.find("unknown unit in \"7x\""), std::string::npos);
}

TEST_F(LogStoreTest, WaitForChangeWakesOnAppend) {
  auto s = open_store();
  uint64_t seen = s->change_count();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    append(*s, lines("web", 1, 0));
  });
  uint64_t now = s->wait_for_change(seen, std::chrono::seconds(10));
  writer.join();
  EXPECT_NE(now, seen);
  EXPECT_EQ(query(*s, {.after = 0}).size(), 1u);
  EXPECT_EQ(s->wait_for_change(now, std::chrono::milliseconds(1)), now);  // times out unchanged
}

TEST_F(LogStoreTest, ConcurrentReadersSeeEveryAckedRecord) {
  opt_.block_bytes = 2048;
  auto s = open_store();
  std::atomic<int> acked{0};
  std::atomic<bool> bad{false};
  std::thread reader([&] {
    while (acked.load() < 2000) {
      int want = acked.load();
      auto r = s->query({.limit = 100000, .after = 0});
      if (!r || int(r->size()) < want) bad = true;
    }
  });
  for (int b = 0; b < 20; ++b) {
    append(*s, lines("web", 100, 0, b * 100));
    acked = (b + 1) * 100;
  }
  reader.join();
  EXPECT_FALSE(bad);
}

// Group commit: several requests, one write and one fdatasync per stream.
TEST_F(LogStoreTest, BatchSharesOneSyncPerStreamAndKeepsRequestOrder) {
  auto s = open_store();
  auto web1 = lines("web", 10, 0, 0), web2 = lines("web", 10, 10 * kSec, 10), api = lines("api", 5, 0);
  std::vector<OwnedLogEntry> mixed = lines("web", 3, 20 * kSec, 20);
  for (auto& e : lines("api", 2, 5 * kSec, 5)) mixed.push_back(std::move(e));
  auto v1 = views(web1), v2 = views(web2), v3 = views(api), v4 = views(mixed);
  std::vector<AppendRequest> batch = {{v1, "w1"}, {v2, "w2"}, {v3, "a1"}, {v4, "m1"}};
  auto before = s->stats();
  auto res = s->append_batch(batch);
  auto after = s->stats();
  EXPECT_EQ(after.batches - before.batches, 1u);
  EXPECT_EQ(after.wal_syncs - before.wal_syncs, 2u);  // app.web and app.api, once each
  EXPECT_EQ(after.appends - before.appends, 4u);
  ASSERT_EQ(res.size(), 4u);
  for (const auto& r : res) ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(res[0]->stored, 10u);
  EXPECT_EQ(res[3]->stored, 5u);
  for (size_t i = 0; i + 1 < res.size(); ++i) EXPECT_LT(res[i]->last_seq, res[i + 1]->first_seq) << "request " << i;
  EXPECT_EQ(s->last_seq(), res[3]->last_seq);
  // Each stream holds its requests in request order.
  auto web = query(*s, {.app = "web", .limit = 100, .after = 0});
  ASSERT_EQ(web.size(), 23u);
  for (size_t i = 0; i < web.size(); ++i) EXPECT_EQ(web[i].record["n"], int(i));
  EXPECT_EQ(query(*s, {.app = "api", .limit = 100}).size(), 7u);
}

TEST_F(LogStoreTest, BatchDedupsPerRequestAndFailsOnlyTheBadOne) {
  auto s = open_store();
  auto a = lines("web", 4, 0, 0), b = lines("web", 4, 0, 100);
  auto va = views(a), vb = views(b);
  ASSERT_TRUE(s->append(va, "seen-before"));
  std::string too_long(LogStore::kMaxChunkIdBytes + 1, 'x');
  std::vector<AppendRequest> batch = {
      {va, "seen-before"},  // stored by an earlier call
      {vb, "new"},          // stored
      {vb, "new"},          // the same chunk again in this batch: a resend racing its first copy
      {va, too_long},       // refused alone
      {vb, ""},             // no chunk id: no dedup
  };
  auto res = s->append_batch(batch);
  ASSERT_EQ(res.size(), 5u);
  ASSERT_TRUE(res[0] && res[1] && res[2] && res[4]);
  EXPECT_EQ(res[0]->stored, 0u);
  EXPECT_EQ(res[0]->duplicates, 4u);
  EXPECT_EQ(res[1]->stored, 4u);
  EXPECT_EQ(res[2]->stored, 0u);
  EXPECT_EQ(res[2]->duplicates, 4u);
  ASSERT_FALSE(res[3]);
  EXPECT_EQ(res[3].error().code, 400);
  EXPECT_EQ(res[4]->stored, 4u);
  EXPECT_EQ(query(*s, {.limit = 100}).size(), 12u);
  // The batch's chunk ids are remembered like append()'s, across a reopen too.
  ASSERT_TRUE(s->flush());
  s.reset();
  s = open_store();
  EXPECT_EQ(append(*s, b, "new").duplicates, 4u);
}

TEST_F(LogStoreTest, HugeBatchIsSplitIntoFramesAndBlocksAndSurvivesReopen) {
  opt_.block_bytes = 64 << 10;
  std::vector<OwnedLogEntry> big;
  std::string filler(1000, 'x');
  for (int i = 0; i < 18000; ++i)  // ~18 MiB of records: more than one wal frame's worth
    big.push_back(entry("stele.web.stdout", int64_t(i) * kSec, {{"log", filler}, {"n", i}}));
  {
    auto s = open_store();
    auto v = views(big);
    std::vector<AppendRequest> batch = {{v, "big"}};
    auto res = s->append_batch(batch);
    ASSERT_TRUE(res[0]);
    EXPECT_EQ(res[0]->stored, 18000u);
    s->compact();  // cut into blocks of ~64 KiB
    auto q = query(*s, {.since_ns = 100 * kSec, .until_ns = 105 * kSec, .limit = 100});
    ASSERT_EQ(q.size(), 5u);
    EXPECT_EQ(q[0].record["n"], 100);
  }
  auto s = open_store();  // kill -9 equivalent: nothing flushed since, the wal frames recover
  auto all = query(*s, {.limit = 100000, .after = 0});
  ASSERT_EQ(all.size(), 18000u);
  for (size_t i = 0; i < all.size(); i += 997) EXPECT_EQ(all[i].record["n"], int(i));
  EXPECT_EQ(append(*s, big, "big").duplicates, 18000u);
}

}  // namespace
}  // namespace stele::logs
