// The Store contract (store.h), once for every implementation: a typed test
// suite instantiated by sqlite_store_test.cpp and etcd_store_test.cpp.
//
// A Backend type provides:
//   static std::optional<std::string> unavailable();  // why the suite is skipped
//   std::string fresh();                               // a new, empty location
//   Result<std::unique_ptr<store::Store>> open(const std::string& where, size_t max_events);
#pragma once
#include <gtest/gtest.h>

#include "store/store.h"

namespace stele::store::testing {

template <class Backend>
class StoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = Backend::unavailable()) GTEST_SKIP() << *why;
    where_ = backend_.fresh();
  }
  std::unique_ptr<Store> open(size_t max_events = 100000) {
    auto s = backend_.open(where_, max_events);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
  }
  Backend backend_;
  std::string where_;
};

TYPED_TEST_SUITE_P(StoreContract);

TYPED_TEST_P(StoreContract, DocumentsSurviveReopen) {
  {
    auto s = this->open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->apply({{"apps", "/web", std::string(R"({"id":"/web"})")}}, {}));
  }
  auto s = this->open();
  ASSERT_TRUE(s);
  auto v = s->get("apps", "/web");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, R"({"id":"/web"})");
  auto all = s->list("apps");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
  auto none = s->get("apps", "/nope");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TYPED_TEST_P(StoreContract, DeleteRemovesDocument) {
  auto s = this->open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->apply({{"apps", "a", std::string("1")}, {"apps", "b", std::string("2")}}, {}));
  ASSERT_TRUE(s->apply({{"apps", "a", std::nullopt}}, {}));
  auto all = s->list("apps");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].first, "b");
}

TYPED_TEST_P(StoreContract, ListIsOrderedByKeyWithinItsCollection) {
  auto s = this->open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->apply({{"apps", "/b", std::string("2")}, {"apps", "/a", std::string("1")},
                        {"apps_x", "/c", std::string("3")}, {"nodes", "n1", std::string("4")}},
                       {}));
  auto apps = s->list("apps");
  ASSERT_TRUE(apps);
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ((*apps)[0], std::make_pair(std::string("/a"), std::string("1")));
  EXPECT_EQ((*apps)[1], std::make_pair(std::string("/b"), std::string("2")));
  auto colls = s->collections();
  ASSERT_TRUE(colls);
  EXPECT_EQ(*colls, (std::vector<std::string>{"apps", "apps_x", "nodes"}));
}

TYPED_TEST_P(StoreContract, LastWriteOfAKeyInOneApplyWins) {
  auto s = this->open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->apply({{"apps", "a", std::string("1")}, {"apps", "a", std::string("2")}}, {}));
  auto v = s->get("apps", "a");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, "2");
}

TYPED_TEST_P(StoreContract, EventIdsIncreaseAndResumeAfterReopen) {
  int64_t last = 0;
  {
    auto s = this->open();
    ASSERT_TRUE(s);
    std::vector<int64_t> ids;
    ASSERT_TRUE(s->apply({}, {Json{{"type", "a"}}, Json{{"type", "b"}}}, &ids));
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_LT(ids[0], ids[1]);
    last = ids[1];
    EXPECT_EQ(s->last_event_id(), last);
  }
  auto s = this->open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->last_event_id(), last);
  std::vector<int64_t> ids;
  ASSERT_TRUE(s->apply({}, {Json{{"type", "c"}}}, &ids));
  EXPECT_GT(ids[0], last);
  auto evs = s->events_since(ids[0] - 2, 10);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[1]["type"], "c");
  EXPECT_EQ((*evs)[1]["id"], ids[0]);
  auto one = s->events_since(0, 1);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0]["type"], "a");
}

TYPED_TEST_P(StoreContract, OldEventsArePrunedButIdsStayUnique) {
  auto s = this->open(10);
  ASSERT_TRUE(s);
  for (int i = 0; i < 1100; ++i) ASSERT_TRUE(s->apply({}, {Json{{"n", i}}}));
  auto evs = s->events_since(0, 5000);
  ASSERT_TRUE(evs);
  EXPECT_LT(evs->size(), 1100u);
  EXPECT_EQ(evs->back()["n"], 1099);
  EXPECT_EQ(s->last_event_id(), 1100);
}

TYPED_TEST_P(StoreContract, ImportKeepsEventIds) {
  auto s = this->open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->import({{"apps", "/web", std::string("{}")}}, {Json{{"id", 7}, {"type", "a"}}, Json{{"id", 9}, {"type", "b"}}}));
  EXPECT_EQ(s->last_event_id(), 9);
  auto evs = s->events_since(0, 10);
  ASSERT_TRUE(evs);
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[0]["id"], 7);
  EXPECT_EQ((*evs)[1]["id"], 9);
  std::vector<int64_t> ids;
  ASSERT_TRUE(s->apply({}, {Json{{"type", "c"}}}, &ids));
  EXPECT_EQ(ids, std::vector<int64_t>{10});
}

TYPED_TEST_P(StoreContract, MigrateCopiesEverythingIntoAnEmptyStoreOnly) {
  auto from = this->open();
  ASSERT_TRUE(from);
  ASSERT_TRUE(from->apply({{"apps", "/a", std::string("1")}, {"nodes", "n", std::string("2")}}, {Json{{"type", "x"}}}));
  auto to_sqlite = store::open_sqlite_store(::testing::TempDir() + "migrate-" + std::to_string(getpid()) + "-" +
                                            std::to_string(rand()) + ".db");
  ASSERT_TRUE(to_sqlite);
  auto report = store::migrate_state(*from, **to_sqlite, false);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->documents, (std::map<std::string, size_t>{{"apps", 1}, {"nodes", 1}}));
  EXPECT_EQ(report->events, 1u);
  EXPECT_EQ((*to_sqlite)->last_event_id(), from->last_event_id());
  auto again = store::migrate_state(*from, **to_sqlite, false);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, 409);
  EXPECT_NE(again.error().message.find("--force"), std::string::npos);
  EXPECT_TRUE(store::migrate_state(*from, **to_sqlite, true));
}

REGISTER_TYPED_TEST_SUITE_P(StoreContract, DocumentsSurviveReopen, DeleteRemovesDocument,
                            ListIsOrderedByKeyWithinItsCollection, LastWriteOfAKeyInOneApplyWins,
                            EventIdsIncreaseAndResumeAfterReopen, OldEventsArePrunedButIdsStayUnique,
                            ImportKeepsEventIds, MigrateCopiesEverythingIntoAnEmptyStoreOnly);

}  // namespace stele::store::testing
