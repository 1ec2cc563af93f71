// Check states: occurrences, history, incident/resolution classification
// (with and without an occurrences threshold), flap detection on crafted
// sequences, ttl expiry and the JSON shape of issue 7 point 5.
#include <gtest/gtest.h>

#include "monitor/check_state.h"

using namespace stele::monitor;
using stele::Json;

namespace {

constexpr CheckStatus OK = CheckStatus::kOk, WARN = CheckStatus::kWarning, CRIT = CheckStatus::kCritical;

CheckResult result(CheckStatus s, std::string output = "out", int64_t executed = 1'700'000'000) {
  return CheckResult{"check_disk", s, std::move(output), executed, {}};
}

struct Feed {
  CheckState state;
  StatePolicy policy;
  Recorded add(CheckStatus s) { return record_result(state, result(s), policy); }
};

}  // namespace

TEST(CheckState, OccurrencesAndHistory) {
  Feed f;
  f.add(OK);
  f.add(OK);
  EXPECT_EQ(f.state.occurrences, 2);
  f.add(CRIT);
  EXPECT_EQ(f.state.occurrences, 1);
  for (int i = 0; i < 30; ++i) f.add(CRIT);
  EXPECT_EQ(f.state.occurrences, 31);
  EXPECT_EQ(f.state.history.size(), kHistorySize);
  EXPECT_EQ(f.state.history.front(), CRIT);
  EXPECT_STREQ(f.state.state(), "failing");
}

TEST(CheckState, IncidentsAndResolutionsLikeSensu) {
  Feed f;
  Recorded r = f.add(OK);
  EXPECT_EQ(r.change, Change::kNone);
  EXPECT_FALSE(r.is_incident());
  EXPECT_FALSE(r.is_resolution());

  r = f.add(WARN);
  EXPECT_EQ(r.change, Change::kIncident);
  EXPECT_EQ(r.previous, OK);
  EXPECT_TRUE(r.is_incident());

  r = f.add(WARN);
  EXPECT_EQ(r.change, Change::kNone) << "the same failure again is no new incident";
  EXPECT_TRUE(r.is_incident()) << "but Sensu's is_incident still holds";

  r = f.add(CRIT);
  EXPECT_EQ(r.change, Change::kIncident) << "warning -> critical is an escalation handlers see";
  EXPECT_EQ(r.previous, WARN);

  r = f.add(OK);
  EXPECT_EQ(r.change, Change::kResolution);
  EXPECT_TRUE(r.is_resolution());
  EXPECT_EQ(r.occurrences_watermark, 3) << "the failing run it ended";
  EXPECT_STREQ(change_name(r.change), "resolution");

  r = f.add(OK);
  EXPECT_EQ(r.change, Change::kNone);
  EXPECT_FALSE(r.is_resolution());
  EXPECT_EQ(r.occurrences_watermark, 0);
}

TEST(CheckState, FirstResultFailingIsAnIncident) {
  Feed f;
  Recorded r = f.add(CheckStatus::kUnknown);
  EXPECT_EQ(r.change, Change::kIncident);
  EXPECT_EQ(r.previous, OK);
}

TEST(CheckState, OccurrencesThresholdDelaysIncidentAndSkipsUnannouncedResolution) {
  Feed f;
  f.policy.occurrences = 3;
  EXPECT_EQ(f.add(CRIT).change, Change::kNone);
  EXPECT_EQ(f.add(CRIT).change, Change::kNone);
  EXPECT_EQ(f.add(OK).change, Change::kNone) << "two failures never alerted: no resolution";

  EXPECT_EQ(f.add(WARN).change, Change::kNone);
  EXPECT_EQ(f.add(WARN).change, Change::kNone);
  Recorded r = f.add(CRIT);
  EXPECT_EQ(r.change, Change::kIncident) << "three failing results in a row";
  EXPECT_EQ(r.occurrences_watermark, 3);
  EXPECT_EQ(f.state.occurrences, 1) << "occurrences counts the same status only";
  EXPECT_EQ(f.add(CRIT).change, Change::kNone);
  EXPECT_EQ(f.add(WARN).change, Change::kIncident) << "once announced, a status change is seen at once";
  EXPECT_EQ(f.add(OK).change, Change::kResolution);
}

