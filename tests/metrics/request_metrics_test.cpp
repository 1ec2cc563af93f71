// Log-derived request metrics: LTSV and JSON access lines, windows aligned to
// the interval and closed after the grace, status classes, error ratio,
// nearest-rank latency quantiles, late / dropped lines, parse errors, zero
// windows, and app names as metric nodes.
#include "metrics/request_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace stele::metrics {
// Readable failures: "{stele.app.web.requests.count, 100, 10}".
void PrintTo(const OwnedPoint& p, std::ostream* os) { *os << "{" << p.path << ", " << p.time_s << ", " << p.value << "}"; }
}  // namespace stele::metrics

using namespace stele::metrics;
using stele::AccessLogSpec;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

AccessLogSpec ltsv() { return AccessLogSpec{}; }  // status / reqtime in seconds, as nginx

AccessLogSpec json(std::string status = "status", std::string latency = "reqtime",
                   AccessLogSpec::LatencyUnit unit = AccessLogSpec::LatencyUnit::kSeconds) {
  return AccessLogSpec{AccessLogSpec::Format::kJson, std::move(status), std::move(latency), unit};
}

std::string access(int status, double reqtime_s) {
  return "host:10.0.0.1\ttime:[10/Oct/2024:13:55:36 +0000]\treq:GET /a HTTP/1.1\tstatus:" +
         std::to_string(status) + "\treqtime:" + std::to_string(reqtime_s) + "\tua:curl/8.0";
}

// The points of one window, by metric (the part after "requests.").
std::map<std::string, double> window(const std::vector<OwnedPoint>& points, int64_t time_s,
                                     const std::string& app = "web") {
  std::string base = "stele.app." + app + ".requests.";
  std::map<std::string, double> out;
  for (const auto& p : points)
    if (p.time_s == time_s && p.path.rfind(base, 0) == 0) out[p.path.substr(base.size())] = p.value;
  return out;
}

std::vector<int64_t> times(const std::vector<OwnedPoint>& points) {
  std::vector<int64_t> out;
  for (const auto& p : points)
    if (out.empty() || out.back() != p.time_s) out.push_back(p.time_s);
  return out;
}

RequestMetrics configured(RequestMetricsOptions options = {}, AccessLogSpec spec = ltsv()) {
  RequestMetrics m(options);
  m.configure({{"/web", spec}});
  return m;
}

// ---- parsing -------------------------------------------------------------------

TEST(RequestAccessLine, LtsvFieldsAreFoundByLabel) {
  auto l = parse_access_line(ltsv(), "time:12:00:01\tstatus:503\treqtime:0.250\turi:/a?b=c:d\r\n");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 503);
  EXPECT_EQ(l->latency_ms, 250.0);
  AccessLogSpec custom{AccessLogSpec::Format::kLtsv, "code", "D", AccessLogSpec::LatencyUnit::kMicroseconds};
  l = parse_access_line(custom, "code:200\tD:1500");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 200);
  EXPECT_EQ(l->latency_ms, 1.5);
}

TEST(RequestAccessLine, LtsvOddValues) {
  auto no_latency = parse_access_line(ltsv(), "status:200\treqtime:-");  // nginx's "no time"
  ASSERT_TRUE(no_latency.has_value());
  EXPECT_FALSE(no_latency->latency_ms.has_value());
  EXPECT_FALSE(parse_access_line(ltsv(), "status:200")->latency_ms.has_value());
  EXPECT_FALSE(parse_access_line(ltsv(), "status:200\treqtime:-1")->latency_ms.has_value());
  EXPECT_EQ(parse_access_line(ltsv(), "status:-\treqtime:0.1")->status, 0);
  EXPECT_EQ(parse_access_line(ltsv(), "status:999")->status, 0);
  EXPECT_EQ(parse_access_line(ltsv(), "status:20x")->status, 0);
  EXPECT_EQ(parse_access_line(ltsv(), "status:101")->status, 101);
}

