#include "pipeline/stele_json.h"

#include <gtest/gtest.h>

#include <string>

using stele::Error;
using stele::Json;
using stele::pipeline::parse_repo_spec;
using stele::pipeline::parse_stele_json;
using stele::pipeline::repo_spec_json;
using stele::pipeline::RepoSpec;

namespace {

// The errors reported for `path`, empty when none.
std::vector<std::string> errors_at(const Error& e, const std::string& path) {
  for (const auto& f : e.details)
    if (f.path == path) return f.errors;
  return {};
}

Error parse_error(const std::string& text, const std::string& app = "/web") {
  auto r = parse_stele_json(text, app);
  EXPECT_FALSE(r) << text;
  return r ? Error{} : r.error();
}

}  // namespace

TEST(SteleJson, DefaultsWhenOnlyACommandIsGiven) {
  auto r = parse_stele_json(R"({"cmd": "./server"})", "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->app.id, "/web");
  EXPECT_EQ(r->app.cmd, "./server");
  EXPECT_EQ(r->branch, "main");
  EXPECT_TRUE(r->auto_deploy);
  EXPECT_FALSE(r->build);
  EXPECT_FALSE(r->test);
  EXPECT_FALSE(r->release);
  EXPECT_FALSE(r->dockerfile);
}

TEST(SteleJson, ReadsEveryPipelineField) {
  auto r = parse_stele_json(R"({"id": "web", "cmd": "./server", "instances": 3, "cpus": 0.5,
      "build": {"cmd": "make"}, "test": {"cmd": "make test"}, "release": {"cmd": "./migrate"},
      "branch": "refs/heads/prod", "autoDeploy": false})",
                            "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->build->cmd, "make");
  EXPECT_EQ(r->test->cmd, "make test");
  EXPECT_EQ(r->release->cmd, "./migrate");
  EXPECT_EQ(r->branch, "prod");
  EXPECT_FALSE(r->auto_deploy);
  EXPECT_EQ(r->app.instances, 3);
  EXPECT_DOUBLE_EQ(r->app.cpus, 0.5);
}

TEST(SteleJson, PipelineFieldsDoNotEndUpInExtra) {
  auto r = parse_stele_json(R"({"cmd": "x", "build": {"cmd": "make"}, "test": {"cmd": "t"},
      "release": {"cmd": "r"}, "branch": "main", "autoDeploy": true, "fetch": [{"uri": "u"}]})",
                            "/web");
  ASSERT_TRUE(r) << r.error().message;
  for (const char* k : {"build", "test", "release", "branch", "autoDeploy"}) EXPECT_FALSE(r->app.extra.contains(k)) << k;
  EXPECT_TRUE(r->app.extra.contains("fetch"));  // unknown Marathon fields are still kept
}

