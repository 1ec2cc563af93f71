#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "store/store.h"

using namespace stele;

namespace {
std::string temp_db() {
  auto dir = std::filesystem::temp_directory_path() / ("stele-store-" + std::to_string(getpid()) + "-" + std::to_string(rand()));
  std::filesystem::create_directories(dir);
  return (dir / "state.db").string();
}
}  // namespace

TEST(SqliteStore, DocumentsSurviveReopen) {
  auto path = temp_db();
  {
    auto s = store::open_sqlite_store(path);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_TRUE((*s)->apply({{"apps", "/web", std::string(R"({"id":"/web"})")}}, {}));
  }
  auto s = store::open_sqlite_store(path);
  ASSERT_TRUE(s);
  auto v = (*s)->get("apps", "/web");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, R"({"id":"/web"})");
  auto all = (*s)->list("apps");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
}

TEST(SqliteStore, DeleteRemovesDocument) {
  auto s = store::open_sqlite_store(temp_db());
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->apply({{"apps", "a", std::string("1")}, {"apps", "b", std::string("2")}}, {}));
  ASSERT_TRUE((*s)->apply({{"apps", "a", std::nullopt}}, {}));
  auto all = (*s)->list("apps");
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].first, "b");
}

TEST(SqliteStore, EventIdsIncreaseAndResumeAfterReopen) {
  auto path = temp_db();
  int64_t last = 0;
  {
    auto s = store::open_sqlite_store(path);
    std::vector<int64_t> ids;
    ASSERT_TRUE((*s)->apply({}, {Json{{"type", "a"}}, Json{{"type", "b"}}}, &ids));
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_LT(ids[0], ids[1]);
    last = ids[1];
    EXPECT_EQ((*s)->last_event_id(), last);
  }
  auto s = store::open_sqlite_store(path);
  EXPECT_EQ((*s)->last_event_id(), last);
  std::vector<int64_t> ids;
  ASSERT_TRUE((*s)->apply({}, {Json{{"type", "c"}}}, &ids));
  EXPECT_GT(ids[0], last);
  auto evs = (*s)->events_since(ids[0] - 2, 10);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[1]["type"], "c");
  EXPECT_EQ((*evs)[1]["id"], ids[0]);
}

TEST(SqliteStore, OldEventsArePrunedButIdsStayUnique) {
  auto s = store::open_sqlite_store(temp_db(), 10);
  for (int i = 0; i < 1100; ++i) ASSERT_TRUE((*s)->apply({}, {Json{{"n", i}}}));
  auto evs = (*s)->events_since(0, 5000);
  EXPECT_LT(evs->size(), 1100u);
  EXPECT_EQ(evs->back()["n"], 1099);
  EXPECT_EQ((*s)->last_event_id(), 1100);
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