TEST(RequestAccessLine, LtsvNonAccessLines) {
  for (const char* line : {"", "\n", "GET / HTTP/1.1 200", "reqtime:0.1\turi:/", "status:200\tno label here",
                           "status:200\t:empty", "status:200\t"})
    EXPECT_FALSE(parse_access_line(ltsv(), line).has_value()) << line;
}

TEST(RequestAccessLine, JsonNumbersOrStrings) {
  auto l = parse_access_line(json(), R"({"time":"x","status":404,"reqtime":0.012,"ua":"curl"})");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 404);
  EXPECT_DOUBLE_EQ(*l->latency_ms, 12.0);
  l = parse_access_line(json(), R"({"status":"201","reqtime":"1.5"})" "\n");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 201);
  EXPECT_EQ(l->latency_ms, 1500.0);
  l = parse_access_line(json("code", "duration", AccessLogSpec::LatencyUnit::kMilliseconds),
                        R"({"code":500.0,"duration":7,"status":200})");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 500);
  EXPECT_EQ(l->latency_ms, 7.0);
}

TEST(RequestAccessLine, JsonOnlyTopLevelKeysCount) {
  auto l = parse_access_line(json(), R"({"upstream":{"status":502,"reqtime":9},"status":200,"reqtime":[1]})");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->status, 200);
  EXPECT_FALSE(l->latency_ms.has_value());
  EXPECT_FALSE(parse_access_line(json(), R"({"upstream":{"status":502}})").has_value());
  EXPECT_EQ(parse_access_line(json(), R"({"status":null})")->status, 0);
  EXPECT_EQ(parse_access_line(json(), R"({"status":{"code":200}})")->status, 0);
  EXPECT_EQ(parse_access_line(json(), R"({"status":99})")->status, 0);
}

TEST(RequestAccessLine, JsonNonAccessLines) {
  for (const char* line : {"", "plain text", "[200]", "200", R"("status")", R"({"status":200)",
                           R"({"status":200} trailing)", R"({"msg":"starting"})"})
    EXPECT_FALSE(parse_access_line(json(), line).has_value()) << line;
  std::string deep = R"({"status":200,"a":)" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_FALSE(parse_access_line(json(), deep).has_value());
}

// ---- windows ---------------------------------------------------------------------

TEST(RequestMetrics, OneWindowGivesEveryMetric) {
  RequestMetrics m = configured();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(m.observe("web", (100 + i) * kSecond, access(200, 0.001 * (i + 1))), LineOutcome::kCounted);
  m.observe("web", 108 * kSecond, access(404, 0.009));
  m.observe("web", 109 * kSecond + 999'999'999, access(503, 0.010));
  m.observe("web", 109 * kSecond, "nginx: worker process started");
  std::string b = "stele.app.web.requests.";
  EXPECT_THAT(m.flush(112), ElementsAre(OwnedPoint{b + "count", 100, 10}, OwnedPoint{b + "1xx", 100, 0},
                                        OwnedPoint{b + "2xx", 100, 8}, OwnedPoint{b + "3xx", 100, 0},
                                        OwnedPoint{b + "4xx", 100, 1}, OwnedPoint{b + "5xx", 100, 1},
                                        OwnedPoint{b + "other", 100, 0}, OwnedPoint{b + "error_ratio", 100, 0.1},
                                        OwnedPoint{b + "latency.p50", 100, 5}, OwnedPoint{b + "latency.p90", 100, 9},
                                        OwnedPoint{b + "latency.p99", 100, 10}, OwnedPoint{b + "parse_errors", 100, 1},
                                        OwnedPoint{b + "late", 100, 0}, OwnedPoint{b + "dropped", 100, 0}));
  EXPECT_THAT(m.flush(112), IsEmpty());  // emitted once
}

TEST(RequestMetrics, WindowsAreAlignedAndCloseAfterTheGrace) {
  RequestMetrics m = configured();
  m.observe("web", 99 * kSecond, access(200, 0.1));   // window 90
  m.observe("web", 100 * kSecond, access(200, 0.1));  // window 100
  m.observe("web", 119 * kSecond, access(200, 0.1));  // window 110
  EXPECT_THAT(m.flush(101), IsEmpty());               // 90 closes at 100 + 2
  EXPECT_THAT(times(m.flush(102)), ElementsAre(90));
  EXPECT_THAT(times(m.flush(111)), IsEmpty());
  EXPECT_THAT(times(m.flush(125)), ElementsAre(100, 110));
  EXPECT_EQ(window(m.flush(132), 120)["count"], 0);
}