TEST(SteleJson, DockerfileBuildIsKept) {
  auto r = parse_stele_json(R"({"cmd": "x", "build": {"dockerfile": "docker/Dockerfile"}})", "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->dockerfile, "docker/Dockerfile");
  EXPECT_EQ(r->build->cmd, "docker build -f docker/Dockerfile .");
  EXPECT_EQ(repo_spec_json(*r)["build"], Json({{"dockerfile", "docker/Dockerfile"}}));
  // The build's limits apply to a Dockerfile build too.
  r = parse_stele_json(R"({"cmd": "x", "build": {"dockerfile": "Dockerfile", "mem": 64, "cpus": 0.5}})", "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->build->mem, 64);
  EXPECT_EQ(repo_spec_json(*r)["build"], Json({{"dockerfile", "Dockerfile"}, {"mem", 64}, {"cpus", 0.5}}));
}

TEST(SteleJson, NullIsAbsent) {
  auto r = parse_stele_json(R"({"cmd": "x", "build": null, "branch": null, "autoDeploy": null})", "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->build);
  EXPECT_EQ(r->branch, "main");
  EXPECT_TRUE(r->auto_deploy);
}

TEST(SteleJson, WrongTypesAreEachNamed) {
  Error e = parse_error(R"({"cmd": "x", "build": "make", "test": 3, "release": [],
      "branch": 7, "autoDeploy": "yes"})");
  EXPECT_EQ(e.code, 422);
  EXPECT_EQ(e.message, "stele.json is not valid");
  ASSERT_EQ(e.details.size(), 5u);
  for (const char* p : {"/build", "/test", "/release", "/branch", "/autoDeploy"})
    EXPECT_FALSE(errors_at(e, p).empty()) << p;
  EXPECT_NE(errors_at(e, "/autoDeploy")[0].find("true or false"), std::string::npos);
}

TEST(SteleJson, StepFieldsAreChecked) {
  Error e = parse_error(R"({"cmd": "x", "build": {}, "test": {"cmd": 1}, "release": {"cmd": "  "}})");
  EXPECT_EQ(errors_at(e, "/build/cmd"), std::vector<std::string>{"is required (or dockerfile)"});
  EXPECT_FALSE(errors_at(e, "/test/cmd").empty());
  EXPECT_EQ(errors_at(e, "/release/cmd"), std::vector<std::string>{"must not be empty"});
}

TEST(SteleJson, UnknownKeysInStepsAreTypos) {
  Error e = parse_error(R"({"cmd": "x", "build": {"cmd": "make", "cmnd": "y"}, "test": {"cmd": "t", "dockerfile": "D"}})");
  EXPECT_FALSE(errors_at(e, "/build/cmnd").empty());
  EXPECT_FALSE(errors_at(e, "/test/dockerfile").empty());
}

TEST(SteleJson, BuildTakesCmdOrDockerfileNotBoth) {
  Error e = parse_error(R"({"cmd": "x", "build": {"cmd": "make", "dockerfile": "Dockerfile"}})");
  EXPECT_FALSE(errors_at(e, "/build").empty());
  e = parse_error(R"({"cmd": "x", "build": {"dockerfile": "../outside/Dockerfile"}})");
  EXPECT_FALSE(errors_at(e, "/build/dockerfile").empty());
  e = parse_error(R"({"cmd": "x", "build": {"dockerfile": "/etc/Dockerfile"}})");
  EXPECT_FALSE(errors_at(e, "/build/dockerfile").empty());
}

TEST(SteleJson, BadBranchNames) {
  for (const char* b : {"", "a..b", "has space", "-x", "x.lock", "x/", "a:b", "refs/heads/"}) {
    Error e = parse_error(std::string(R"({"cmd": "x", "branch": )") + Json(b).dump() + "}");
    EXPECT_FALSE(errors_at(e, "/branch").empty()) << b;
  }
}

TEST(SteleJson, SpecErrorsAreMergedWithPipelineErrors) {
  Error e = parse_error(R"({"cmd": "x", "cpus": -1, "mem": "lots", "autoDeploy": 1})");
  EXPECT_EQ(e.code, 422);
  EXPECT_EQ(e.message, "stele.json is not valid");
  EXPECT_FALSE(errors_at(e, "/cpus").empty());
  EXPECT_FALSE(errors_at(e, "/mem").empty());
  EXPECT_FALSE(errors_at(e, "/autoDeploy").empty());
  // Sorted by path, one entry per path.
  for (size_t i = 1; i < e.details.size(); ++i) EXPECT_LT(e.details[i - 1].path, e.details[i].path);
}

TEST(SteleJson, NestedSpecPathsComeFromTheSpecParser) {
  Error e = parse_error(R"({"cmd": "x", "healthChecks": [{"protocol": "SMOKE"}]})");
  EXPECT_FALSE(errors_at(e, "/healthChecks/0/protocol").empty());
}

TEST(SteleJson, IdMustBeTheRepositorysApp) {
  Error e = parse_error(R"({"id": "/other", "cmd": "x"})", "/shop/web");
  ASSERT_EQ(errors_at(e, "/id").size(), 1u);
  EXPECT_NE(errors_at(e, "/id")[0].find("/other"), std::string::npos);
  EXPECT_NE(errors_at(e, "/id")[0].find("/shop/web"), std::string::npos);
  e = parse_error(R"({"id": 5, "cmd": "x"})", "/shop/web");
  EXPECT_FALSE(errors_at(e, "/id").empty());

  auto r = parse_stele_json(R"({"id": "shop/web/", "cmd": "x"})", "/shop/web");  // same id, other spelling
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->app.id, "/shop/web");
}

TEST(SteleJson, InvalidJsonNamesLineAndColumn) {
  Error e = parse_error("{\n  \"cmd\": \"x\",\n  \"build\": {\"cmd\": }\n}");
  EXPECT_EQ(e.code, 422);
  EXPECT_NE(e.message.find("stele.json is not valid JSON"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("line 3"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("column"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("json.exception"), std::string::npos) << e.message;
}

TEST(SteleJson, TopLevelMustBeAnObject) {
  Error e = parse_error("[1, 2]");
  EXPECT_FALSE(errors_at(e, "/").empty());
}

TEST(SteleJson, RoundTripsThroughItsJson) {
  auto r = parse_stele_json(R"({"cmd": "./server", "env": {"A": "1"}, "build": {"cmd": "make"},
      "test": {"cmd": "make test"}, "branch": "release/v2", "autoDeploy": false, "x-extra": 1})",
                            "/web");
  ASSERT_TRUE(r) << r.error().message;
  Json j = repo_spec_json(*r);
  EXPECT_EQ(j["branch"], "release/v2");
  EXPECT_EQ(j["autoDeploy"], false);
  EXPECT_FALSE(j.contains("release"));
  auto again = parse_repo_spec(j, "/web");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *r);
}

TEST(SteleJson, BuildLimitsAreRead) {
  auto r = parse_stele_json(R"({"cmd": "x", "build": {"cmd": "make", "mem": 256, "cpus": 0.5, "timeoutSeconds": 600}})",
                            "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->build->cmd, "make");
  EXPECT_EQ(r->build->mem, 256.0);
  EXPECT_EQ(r->build->cpus, 0.5);
  EXPECT_EQ(r->build->timeout_seconds, 600);
  auto again = parse_repo_spec(repo_spec_json(*r), "/web");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *r);
}

TEST(SteleJson, BuildLimitsDefaultToUnset) {
  auto r = parse_stele_json(R"({"cmd": "x", "build": {"cmd": "make", "mem": null}})", "/web");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->build->mem);
  EXPECT_FALSE(r->build->cpus);
  EXPECT_FALSE(r->build->timeout_seconds);
  EXPECT_EQ(repo_spec_json(*r)["build"], Json({{"cmd", "make"}}));  // nothing invented
}

