#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "store/store.h"
#include "store_contract.h"

using namespace stele;

namespace {
std::string temp_db() {
  auto dir = std::filesystem::temp_directory_path() / ("stele-store-" + std::to_string(getpid()) + "-" + std::to_string(rand()));
  std::filesystem::create_directories(dir);
  return (dir / "state.db").string();
}

struct SqliteBackend {
  static std::optional<std::string> unavailable() { return std::nullopt; }
  std::string fresh() { return temp_db(); }
  Result<std::unique_ptr<store::Store>> open(const std::string& path, size_t max_events) {
    return store::open_sqlite_store(path, max_events);
  }
};
}  // namespace

namespace stele::store::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreContract, SqliteBackend);
}

// A write acknowledged before kill -9 of the writing process is there after.
TEST(SqliteStore, AcknowledgedWriteSurvivesKill9) {
  auto path = temp_db();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    auto s = store::open_sqlite_store(path);
    if (!s || !(*s)->apply({{"apps", "/acked", std::string("{}")}}, {})) _exit(1);
    (void)!write(fds[1], "k", 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(fds[0], &c, 1), 1);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  auto s = store::open_sqlite_store(path);
  ASSERT_TRUE(s);
  auto v = (*s)->get("apps", "/acked");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->has_value());
}

TEST(SqliteStore, SnapshotIsAnOpenableCopyKeepingEventIds) {
  std::string path = temp_db();
  auto s = store::open_sqlite_store(path);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_TRUE((*s)->apply({{"apps", "/web", std::string("{\"id\":\"/web\"}")}}, {Json{{"type", "a"}}, Json{{"type", "b"}}}));
  std::string copy = std::filesystem::path(path).parent_path() / "snap.db";
  ASSERT_TRUE((*s)->snapshot(copy));
  // Writes after the snapshot are not in it.
  ASSERT_TRUE((*s)->apply({{"apps", "/late", std::string("{}")}}, {Json{{"type", "c"}}}));
  auto c = store::open_sqlite_store(copy);
  ASSERT_TRUE(c) << c.error().message;
  auto apps = (*c)->list("apps");
  ASSERT_TRUE(apps);
  ASSERT_EQ(apps->size(), 1u);
  EXPECT_EQ((*apps)[0].first, "/web");
  EXPECT_EQ((*c)->last_event_id(), 2);
  auto evs = (*c)->events_since(0, 10);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[1].value("type", ""), "b");
  // An existing file is never overwritten.
  auto again = (*s)->snapshot(copy);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
}