TEST(Flapping, PercentStateChangeWeights) {
  EXPECT_EQ(percent_state_change({}), 0);
  std::vector<CheckStatus> stable(21, OK);
  EXPECT_EQ(percent_state_change(stable), 0);
  std::vector<CheckStatus> alternating;
  for (int i = 0; i < 21; ++i) alternating.push_back(i % 2 ? CRIT : OK);
  EXPECT_NEAR(percent_state_change(alternating), 100.0, 1e-9);
  // One change between the two newest entries weighs 1.2; between the two
  // oldest, 0.8.
  std::vector<CheckStatus> newest_change(21, OK);
  newest_change.back() = CRIT;
  EXPECT_NEAR(percent_state_change(newest_change), 6.0, 1e-9);
  std::vector<CheckStatus> oldest_change(21, OK);
  oldest_change.front() = CRIT;
  EXPECT_NEAR(percent_state_change(oldest_change), 4.0, 1e-9);
  // WARNING <-> CRITICAL counts as a change too.
  EXPECT_NEAR(percent_state_change({WARN, CRIT}), 6.0, 1e-9);
}

TEST(Flapping, StableNeverFlaps) {
  Feed f;
  for (int i = 0; i < 50; ++i) {
    Recorded r = f.add(i < 25 ? OK : CRIT);
    EXPECT_FALSE(r.flapping_started);
  }
  EXPECT_FALSE(f.state.flapping);
  EXPECT_STREQ(f.state.state(), "failing");
}

TEST(Flapping, AlternatingStartsThenStableStopsBelowLow) {
  Feed f;
  int started_at = -1;
  for (int i = 0; i < 21; ++i) {
    Recorded r = f.add(i % 2 ? CRIT : OK);
    if (r.flapping_started) started_at = i;
  }
  // Transitions weigh 1.2, 1.179, 1.158, 1.137: 3 of them are 17.7%, 4 are 23.4%.
  EXPECT_EQ(started_at, 4);
  EXPECT_TRUE(f.state.flapping);
  EXPECT_STREQ(f.state.state(), "flapping");
  EXPECT_NEAR(f.state.percent_state_change, 100.0, 1e-9);

  int stopped_at = -1;
  double before = 0;
  for (int i = 0; i < 25 && stopped_at < 0; ++i) {
    before = f.state.percent_state_change;
    Recorded r = f.add(OK);
    if (r.flapping_stopped) stopped_at = i;
    else EXPECT_TRUE(f.state.flapping) << "between the thresholds it keeps flapping (" << f.state.percent_state_change << "%)";
  }
  ASSERT_GE(stopped_at, 0);
  EXPECT_LT(f.state.percent_state_change, 5.0);
  EXPECT_GE(before, 5.0);
  EXPECT_FALSE(f.state.flapping);
  EXPECT_STREQ(f.state.state(), "passing");
}

TEST(Flapping, PerCheckThresholds) {
  Feed f;
  f.policy.high_flap_threshold = 50;
  f.policy.low_flap_threshold = 25;
  int started_at = -1;
  for (int i = 0; i < 21; ++i)
    if (f.add(i % 2 ? CRIT : OK).flapping_started) started_at = i;
  EXPECT_EQ(started_at, 9);  // 9 newest transitions: 50.2%, 8: 45.1%
}

