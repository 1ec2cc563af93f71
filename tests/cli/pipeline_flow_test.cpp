// The pipeline verbs (create, releases, pipeline, run, config, deploy
// --release, rollback) against an in-process fake of the API, through the
// real HTTP client: what they send, what they print, how they exit.
#include <gtest/gtest.h>

#include "fake_api.h"

namespace stele::cli {
namespace {

using testing_fake::chunked;
using testing_fake::CliRun;
using testing_fake::FakeApiServer;
using testing_fake::json_answer;
using testing_fake::run_stele;
using net::HttpResponse;

class PipelineVerbs : public ::testing::Test {
 protected:
  CliRun run(std::vector<std::string> args) { return run_stele(api_.url(), std::move(args)); }
  Json body_of(const std::string& prefix) {
    auto seen = api_.requests_to(prefix);
    EXPECT_EQ(seen.size(), 1u) << prefix;
    return seen.empty() ? Json() : Json::parse(seen[0].body);
  }

  FakeApiServer api_;
};

// ---- create

TEST_F(PipelineVerbs, CreatePrintsTheGitRemoteTheServerGives) {
  api_.on("POST /api/v1/apps",
          json_answer(201, {{"app", {{"id", "/hello"}, {"instances", 2}}}, {"git", "http://pub:7070/git/hello.git"}}));
  CliRun r = run({"create", "hello", "--instances", "2"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "Created /hello (no release yet). Add its git remote and push to build and deploy it:\n"
            "  git remote add stele http://pub:7070/git/hello.git\n"
            "  git push stele main\n");
  EXPECT_EQ(body_of("POST /api/v1/apps"), Json({{"id", "/hello"}, {"instances", 2}}));
}

TEST_F(PipelineVerbs, CreateBuildsTheRemoteFromTheApiWhenTheAnswerHasNone) {
  api_.on("POST /api/v1/apps", json_answer(201, {{"app", {{"id", "/shop/web"}}}}));
  CliRun r = run({"create", "/shop/web"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("  git remote add stele " + api_.url() + "/git/shop_web.git\n"), std::string::npos) << r.out;
  EXPECT_EQ(body_of("POST /api/v1/apps"), Json({{"id", "/shop/web"}}));  // no instances unless given

  r = run({"create", "/shop/web", "--json"});
  EXPECT_EQ(Json::parse(r.out)["git"], api_.url() + "/git/shop_web.git");
}

TEST_F(PipelineVerbs, CreateRefusedIsOneLine) {
  api_.on("POST /api/v1/apps", HttpResponse::error(Error{"An app with id /hello already exists", {}, 409}, 409));
  CliRun r = run({"create", "hello"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "stele: An app with id /hello already exists\n");
  EXPECT_EQ(r.out, "");
}

// ---- releases

Json releases_answer() {
  return {{"releases",
           {{{"number", 1}, {"status", "ready"}, {"cause", "push"}, {"sha", "0123456789abcdef0123"},
             {"artifact", "sha256:aaaaaaaaaaaabbbbbbbbbbbbcccccccccccc"}, {"artifactSize", 1536000},
             {"durations", {{"build", 4200}, {"test", 800}, {"smoke", 2500}}}},
            {{"number", 2}, {"status", "failed"}, {"cause", "push"}, {"sha", "fedcba9876543210"},
             {"step", "test"}, {"reason", "exit status 1"}}}}};
}

TEST_F(PipelineVerbs, ReleasesMarksTheAppsCurrentRelease) {
  api_.on("GET /api/v1/apps/hello/releases", json_answer(200, releases_answer()));
  api_.on("GET /api/v1/apps/hello", json_answer(200, {{"app", {{"id", "/hello"}, {"release", 1}}}}));
  CliRun r = run({"releases", "hello"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "RELEASE   CURRENT   STATUS   CAUSE   SHA        ARTIFACT            BUILD   TEST   SMOKE   AGE   NOTE\n"
            "2                   failed   push    fedcba98   -                   -       -      -       -     test: exit status 1\n"
            "1         *         ready    push    01234567   aaaaaaaaaaaa 1.5M   4.2s    0.8s   2.5s    -\n");
  r = run({"releases", "hello", "--json"});
  EXPECT_EQ(Json::parse(r.out), releases_answer());
}

// ---- pipeline

void release_answers(FakeApiServer& api, const std::string& status, const std::string& step = "",
                     const std::string& reason = "") {
  api.on("GET /api/v1/apps/hello/releases",
         json_answer(200, {{"releases", {{{"number", 2}}, {{"number", 3}}, {{"number", 1}}}}}));
  api.on("GET /api/v1/apps/hello/releases/3",
         json_answer(200, {{"number", 3}, {"status", status}, {"step", step}, {"reason", reason}}));
}

TEST_F(PipelineVerbs, PipelinePrintsTheNewestReleasesLog) {
  release_answers(api_, "ready");
  api_.on("GET /api/v1/apps/hello/releases/3/log", HttpResponse::text(200, "-----> Building\nmake: done\n"));
  CliRun r = run({"pipeline", "hello"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "-----> Building\nmake: done\n");
  EXPECT_TRUE(api_.requests_to("GET /api/v1/apps/hello/releases/3/log?follow").empty());
}

TEST_F(PipelineVerbs, PipelineFollowPrintsEachByteOnceAndExitsZeroWhenReady) {
  release_answers(api_, "ready");
  std::string so_far = "-----> Building\n";
  api_.on("GET /api/v1/apps/hello/releases/3/log", HttpResponse::text(200, so_far));
  api_.on("GET /api/v1/apps/hello/releases/3/log?follow=1",
          chunked(200, {"-----> Bui", "lding\nok\n", "-----> Release 3 ready\n"}, "text/plain"));
  CliRun r = run({"pipeline", "hello", "--follow"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "-----> Building\nok\n-----> Release 3 ready\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(PipelineVerbs, PipelineFollowOfAFailedReleaseExitsOneWithTheStep) {
  release_answers(api_, "failed", "test", "exit status 1");
  api_.on("GET /api/v1/apps/hello/releases/3/log", HttpResponse::text(200, ""));
  api_.on("GET /api/v1/apps/hello/releases/3/log?follow=1",
          chunked(200, {"FAIL: test_index\n", "-----> test failed\n"}, "text/plain"));
  CliRun r = run({"pipeline", "hello", "-f"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "FAIL: test_index\n-----> test failed\n");
  EXPECT_EQ(r.err, "stele: release 3 failed at test: exit status 1\n");
}

TEST_F(PipelineVerbs, PipelineFollowReconnectsWhenTheStreamEndsEarly) {
  // The release is still building when the stream ends: follow again, skip what was printed.
  api_.on_each("GET /api/v1/apps/hello/releases/3",
               {json_answer(200, {{"number", 3}, {"status", "building"}}),
                json_answer(200, {{"release", {{"number", 3}, {"status", "ready"}}}})});  // wrapped, too
  api_.on("GET /api/v1/apps/hello/releases/3/log", HttpResponse::text(200, "a\n"));
  api_.on_each("GET /api/v1/apps/hello/releases/3/log?follow=1",
               {chunked(200, {"a\nb\n"}, "text/plain"), chunked(200, {"a\nb\nc\n"}, "text/plain")});
  CliRun r = run({"pipeline", "hello", "--release", "3", "--follow"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "a\nb\nc\n");
}

TEST_F(PipelineVerbs, PipelineWithoutReleasesSaysHowToMakeOne) {
  api_.on("GET /api/v1/apps/hello/releases", json_answer(200, {{"releases", Json::array()}}));
  CliRun r = run({"pipeline", "hello"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "stele: no releases of /hello yet: push to its git remote (see `stele create`)\n");
}

TEST_F(PipelineVerbs, PipelineOfAMissingReleaseIsTheServersError) {
  api_.on("GET /api/v1/apps/hello/releases/9",
          HttpResponse::error(Error{"Release 9 of /hello does not exist", {}, 404}, 404));
  CliRun r = run({"pipeline", "hello", "--release", "9"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "stele: Release 9 of /hello does not exist\n");
}

// ---- run

TEST_F(PipelineVerbs, RunStreamsOutputRawAndExitsWithTheCommandsCode) {
  api_.on("POST /api/v1/apps/hello/run",
          chunked(200,
                  {R"({"type":"output","data":"out\n"})" "\n" R"({"type":"out)",
                   R"(put","data":"no newline"})" "\n",
                   R"({"type":"exit","code":3,"reason":""})" "\n"},
                  "application/x-ndjson"));
  CliRun r = run({"run", "hello", "--release", "2", "--", "sh", "-c", "echo out; exit 3"});
  EXPECT_EQ(r.rc, 3);
  EXPECT_EQ(r.out, "out\nno newline");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(body_of("POST /api/v1/apps/hello/run"), Json({{"cmd", "sh -c 'echo out; exit 3'"}, {"release", 2}}));
}

TEST_F(PipelineVerbs, RunPrintsTheReasonAndFailsWithoutAnExitLine) {
  api_.on("POST /api/v1/apps/hello/run",
          chunked(200, {R"j({"type":"exit","code":137,"reason":"memory limit exceeded (64 MB)"})j" "\n"},
                  "application/x-ndjson"));
  CliRun r = run({"run", "hello", "--", "python3 big.py"});
  EXPECT_EQ(r.rc, 137);
  EXPECT_EQ(r.err, "stele: memory limit exceeded (64 MB)\n");
  EXPECT_EQ(body_of("POST /api/v1/apps/hello/run"), Json({{"cmd", "python3 big.py"}}));

  api_.on("POST /api/v1/apps/hello/run", chunked(200, {R"({"type":"output","data":"x"})"}, "application/x-ndjson"));
  r = run({"run", "hello", "--", "true"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "x");
  EXPECT_EQ(r.err, "stele: the command's output ended without its exit status\n");
}

TEST_F(PipelineVerbs, RunRefusedIsTheServersErrorNotOutput) {
  api_.on("POST /api/v1/apps/hello/run",
          HttpResponse::error(Error{"App '/hello' has no ready release", {}, 409}, 409));
  CliRun r = run({"run", "hello", "--", "ls"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "stele: App '/hello' has no ready release\n");
}

// ---- config

TEST_F(PipelineVerbs, ConfigShowsATableAndRevealsOnRequest) {
  api_.on("GET /api/v1/apps/hello/config", json_answer(200, {{"GREETING", "***"}, {"DB_URL", "***"}}));
  api_.on("GET /api/v1/apps/hello/config?reveal=1",
          json_answer(200, {{"config", {{"GREETING", "hi"}, {"DB_URL", "pg://db"}}}}));  // wrapped, too
  CliRun r = run({"config", "hello"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "KEY        VALUE\nDB_URL     ***\nGREETING   ***\n");
  r = run({"config", "hello", "--reveal"});
  EXPECT_EQ(r.out, "KEY        VALUE\nDB_URL     pg://db\nGREETING   hi\n");
  r = run({"config", "hello", "--reveal", "--json"});
  EXPECT_EQ(Json::parse(r.out)["config"]["GREETING"], "hi");
}

TEST_F(PipelineVerbs, ConfigSetSendsThePatchAndNamesTheNewRelease) {
  api_.on("PATCH /api/v1/apps/hello/config", json_answer(200, {{"release", 5}, {"deploymentId", "d5"}}));
  CliRun r = run({"config", "set", "hello", "GREETING=hi there", "EMPTY=", "URL=a=b"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "Set EMPTY, GREETING, URL on /hello: release 5 (deployment d5)\n"
            "Follow it with: stele events --app /hello   (or add --wait)\n");
  EXPECT_EQ(body_of("PATCH /api/v1/apps/hello/config"), Json({{"GREETING", "hi there"}, {"EMPTY", ""}, {"URL", "a=b"}}));
}

TEST_F(PipelineVerbs, ConfigSetNamesABadArgumentAndSendsNothing) {
  CliRun r = run({"config", "set", "hello", "GREETING=hi", "oops"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "stele: bad argument 'oops': expected KEY=VALUE (e.g. GREETING=hi)\n");
  r = run({"config", "set", "hello", "1X=y"});
  EXPECT_EQ(r.err, "stele: bad argument '1X=y': a key must not start with a digit\n");
  EXPECT_TRUE(api_.requests().empty());
}

TEST_F(PipelineVerbs, ConfigUnsetSendsNulls) {
  api_.on("PATCH /api/v1/apps/hello/config", json_answer(200, {{"release", 6}, {"deploymentId", "d6"}}));
  CliRun r = run({"config", "unset", "hello", "GREETING", "--json"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out), Json({{"release", 6}, {"deploymentId", "d6"}}));
  EXPECT_EQ(body_of("PATCH /api/v1/apps/hello/config"), Json({{"GREETING", nullptr}}));
  r = run({"config", "unset", "hello", "A=b"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("config unset takes keys only"), std::string::npos) << r.err;
}

TEST_F(PipelineVerbs, ConfigWithoutAnAppSaysSo) {
  CliRun r = run({"config"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "stele: config needs an app: stele config APP (or config set / unset)\n");
}

// ---- deploy --release, rollback

TEST_F(PipelineVerbs, DeployAReleaseAndRollBack) {
  api_.on("POST /api/v1/apps/hello/deploy", json_answer(200, {{"deploymentId", "d8"}, {"release", 4}}));
  CliRun r = run({"deploy", "hello", "--release", "4"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "Deploying /hello release 4 (deployment d8)");
  EXPECT_EQ(body_of("POST /api/v1/apps/hello/deploy"), Json({{"release", 4}}));

  api_.on("POST /api/v1/apps/hello/rollback", json_answer(200, {{"deploymentId", "d9"}, {"release", 3}}));
  r = run({"rollback", "hello"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "Rolling /hello back to release 3 (deployment d9)");
  EXPECT_EQ(body_of("POST /api/v1/apps/hello/rollback"), Json::object());
}

}  // namespace
}  // namespace stele::cli