TEST(RequestMetrics, IntervalAndGraceAreConfigurable) {
  RequestMetrics m = configured({.interval_s = 60, .grace_s = 5});
  m.observe("web", 61 * kSecond, access(200, 0.1));
  m.observe("web", 119 * kSecond, access(500, 0.1));
  EXPECT_THAT(m.flush(124), IsEmpty());
  auto points = m.flush(125);
  EXPECT_THAT(times(points), ElementsAre(60));
  EXPECT_EQ(window(points, 60)["count"], 2);
  EXPECT_EQ(window(points, 60)["error_ratio"], 0.5);
}

TEST(RequestMetrics, StatusClassesAndErrorRatioCountOnly5xx) {
  RequestMetrics m = configured();
  for (int status : {101, 200, 204, 301, 304, 400, 404, 429, 500, 502}) m.observe("web", 10 * kSecond, access(status, 0.1));
  m.observe("web", 10 * kSecond, "status:-\treqtime:0.1");
  m.observe("web", 10 * kSecond, "status:0");
  auto w = window(m.flush(22), 10);
  EXPECT_EQ(w["count"], 12);
  EXPECT_EQ(w["1xx"], 1);
  EXPECT_EQ(w["2xx"], 2);
  EXPECT_EQ(w["3xx"], 2);
  EXPECT_EQ(w["4xx"], 3);
  EXPECT_EQ(w["5xx"], 2);
  EXPECT_EQ(w["other"], 2);
  EXPECT_DOUBLE_EQ(w["error_ratio"], 2.0 / 12);
}

TEST(RequestMetrics, NearestRankQuantilesInMilliseconds) {
  RequestMetrics m = configured();
  for (int i = 100; i >= 1; --i) m.observe("web", 10 * kSecond, "status:200\treqtime:" + std::to_string(i / 1000.0));
  for (double s : {0.010, 0.030, 0.020}) m.observe("web", 20 * kSecond, "status:200\treqtime:" + std::to_string(s));
  m.observe("web", 30 * kSecond, "status:200\treqtime:0.042");
  auto points = m.flush(42);
  auto hundred = window(points, 10);
  EXPECT_DOUBLE_EQ(hundred["latency.p50"], 50);
  EXPECT_DOUBLE_EQ(hundred["latency.p90"], 90);
  EXPECT_DOUBLE_EQ(hundred["latency.p99"], 99);
  auto three = window(points, 20);  // ranks ceil(1.5)=2, ceil(2.7)=3, ceil(2.97)=3
  EXPECT_DOUBLE_EQ(three["latency.p50"], 20);
  EXPECT_DOUBLE_EQ(three["latency.p90"], 30);
  EXPECT_DOUBLE_EQ(three["latency.p99"], 30);
  auto one = window(points, 30);
  EXPECT_DOUBLE_EQ(one["latency.p50"], 42);
  EXPECT_DOUBLE_EQ(one["latency.p99"], 42);
}

TEST(RequestMetrics, JsonLinesWithMicroseconds) {
  RequestMetrics m = configured({}, json("status", "duration_us", AccessLogSpec::LatencyUnit::kMicroseconds));
  m.observe("web", 10 * kSecond, R"({"status":200,"duration_us":1500})");
  m.observe("web", 10 * kSecond, R"({"status":"502","duration_us":"250000"})");
  m.observe("web", 10 * kSecond, R"({"level":"info","msg":"listening"})");
  auto w = window(m.flush(22), 10);
  EXPECT_EQ(w["count"], 2);
  EXPECT_EQ(w["5xx"], 1);
  EXPECT_EQ(w["error_ratio"], 0.5);
  EXPECT_DOUBLE_EQ(w["latency.p50"], 1.5);
  EXPECT_DOUBLE_EQ(w["latency.p99"], 250);
  EXPECT_EQ(w["parse_errors"], 1);
}

