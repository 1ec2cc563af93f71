// GET /api/v1/logs parameters: time forms, bounds, app ids, and the 400s that
// name the bad parameter (docs/api.md "Logs").
#include <gtest/gtest.h>

#include "api/routes_logs.h"

namespace stele::api {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kNow = 1'767'323'045LL * kSec;  // 2026-01-02T03:04:05Z

net::HttpRequest request(std::map<std::string, std::string> query) {
  net::HttpRequest r;
  r.method = "GET";
  r.path = "/api/v1/logs";
  r.query = std::move(query);
  return r;
}

TEST(LogTime, AcceptsRfc3339UnixSecondsAndDurations) {
  EXPECT_EQ(*parse_log_time("2026-01-02T03:04:05Z", kNow), kNow);
  EXPECT_EQ(*parse_log_time("2026-01-02T03:04:05.5Z", kNow), kNow + kSec / 2);
  EXPECT_EQ(*parse_log_time("2026-01-02T05:04:05.000000001+02:00", kNow), kNow + 1);
  EXPECT_EQ(*parse_log_time("2026-01-01T22:04:05-05:00", kNow), kNow);
  EXPECT_EQ(*parse_log_time("1767323045", kNow), kNow);
  EXPECT_EQ(*parse_log_time("1767323045.25", kNow), kNow + kSec / 4);
  EXPECT_EQ(*parse_log_time("10m", kNow), kNow - 600 * kSec);
  EXPECT_EQ(*parse_log_time("2h", kNow), kNow - 7200 * kSec);
  EXPECT_EQ(*parse_log_time("7d", kNow), kNow - 7 * 86400 * kSec);
  EXPECT_EQ(*parse_log_time("1h30m", kNow), kNow - 5400 * kSec);
}

TEST(LogTime, RefusesMalformedValues) {
  for (const char* bad : {"", "yesterday", "10x", "m", "2026-01-02", "2026-13-02T03:04:05Z", "2026-01-02T03:04:05",
                          "2026-01-02T03:04:05+2", "-5m", "1.2.3"})
    EXPECT_FALSE(parse_log_time(bad, kNow)) << bad;
}

TEST(LogTime, FormatsNanoseconds) {
  EXPECT_EQ(iso8601_ns(kNow + 123456789), "2026-01-02T03:04:05.123456789Z");
  EXPECT_EQ(iso8601_ns(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(iso8601_ns(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(*parse_log_time(iso8601_ns(kNow + 42), kNow), kNow + 42);
}

TEST(LogRequest, MapsParametersToTheStoreQuery) {
  auto r = parse_log_request(request({{"app", "shop/web"}, {"since", "10m"}, {"until", "1767323045"}, {"task", "t1"},
                                      {"stream", "stderr"}, {"grep", "boom"}, {"limit", "5"}, {"after", "9"},
                                      {"follow", "1"}}),
                             kNow);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->query.app, "shop_web");
  EXPECT_EQ(*r->query.since_ns, kNow - 600 * kSec);
  EXPECT_EQ(*r->query.until_ns, kNow);
  EXPECT_EQ(r->query.task, "t1");
  EXPECT_EQ(r->query.stream, "stderr");
  EXPECT_EQ(r->query.grep, "boom");
  EXPECT_EQ(r->query.limit, 5u);
  EXPECT_EQ(*r->query.after, 9u);
  EXPECT_TRUE(r->follow);

  auto d = parse_log_request(request({{"app", "/shop/web"}}), kNow);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->query.app, "shop_web");
  EXPECT_EQ(d->query.limit, kDefaultLogLimit);
  EXPECT_FALSE(d->query.since_ns);
  EXPECT_FALSE(d->query.after);
  EXPECT_FALSE(d->follow);
}

TEST(LogRequest, BadValuesAre400sNamingTheParameter) {
  struct Case {
    const char* param;
    const char* value;
  };
  for (Case c : {Case{"since", "yesterday"}, Case{"until", "soon"}, Case{"limit", "0"}, Case{"limit", "100001"},
                 Case{"limit", "many"}, Case{"after", "-1"}, Case{"regex", "(unclosed"}}) {
    auto r = parse_log_request(request({{c.param, c.value}}), kNow);
    ASSERT_FALSE(r) << c.param << "=" << c.value;
    EXPECT_EQ(r.error().code, 400);
    EXPECT_NE(r.error().message.find(std::string("'") + c.param + "'"), std::string::npos) << r.error().message;
    ASSERT_EQ(r.error().details.size(), 1u);
    EXPECT_EQ(r.error().details[0].path, c.param);
  }
}

TEST(LogRender, OneLinePerRecordWithSeqTimeTagAndRecord) {
  logs::LogResult r{"app.shop_web", 7, "stele.shop_web.stdout", kNow, Json{{"log", "hi"}, {"task", "t1"}}};
  EXPECT_EQ(render_log(r).dump(),
            R"({"record":{"log":"hi","task":"t1"},"seq":7,"tag":"stele.shop_web.stdout","time":"2026-01-02T03:04:05.000000000Z"})");
}

}  // namespace
}  // namespace stele::api
