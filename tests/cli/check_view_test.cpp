// Monitoring tables: states (silenced ones say so, output cut to its first
// line), check definitions (where they run), handlers, silences (expiry).
#include <gtest/gtest.h>

#include "cli/check_view.h"

using namespace stele;
using namespace stele::cli;

TEST(CheckView, StatesTable) {
  Json states = Json::array({
      {{"entity", "node1"}, {"check", {{"name", "disk"}, {"status", 2}, {"output", "DISK CRITICAL - / 97%\nlong text"},
                                       {"executed", 1'700'000'000}, {"perfdata", Json::array()}}},
       {"occurrences", 3}, {"history", {0, 2, 2, 2}}, {"state", "failing"}, {"silenced", true}},
      {{"entity", "web-r2-0"}, {"check", {{"name", "probe"}, {"status", 0}, {"output", "PROBE OK"}, {"executed", 0},
                                          {"perfdata", Json::array()}}},
       {"occurrences", 1}, {"history", {0}}, {"state", "passing"}},
  });
  std::string out = check_states_table(states, 1'700'000'090'000).render();
  EXPECT_NE(out.find("ENTITY"), std::string::npos);
  EXPECT_NE(out.find("node1      disk    CRITICAL   failing, silenced   3     1m30s   DISK CRITICAL - / 97%\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("long text"), std::string::npos);
  EXPECT_NE(out.find("web-r2-0   probe   OK         passing             1     -       PROBE OK"), std::string::npos) << out;
}

TEST(CheckView, DefinitionsTables) {
  Json checks = Json::array({{{"name", "disk"}, {"command", "check_disk -w 10%"}, {"interval", 60}, {"timeout", 10},
                              {"subscriptions", {"base", "db"}}, {"handlers", {"mail"}}},
                             {{"name", "http"}, {"command", "check_http -H {{host}}"}, {"interval", 10}, {"timeout", 5},
                              {"subscriptions", Json::array()}, {"proxy", "/shop/web"}, {"handlers", Json::array()}},
                             {{"name", "rr"}, {"command", "true"}, {"interval", 5}, {"timeout", 5},
                              {"subscriptions", {"web"}}, {"round_robin", true}}});
  std::string out = checks_table(checks).render();
  EXPECT_NE(out.find("disk   base,db              60s        10s       mail       check_disk -w 10%"), std::string::npos) << out;
  EXPECT_NE(out.find("tasks of /shop/web"), std::string::npos) << out;
  EXPECT_NE(out.find("web (round robin)"), std::string::npos) << out;
  Json handlers = Json::array({{{"name", "hook"}, {"type", "http"}, {"url", "http://127.0.0.1:9/a"},
                                {"filters", {"is_incident", "occurrences >= 3"}}}});
  EXPECT_NE(handlers_table(handlers).render().find("hook   http   http://127.0.0.1:9/a   is_incident; occurrences >= 3"),
            std::string::npos);
  Json silences = Json::array({{{"id", "*:disk"}, {"expiresAt", 1'700'003'600}, {"reason", "resize"}, {"creator", "ops"}},
                               {{"id", "web:*"}, {"expire_on_resolve", true}}});
  std::string s = silences_table(silences, 1'700'000'000'000).render();
  EXPECT_NE(s.find("*:disk   in 1h0m"), std::string::npos) << s;
  EXPECT_NE(s.find("web:*    never (until resolved)"), std::string::npos) << s;
  EXPECT_EQ(status_word(7), "7");
}