TEST(RequestMetrics, LinesWithoutLatencyCountButGiveNoQuantiles) {
  RequestMetrics m = configured();
  m.observe("web", 10 * kSecond, "status:200\treqtime:-");
  auto w = window(m.flush(22), 10);
  EXPECT_EQ(w["count"], 1);
  EXPECT_FALSE(w.count("latency.p50"));
}

TEST(RequestMetrics, LateLinesAreDroppedAndCountedInTheNextFlush) {
  RequestMetrics m = configured();
  m.observe("web", 105 * kSecond, access(200, 0.1));
  EXPECT_EQ(window(m.flush(112), 100)["count"], 1);
  EXPECT_EQ(m.observe("web", 109 * kSecond, access(500, 0.1)), LineOutcome::kLate);
  EXPECT_EQ(m.observe("web", 50 * kSecond, access(200, 0.1)), LineOutcome::kLate);
  EXPECT_EQ(m.observe("web", 109 * kSecond, "garbage"), LineOutcome::kNotAccessLine);
  EXPECT_EQ(m.observe("web", 111 * kSecond, access(200, 0.1)), LineOutcome::kCounted);  // window 110 is still open
  auto points = m.flush(122);
  EXPECT_THAT(times(points), ElementsAre(110));
  auto w = window(points, 110);
  EXPECT_EQ(w["count"], 1);  // the late lines are not in it
  EXPECT_EQ(w["5xx"], 0);
  EXPECT_EQ(w["late"], 2);
  EXPECT_EQ(w["parse_errors"], 1);
  EXPECT_EQ(window(m.flush(132), 120)["late"], 0);
}

TEST(RequestMetrics, PendingCountsGoToTheNewestWindowOfAFlush) {
  RequestMetrics m = configured();
  m.observe("web", 5 * kSecond, access(200, 0.1));
  m.flush(12);  // window 0
  m.observe("web", 1 * kSecond, access(200, 0.1));
  auto points = m.flush(42);  // 10, 20, 30
  EXPECT_THAT(times(points), ElementsAre(10, 20, 30));
  EXPECT_EQ(window(points, 10)["late"], 0);
  EXPECT_EQ(window(points, 30)["late"], 1);
}

TEST(RequestMetrics, EmptyWindowsAreZerosOnceTrafficWasSeen) {
  RequestMetrics m = configured();
  EXPECT_THAT(m.flush(1000), IsEmpty());  // no traffic yet: nothing to say
  m.observe("web", 1000 * kSecond, access(200, 0.1));
  m.flush(1012);
  auto points = m.flush(1032);
  EXPECT_THAT(times(points), ElementsAre(1010, 1020));
  EXPECT_EQ(window(points, 1020), (std::map<std::string, double>{{"count", 0}, {"1xx", 0}, {"2xx", 0}, {"3xx", 0},
                                                                  {"4xx", 0}, {"5xx", 0}, {"other", 0},
                                                                  {"parse_errors", 0}, {"late", 0}, {"dropped", 0}}));
}

TEST(RequestMetrics, ParseErrorsAloneStartTheStream) {
  RequestMetrics m = configured();
  EXPECT_EQ(m.observe("web", 10 * kSecond, "Listening on :8080"), LineOutcome::kNotAccessLine);
  auto w = window(m.flush(22), 10);
  EXPECT_EQ(w["parse_errors"], 1);
  EXPECT_EQ(w["count"], 0);
  EXPECT_FALSE(w.count("error_ratio"));
}

TEST(RequestMetrics, GapFillIsBoundedButWindowsWithLinesAreKept) {
  RequestMetrics m = configured({.max_gap_fill = 3});
  m.observe("web", 3 * kSecond, access(200, 0.1));  // e.g. a replayed old line
  m.observe("web", 975 * kSecond, access(200, 0.1));
  auto points = m.flush(1000);  // closes everything before 990
  EXPECT_THAT(times(points), ElementsAre(0, 960, 970, 980));
  EXPECT_EQ(window(points, 0)["count"], 1);
  EXPECT_EQ(window(points, 970)["count"], 1);
  EXPECT_THAT(times(m.flush(1012)), ElementsAre(990, 1000));
}