TEST(SteleJson, BadBuildLimitsAreEachNamed) {
  Error e = parse_error(R"({"cmd": "x", "build": {"cmd": "make", "mem": 0, "cpus": "two", "timeoutSeconds": 1.5}})");
  EXPECT_EQ(errors_at(e, "/build/mem"), std::vector<std::string>{"expected a number > 0, got 0"});
  EXPECT_EQ(errors_at(e, "/build/cpus"), std::vector<std::string>{"expected a number > 0, got string"});
  ASSERT_EQ(errors_at(e, "/build/timeoutSeconds").size(), 1u);
  EXPECT_NE(errors_at(e, "/build/timeoutSeconds")[0].find("whole seconds from 1 to 86400"), std::string::npos);
  e = parse_error(R"({"cmd": "x", "build": {"cmd": "make", "mem": -512, "timeoutSeconds": 86401}})");
  EXPECT_FALSE(errors_at(e, "/build/mem").empty());
  EXPECT_FALSE(errors_at(e, "/build/timeoutSeconds").empty());
}

TEST(SteleJson, LimitsBelongToBuildsOnly) {
  Error e = parse_error(R"({"cmd": "x", "test": {"cmd": "t", "mem": 64}, "release": {"cmd": "r", "timeoutSeconds": 5}})");
  EXPECT_FALSE(errors_at(e, "/test/mem").empty());
  EXPECT_FALSE(errors_at(e, "/release/timeoutSeconds").empty());
  e = parse_error(R"({"cmd": "x", "build": {"dockerfile": "Dockerfile", "mem": -1}})");
  EXPECT_FALSE(errors_at(e, "/build/mem").empty());
}
