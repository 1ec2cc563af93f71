// `stele logs` against the fake API: the query it sends, the lines it
// prints, errors, and -f resuming after the last record seen.
#include <gtest/gtest.h>

#include "fake_api.h"
#include "net/sse.h"

namespace stele::cli {
namespace {

using namespace testing_fake;

const std::string kLine1 =
    R"({"seq":5,"time":"2026-01-02T03:04:05.123456789Z","tag":"stele.shop_web.stdout","record":{"app":"/shop/web","task":"shop_web-r1.1.1","stream":"stdout","log":"hello"}})";
const std::string kLine2 =
    R"({"seq":6,"time":"2026-01-02T03:04:06.000000000Z","tag":"docker.nginx","record":{"source":"stderr","container_id":"abc"}})";

std::string sse_of(const std::string& line) {
  auto j = Json::parse(line);
  return net::format_sse(net::SseEvent{std::to_string(j["seq"].get<int>()), "", line});
}

TEST(LogsVerb, SendsTheFiltersAndPrintsOneLinePerRecord) {
  FakeApiServer api;
  api.on("GET /api/v1/logs", chunked(200, {kLine1 + "\n" + kLine2.substr(0, 20), kLine2.substr(20) + "\n"}, "application/x-ndjson"));
  auto r = run_stele(api.url(), {"logs", "shop/web", "--since", "10m", "--grep", "a b", "--stream", "stdout", "-n", "5"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "2026-01-02 03:04:05.123  shop_web-r1.1.1  stdout  hello\n"
            "2026-01-02 03:04:06.000  docker.nginx  -       {\"container_id\":\"abc\",\"source\":\"stderr\"}\n");
  auto seen = api.requests_to("GET /api/v1/logs");
  ASSERT_EQ(seen.size(), 1u);
  const std::string& t = seen[0].target;
  EXPECT_NE(t.find("app=/shop/web"), std::string::npos) << t;
  EXPECT_NE(t.find("since=10m"), std::string::npos) << t;
  EXPECT_NE(t.find("grep=a%20b"), std::string::npos) << t;
  EXPECT_NE(t.find("stream=stdout"), std::string::npos) << t;
  EXPECT_NE(t.find("limit=5"), std::string::npos) << t;
  EXPECT_EQ(t.find("follow"), std::string::npos) << t;
}

TEST(LogsVerb, JsonPrintsTheRecordsAsTheServerSentThem) {
  FakeApiServer api;
  api.on("GET /api/v1/logs", chunked(200, {kLine1 + "\n"}, "application/x-ndjson"));
  auto r = run_stele(api.url(), {"logs", "--tag", "docker.nginx", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out), Json::parse(kLine1));
  EXPECT_NE(api.requests()[0].target.find("tag=docker.nginx"), std::string::npos);
}

TEST(LogsVerb, ServerErrorsAndMissingAppFailWithOneLine) {
  FakeApiServer api;
  api.on("GET /api/v1/logs",
         chunked(400, {error_json(Error{"bad query parameter 'since': expected ...", {}, 400}).dump()}, "application/json"));
  auto r = run_stele(api.url(), {"logs", "shop/web", "--since", "yesterday"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("bad query parameter 'since'"), std::string::npos) << r.err;

  auto none = run_stele(api.url(), {"logs"});
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.err.find("give an APP or --tag"), std::string::npos) << none.err;
}

TEST(LogsVerb, FollowResumesAfterTheLastRecordSeen) {
  FakeApiServer api;
  // The first stream ends after two records (a dropped connection); the
  // second is refused, which ends following with the server's message.
  api.on_each("GET /api/v1/logs",
              {chunked(200, {": stele log stream\n\n", sse_of(kLine1), sse_of(kLine2)}, "text/event-stream"),
               chunked(200, {net::format_sse(net::SseEvent{"", "error", R"({"message":"store gone"})"})},
                       "text/event-stream")});
  auto r = run_stele(api.url(), {"logs", "shop/web", "-f"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("store gone"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("hello"), std::string::npos) << r.out;
  auto seen = api.requests_to("GET /api/v1/logs");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].target.find("follow=1"), std::string::npos);
  EXPECT_EQ(seen[0].headers.count("last-event-id"), 0u);
  EXPECT_EQ(seen[1].headers["last-event-id"], "6");
}

}  // namespace
}  // namespace stele::cli