TEST(RequestMetrics, OpenWindowsAreBounded) {
  RequestMetrics m = configured({.max_open_windows = 2});
  EXPECT_EQ(m.observe("web", 10 * kSecond, access(200, 0.1)), LineOutcome::kCounted);
  EXPECT_EQ(m.observe("web", 1'000'000 * kSecond, access(200, 0.1)), LineOutcome::kCounted);
  EXPECT_EQ(m.observe("web", 2'000'000 * kSecond, access(200, 0.1)), LineOutcome::kDropped);
  EXPECT_EQ(m.observe("web", 2'000'000 * kSecond, "junk"), LineOutcome::kNotAccessLine);
  EXPECT_EQ(m.observe("web", 15 * kSecond, access(200, 0.1)), LineOutcome::kCounted);  // an open window
  auto w = window(m.flush(22), 10);
  EXPECT_EQ(w["count"], 2);
  EXPECT_EQ(w["dropped"], 1);
  EXPECT_EQ(w["parse_errors"], 1);
}

TEST(RequestMetrics, ReservoirBoundsSamplesAndKeepsQuantilesClose) {
  RequestMetrics m = configured({.max_samples = 1000});
  for (int i = 1; i <= 100'000; ++i)
    m.observe("web", 10 * kSecond, "status:200\treqtime:" + std::to_string(i / 1e6));  // 0.001 .. 100 ms
  auto w = window(m.flush(22), 10);
  EXPECT_EQ(w["count"], 100'000);
  EXPECT_NEAR(w["latency.p50"], 50, 5);
  EXPECT_NEAR(w["latency.p90"], 90, 3);
  EXPECT_NEAR(w["latency.p99"], 99, 1.5);
}

// ---- apps ------------------------------------------------------------------------

TEST(RequestMetrics, AppIdsAndNamesAreOneMetricNode) {
  RequestMetrics m;
  m.configure({{"/shop/web", ltsv()}, {"/shop.eu/api", ltsv()}});
  EXPECT_EQ(m.observe("/shop/web", 10 * kSecond, access(200, 0.1)), LineOutcome::kCounted);
  EXPECT_EQ(m.observe("shop_web", 10 * kSecond, access(200, 0.1)), LineOutcome::kCounted);
  EXPECT_EQ(m.observe("shop_eu_api", 10 * kSecond, access(500, 0.1)), LineOutcome::kCounted);
  EXPECT_EQ(m.observe("/other", 10 * kSecond, access(200, 0.1)), LineOutcome::kUnconfigured);
  auto points = m.flush(22);
  EXPECT_EQ(window(points, 10, "shop_web")["count"], 2);
  EXPECT_EQ(window(points, 10, "shop_eu_api")["5xx"], 1);
  EXPECT_EQ(points.front().path, "stele.app.shop_eu_api.requests.count");  // by app name
  EXPECT_EQ(points.size(), 2 * 14u);
}

TEST(RequestMetrics, ReconfigureKeepsOpenWindowsOfKeptApps) {
  RequestMetrics m;
  m.configure({{"/web", ltsv()}, {"/api", ltsv()}});
  m.observe("web", 10 * kSecond, access(200, 0.1));
  m.observe("api", 10 * kSecond, access(200, 0.1));
  m.configure({{"/web", json()}});  // web switches to JSON logs; api loses its access log
  EXPECT_EQ(m.observe("web", 11 * kSecond, R"({"status":201})"), LineOutcome::kCounted);
  EXPECT_EQ(m.observe("api", 11 * kSecond, access(200, 0.1)), LineOutcome::kUnconfigured);
  auto points = m.flush(22);
  EXPECT_EQ(window(points, 10)["2xx"], 2);
  EXPECT_TRUE(window(points, 10, "api").empty());
}

}  // namespace