TEST(CheckStateTracker, TtlExpiryIsAFailureOnceEveryTtl) {
  CheckStateTracker t;
  StatePolicy p;
  p.ttl = 90;
  t.record("node-1", result(OK), p, 0);
  EXPECT_TRUE(t.expire_ttl(89'999).empty());
  auto e = t.expire_ttl(90'000);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].entity, "node-1");
  EXPECT_EQ(e[0].recorded.change, Change::kIncident);
  EXPECT_EQ(e[0].state->check.status, WARN);
  EXPECT_EQ(e[0].state->check.output, "Last check execution was 90 seconds ago");
  EXPECT_EQ(e[0].state->check.name, "check_disk");
  EXPECT_TRUE(t.expire_ttl(90'001).empty()) << "each expiry is reported once";
  auto again = t.expire_ttl(180'000);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].recorded.change, Change::kNone);
  EXPECT_EQ(again[0].state->check.output, "Last check execution was 180 seconds ago");
  EXPECT_EQ(again[0].state->occurrences, 2);
  Recorded back = t.record("node-1", result(OK), p, 200'000);
  EXPECT_EQ(back.change, Change::kResolution);
  EXPECT_TRUE(t.expire_ttl(289'999).empty());
  EXPECT_EQ(t.expire_ttl(290'000).size(), 1u);
}

TEST(CheckStateTracker, TtlStatusAndNoTtl) {
  CheckStateTracker t;
  StatePolicy crit;
  crit.ttl = 10;
  crit.ttl_status = CRIT;
  t.record("a", result(OK), crit, 0);
  t.record("b", result(OK), StatePolicy{}, 0);
  auto e = t.expire_ttl(1'000'000);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].entity, "a");
  EXPECT_EQ(e[0].state->check.status, CRIT);
}

TEST(CheckStateTracker, FindListRemove) {
  CheckStateTracker t;
  t.record("web-2", CheckResult{"http", OK, "", 1, {}}, {}, 0);
  t.record("web-1", CheckResult{"http", OK, "", 1, {}}, {}, 0);
  t.record("web-1", CheckResult{"disk", OK, "", 1, {}}, {}, 0);
  ASSERT_NE(t.find("web-1", "disk"), nullptr);
  EXPECT_EQ(t.find("web-1", "nope"), nullptr);
  auto all = t.states();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->entity + "/" + all[0]->check.name, "web-1/disk");
  EXPECT_EQ(t.remove_check("http"), 2u);
  EXPECT_EQ(t.remove_entity("web-1"), 1u);
  EXPECT_TRUE(t.states().empty());
}

TEST(CheckStateJson, ShapeOfIssue7AndReadBack) {
  CheckState s;
  s.entity = "shop_web-r3-0";
  StatePolicy p;
  record_result(s, CheckResult{"web_health", OK, "HTTP OK", 1'700'000'000, {}}, p);
  auto perf = parse_perf_item("time=0.000123s;1;@2:3;0;10");
  ASSERT_TRUE(perf);
  auto u = parse_perf_item("'x y'=U");
  ASSERT_TRUE(u);
  record_result(s, CheckResult{"web_health", CRIT, "HTTP CRITICAL\nlong", 1'700'000'060, {*perf, *u}}, p);
  Json j = s;
  Json expected = Json::parse(R"({
    "entity": "shop_web-r3-0",
    "check": {"name": "web_health", "status": 2, "output": "HTTP CRITICAL\nlong", "executed": 1700000060,
              "perfdata": [{"label": "time", "value": 0.000123, "uom": "s", "warn": "1", "crit": "@2:3", "min": 0.0, "max": 10.0},
                           {"label": "x y", "value": null}]},
    "occurrences": 1,
    "history": [0, 2],
    "state": "failing"})");
  EXPECT_EQ(j, expected) << j.dump(2);

  auto back = parse_check_state(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->check, s.check);
  EXPECT_EQ(back->history, s.history);
  EXPECT_EQ(back->occurrences, 1);
  EXPECT_EQ(back->open_incident, CRIT) << "a restored failure is not announced again";
  EXPECT_EQ(record_result(*back, result(CRIT), p).change, Change::kNone);
  EXPECT_EQ(record_result(*back, result(OK), p).change, Change::kResolution);

  Json bad = j;
  bad["check"]["status"] = 7;
  EXPECT_FALSE(parse_check_state(bad));
  bad = j;
  bad.erase("history");
  EXPECT_FALSE(parse_check_state(bad));
}

TEST(CheckStateTracker, RestoreKeepsFlappingAndArmsTtl) {
  CheckState s;
  s.entity = "n";
  for (int i = 0; i < 21; ++i) record_result(s, result(i % 2 ? CRIT : OK), {});
  auto back = parse_check_state(Json(s));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->flapping);
  CheckStateTracker t;
  StatePolicy p;
  p.ttl = 5;
  t.restore(*back, p, 1000);
  ASSERT_NE(t.find("n", "check_disk"), nullptr);
  EXPECT_STREQ(t.find("n", "check_disk")->state(), "flapping");
  EXPECT_EQ(t.expire_ttl(6000).size(), 1u);
}
