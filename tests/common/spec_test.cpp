#include "common/spec.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stele {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Json minimal() { return Json{{"id", "/web"}, {"cmd", "python3 -m http.server $PORT0"}}; }

Json with(Json j, const Json& fields) {
  for (const auto& [k, v] : fields.items()) j[k] = v;
  return j;
}

AppSpec parse_ok(const Json& j) {
  auto r = parse_app_spec(j);
  EXPECT_TRUE(r.has_value()) << (r ? "" : error_json(r.error()).dump());
  return r ? *r : AppSpec{};
}

// The errors reported for `path`, or {} when that field was not named.
std::vector<std::string> errors_at(const Result<AppSpec>& r, const std::string& path) {
  if (r) return {};
  for (const auto& d : r.error().details)
    if (d.path == path) return d.errors;
  return {};
}

std::vector<std::string> paths(const Result<AppSpec>& r) {
  std::vector<std::string> out;
  if (!r) {
    for (const auto& d : r.error().details) out.push_back(d.path);
  }
  return out;
}

// The single error of a spec with one bad field, at `path`.
std::string only_error(const Json& j, const std::string& path) {
  auto r = parse_app_spec(j);
  EXPECT_FALSE(r.has_value()) << j.dump();
  if (r) return "";
  EXPECT_EQ(r.error().code, 422);
  EXPECT_THAT(paths(r), ElementsAre(path)) << error_json(r.error()).dump();
  auto e = errors_at(r, path);
  return e.empty() ? "" : e.front();
}

// ---- defaults -----------------------------------------------------------

TEST(AppSpecParse, MinimalSpecGetsMarathonDefaults) {
  AppSpec s = parse_ok(minimal());
  EXPECT_EQ(s.id, "/web");
  EXPECT_EQ(s.cmd, "python3 -m http.server $PORT0");
  EXPECT_TRUE(s.args.empty());
  EXPECT_EQ(s.cpus, 1.0);
  EXPECT_EQ(s.mem, 128.0);
  EXPECT_EQ(s.disk, 0.0);
  EXPECT_EQ(s.instances, 1);
  ASSERT_EQ(s.port_definitions.size(), 1u);  // one dynamic port, as Marathon
  EXPECT_EQ(s.port_definitions[0].port, 0);
  EXPECT_EQ(s.port_definitions[0].protocol, "tcp");
  EXPECT_FALSE(s.require_ports);
  EXPECT_TRUE(s.health_checks.empty());
  EXPECT_TRUE(s.constraints.empty());
  EXPECT_EQ(s.upgrade_strategy.minimum_health_capacity, 1.0);
  EXPECT_EQ(s.upgrade_strategy.maximum_over_capacity, 1.0);
  EXPECT_EQ(s.backoff_seconds, 1.0);
  EXPECT_EQ(s.backoff_factor, 1.15);
  EXPECT_EQ(s.max_launch_delay_seconds, 300.0);
  EXPECT_EQ(s.task_kill_grace_period_seconds, 3.0);
  EXPECT_FALSE(s.user.has_value());
  EXPECT_EQ(s.extra, Json::object());
}

TEST(AppSpecParse, NullFieldsMeanDefaults) {
  AppSpec s = parse_ok(with(minimal(), {{"cpus", nullptr}, {"user", nullptr}, {"args", nullptr},
                                        {"healthChecks", nullptr}}));
  EXPECT_EQ(s.cpus, 1.0);
  EXPECT_FALSE(s.user.has_value());
  EXPECT_EQ(s.extra, Json::object());
}

TEST(AppSpecParse, ExplicitValuesAreKept) {
  AppSpec s = parse_ok(with(minimal(), {{"cpus", 0.25},
                                        {"mem", 64},
                                        {"disk", 10},
                                        {"instances", 3},
                                        {"env", {{"A", "1"}}},
                                        {"labels", {{"team", "shop"}}},
                                        {"backoffSeconds", 2},
                                        {"backoffFactor", 2},
                                        {"maxLaunchDelaySeconds", 3600},
                                        {"taskKillGracePeriodSeconds", 10},
                                        {"user", "www-data"}}));
  EXPECT_EQ(s.cpus, 0.25);
  EXPECT_EQ(s.mem, 64.0);
  EXPECT_EQ(s.disk, 10.0);
  EXPECT_EQ(s.instances, 3);
  EXPECT_EQ(s.env.at("A"), "1");
  EXPECT_EQ(s.labels.at("team"), "shop");
  EXPECT_EQ(s.backoff_seconds, 2.0);
  EXPECT_EQ(s.backoff_factor, 2.0);
  EXPECT_EQ(s.max_launch_delay_seconds, 3600.0);
  EXPECT_EQ(s.task_kill_grace_period_seconds, 10.0);
  EXPECT_EQ(s.user, "www-data");
}

TEST(AppSpecParse, IntegralFloatIsAnInteger) {
  EXPECT_EQ(parse_ok(with(minimal(), {{"instances", 3.0}})).instances, 3);
}

// ---- id -----------------------------------------------------------------------

TEST(AppSpecId, IsCanonicalised) {
  EXPECT_EQ(parse_ok(with(minimal(), {{"id", "shop/web/"}})).id, "/shop/web");
  EXPECT_EQ(parse_ok(with(minimal(), {{"id", "/a.b-c/d0"}})).id, "/a.b-c/d0");
}

TEST(AppSpecId, IsRequired) {
  Json j = minimal();
  j.erase("id");
  EXPECT_EQ(only_error(j, "/id"), "is required");
}

TEST(AppSpecId, ComesFromTheUrlWhenTheBodyHasNone) {
  Json j = minimal();
  j.erase("id");
  auto r = parse_app_spec(j, std::string("shop/web"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, "/shop/web");
}

TEST(AppSpecId, BodyAndUrlMustAgree) {
  EXPECT_TRUE(parse_app_spec(with(minimal(), {{"id", "web/"}}), std::string("/web")).has_value());
  auto r = parse_app_spec(minimal(), std::string("/other"));
  EXPECT_THAT(paths(r), ElementsAre("/id"));
  EXPECT_THAT(errors_at(r, "/id").at(0), HasSubstr("/other"));
}

TEST(AppSpecId, InvalidPathsAreRefused) {
  for (const char* bad : {"/Web", "/shop_web", "/-web", "/web-", "/a//b", "/./a", "/a/..", "/",
                          "", "/a..b", "/.a", "/a b"}) {
    auto r = parse_app_spec(with(minimal(), {{"id", bad}}));
    EXPECT_THAT(paths(r), ElementsAre("/id")) << bad;
  }
  EXPECT_EQ(only_error(with(minimal(), {{"id", 42}}), "/id"), "expected a string");
}

TEST(AppSpecId, InvalidUrlIdIsReportedOnId) {
  Json j = minimal();
  j.erase("id");
  EXPECT_THAT(paths(parse_app_spec(j, std::string("/Shop"))), ElementsAre("/id"));
}

// ---- cmd / args / container -----------------------------------------------------

TEST(AppSpecCommand, OneOfCmdOrArgsIsRequired) {
  Json j = minimal();
  j.erase("cmd");
  EXPECT_EQ(only_error(j, "/cmd"), "one of cmd or args is required");
  EXPECT_EQ(only_error(with(j, {{"args", Json::array()}}), "/cmd"), "one of cmd or args is required");
}

TEST(AppSpecCommand, ArgsAloneIsTheExecForm) {
  Json j = minimal();
  j.erase("cmd");
  AppSpec s = parse_ok(with(j, {{"args", {"/bin/server", "--port", "8080"}}}));
  EXPECT_FALSE(s.cmd.has_value());
  EXPECT_THAT(s.args, ElementsAre("/bin/server", "--port", "8080"));
}

TEST(AppSpecCommand, CmdAndArgsTogetherAreRefused) {
  EXPECT_EQ(only_error(with(minimal(), {{"args", {"x"}}}), "/cmd"), "give either cmd or args, not both");
  // Marathon's own answers carry "args": [] beside cmd.
  EXPECT_TRUE(parse_app_spec(with(minimal(), {{"args", Json::array()}})).has_value());
}

TEST(AppSpecCommand, ContainerAloneIsEnough) {
  Json container = {{"type", "DOCKER"}, {"docker", {{"image", "nginx:1.25"}}}};
  Json j = {{"id", "/nginx"}, {"container", container}};
  AppSpec s = parse_ok(j);
  EXPECT_FALSE(s.cmd.has_value());
  ASSERT_TRUE(s.container.has_value());
  EXPECT_EQ(s.container->image, "nginx:1.25");
  EXPECT_EQ(containerizer_of(s), "docker");
  EXPECT_EQ(containerizer_of(parse_ok(minimal())), "process");
  EXPECT_EQ(app_spec_json(s).at("container").at("docker").at("image"), "nginx:1.25");
  EXPECT_EQ(only_error(with(j, {{"container", "nginx"}}), "/container"), "expected an object");
}

Json docker_app(const Json& docker, const Json& more = Json::object()) {
  Json c = {{"type", "DOCKER"}, {"docker", docker}};
  for (auto& [k, v] : more.items()) c[k] = v;
  return {{"id", "/web"}, {"cmd", "httpd -f"}, {"container", c}};
}

TEST(AppSpecContainer, FullDockerSpecIsParsedAndRendered) {
  Json j = docker_app({{"image", "stele/busybox:latest"}, {"network", "HOST"}, {"forcePullImage", true},
                       {"privileged", false}, {"portMappings", Json::array()},
                       {"parameters", {{{"key", "user"}, {"value", "1000:1000"}}, {{"key", "label"}, {"value", "a=b"}}}}},
                      {{"volumes", {{{"containerPath", "/data"}, {"hostPath", "/srv/data"}, {"mode", "RO"}}}}});
  AppSpec s = parse_ok(j);
  ASSERT_TRUE(s.container);
  const ContainerSpec& c = *s.container;
  EXPECT_EQ(c.image, "stele/busybox:latest");
  EXPECT_TRUE(c.force_pull_image);
  EXPECT_EQ(c.user_parameter(), "1000:1000");
  ASSERT_EQ(c.volumes.size(), 1u);
  EXPECT_EQ(c.volumes[0].host_path, "/srv/data");
  EXPECT_EQ(c.volumes[0].container_path, "/data");
  EXPECT_TRUE(c.volumes[0].read_only);
  Json out = app_spec_json(s).at("container");
  EXPECT_EQ(out.at("docker").at("network"), "HOST");
  EXPECT_EQ(out.at("docker").at("portMappings"), Json::array());  // unknown fields kept
  EXPECT_EQ(out.at("volumes").at(0).at("mode"), "RO");
  EXPECT_EQ(parse_ok(app_spec_json(s)), s);
}

TEST(AppSpecContainer, OnlyTheHostNetworkIsAccepted) {
  EXPECT_THAT(only_error(docker_app({{"image", "x"}, {"network", "BRIDGE"}}), "/container/docker/network"),
              HasSubstr("host network"));
  EXPECT_TRUE(parse_app_spec(docker_app({{"image", "x"}, {"network", "HOST"}})).has_value());
  Json networks = with(docker_app({{"image", "x"}}), {{"networks", {{{"mode", "container/bridge"}}}}});
  EXPECT_THAT(only_error(networks, "/networks/0/mode"), HasSubstr("host network"));
  EXPECT_TRUE(parse_app_spec(with(docker_app({{"image", "x"}}), {{"networks", {{{"mode", "host"}}}}})).has_value());
  Json bridge_param = docker_app({{"image", "x"}, {"parameters", {{{"key", "net"}, {"value", "bridge"}}}}});
  EXPECT_THAT(only_error(bridge_param, "/container/docker/parameters/0/value"), HasSubstr("host network"));
}

TEST(AppSpecContainer, RefusalsNameTheField) {
  EXPECT_THAT(only_error(docker_app({{"image", "x"}, {"privileged", true}}), "/container/docker/privileged"),
              HasSubstr("privileged"));
  EXPECT_EQ(only_error(docker_app(Json::object()), "/container/docker/image"), "is required");
  EXPECT_EQ(only_error(docker_app({{"image", ""}}), "/container/docker/image"), "must not be empty");
  EXPECT_THAT(only_error(docker_app({{"image", "x"}, {"parameters", {{{"key", "cap-add"}, {"value", "ALL"}}}}}),
                         "/container/docker/parameters/0/key"),
              HasSubstr("not supported"));
  EXPECT_EQ(only_error(docker_app({{"image", "x"}}, {{"volumes", {{{"containerPath", "data"}, {"hostPath", "/d"}}}}}),
                       "/container/volumes/0/containerPath"),
            "must be an absolute path");
  EXPECT_EQ(only_error(docker_app({{"image", "x"}}, {{"volumes", {{{"containerPath", "/d"}, {"hostPath", "/d"}, {"mode", "RX"}}}}}),
                       "/container/volumes/0/mode"),
            "must be RO or RW");
  Json mesos = {{"id", "/m"}, {"container", {{"type", "MESOS"}, {"docker", {{"image", "x"}}}}}};
  EXPECT_THAT(only_error(mesos, "/container/type"), HasSubstr("only DOCKER"));
}

TEST(AppSpecCommand, BadArgsElementIsNamed) {
  Json j = minimal();
  j.erase("cmd");
  EXPECT_EQ(only_error(with(j, {{"args", {"a", 1}}}), "/args/1"), "expected a string");
  EXPECT_EQ(only_error(with(minimal(), {{"cmd", ""}}), "/cmd"), "must not be empty");
}

// ---- types and ranges --------------------------------------------------------------

TEST(AppSpecValidation, WrongTypesNameTheField) {
  EXPECT_EQ(only_error(with(minimal(), {{"cpus", "1"}}), "/cpus"), "expected a number");
  EXPECT_EQ(only_error(with(minimal(), {{"mem", true}}), "/mem"), "expected a number");
  EXPECT_EQ(only_error(with(minimal(), {{"instances", 1.5}}), "/instances"), "expected an integer");
  EXPECT_EQ(only_error(with(minimal(), {{"instances", "2"}}), "/instances"), "expected an integer");
  EXPECT_EQ(only_error(with(minimal(), {{"cmd", {"ls"}}}), "/cmd"), "expected a string");
  EXPECT_EQ(only_error(with(minimal(), {{"requirePorts", "yes"}}), "/requirePorts"), "expected a boolean");
  EXPECT_EQ(only_error(with(minimal(), {{"env", {"A=1"}}}), "/env"), "expected an object");
  EXPECT_EQ(only_error(with(minimal(), {{"constraints", "hostname:UNIQUE"}}), "/constraints"),
            "expected an array");
  EXPECT_EQ(only_error(with(minimal(), {{"upgradeStrategy", 1}}), "/upgradeStrategy"), "expected an object");
  EXPECT_EQ(only_error(with(minimal(), {{"user", 1000}}), "/user"), "expected a string");
}

TEST(AppSpecValidation, RangesAreChecked) {
  EXPECT_EQ(only_error(with(minimal(), {{"cpus", 0}}), "/cpus"), "must be greater than 0");
  EXPECT_EQ(only_error(with(minimal(), {{"mem", 0}}), "/mem"), "must be greater than 0");
  EXPECT_EQ(only_error(with(minimal(), {{"disk", -1}}), "/disk"), "must be at least 0");
  EXPECT_EQ(only_error(with(minimal(), {{"instances", -1}}), "/instances"), "must be at least 0");
  EXPECT_EQ(only_error(with(minimal(), {{"instances", 1e12}}), "/instances"), "must be at least 0");
  EXPECT_EQ(only_error(with(minimal(), {{"backoffSeconds", -0.5}}), "/backoffSeconds"), "must be at least 0");
  EXPECT_EQ(only_error(with(minimal(), {{"backoffFactor", 0.5}}), "/backoffFactor"), "must be at least 1");
  EXPECT_EQ(only_error(with(minimal(), {{"maxLaunchDelaySeconds", -1}}), "/maxLaunchDelaySeconds"),
            "must be at least 0");
  EXPECT_EQ(only_error(with(minimal(), {{"taskKillGracePeriodSeconds", -1}}), "/taskKillGracePeriodSeconds"),
            "must be at least 0");
  EXPECT_EQ(only_error(with(minimal(), {{"upgradeStrategy", {{"minimumHealthCapacity", 1.5}}}}),
                       "/upgradeStrategy/minimumHealthCapacity"),
            "must be between 0 and 1");
  EXPECT_EQ(only_error(with(minimal(), {{"upgradeStrategy", {{"maximumOverCapacity", -0.1}}}}),
                       "/upgradeStrategy/maximumOverCapacity"),
            "must be between 0 and 1");
  EXPECT_TRUE(parse_app_spec(with(minimal(), {{"instances", 0}})).has_value());
}

TEST(AppSpecValidation, UpgradeStrategyIsRead) {
  AppSpec s = parse_ok(with(minimal(), {{"upgradeStrategy",
                                         {{"minimumHealthCapacity", 0.5}, {"maximumOverCapacity", 0}}}}));
  EXPECT_EQ(s.upgrade_strategy.minimum_health_capacity, 0.5);
  EXPECT_EQ(s.upgrade_strategy.maximum_over_capacity, 0.0);
}

TEST(AppSpecValidation, AllBadFieldsAreReportedTogether) {
  Json j = {{"cpus", "lots"}, {"mem", -5}, {"instances", "two"}, {"env", {{"A", 1}}}};
  auto r = parse_app_spec(j);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, 422);
  EXPECT_EQ(r.error().message, "Object is not valid");
  EXPECT_THAT(paths(r), ::testing::UnorderedElementsAre("/id", "/cmd", "/cpus", "/mem", "/instances", "/env/A"));
  Json body = error_json(r.error());
  EXPECT_EQ(body.at("message"), "Object is not valid");
  EXPECT_EQ(body.at("details").size(), 6u);
}

TEST(AppSpecValidation, NonObjectIsRefusedAtTheRoot) {
  for (const Json& j : {Json::array(), Json(nullptr), Json("app"), Json(1)}) {
    auto r = parse_app_spec(j);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, 422);
    EXPECT_THAT(paths(r), ElementsAre("/"));
  }
}

TEST(AppSpecValidation, EnvAndLabelsMustBeStrings) {
  EXPECT_EQ(only_error(with(minimal(), {{"env", {{"DB_PASSWORD", {{"secret", "db"}}}}}}), "/env/DB_PASSWORD"),
            "secrets are not supported");
  EXPECT_EQ(only_error(with(minimal(), {{"env", {{"PORT", 80}}}}), "/env/PORT"), "expected a string");
  EXPECT_EQ(only_error(with(minimal(), {{"labels", {{"a/b", true}}}}), "/labels/a~1b"), "expected a string");
  EXPECT_THAT(paths(parse_app_spec(with(minimal(), {{"env", {{"A=B", "x"}}}}))), ElementsAre("/env/A=B"));
}

TEST(AppSpecValidation, RootUserIsRefused) {
  EXPECT_EQ(only_error(with(minimal(), {{"user", "root"}}), "/user"), "tasks never run as root");
  EXPECT_EQ(only_error(with(minimal(), {{"user", "0"}}), "/user"), "tasks never run as root");
}

// ---- access log (Stele extension) ---------------------------------------------------

TEST(AppSpecAccessLog, AbsentByDefault) {
  AppSpec s = parse_ok(minimal());
  EXPECT_FALSE(s.access_log.has_value());
  EXPECT_FALSE(app_spec_json(s).contains("accessLog"));
  EXPECT_FALSE(parse_ok(with(minimal(), {{"accessLog", nullptr}})).access_log.has_value());
}

TEST(AppSpecAccessLog, FormatAloneGetsNginxLtsvDefaults) {
  AppSpec s = parse_ok(with(minimal(), {{"accessLog", {{"format", "ltsv"}}}}));
  ASSERT_TRUE(s.access_log.has_value());
  EXPECT_EQ(s.access_log->format, AccessLogSpec::Format::kLtsv);
  EXPECT_EQ(s.access_log->status, "status");
  EXPECT_EQ(s.access_log->latency, "reqtime");
  EXPECT_EQ(s.access_log->latency_unit, AccessLogSpec::LatencyUnit::kSeconds);
  EXPECT_EQ(s.extra, Json::object());  // a known field now, not kept verbatim
}

TEST(AppSpecAccessLog, FieldsAreRead) {
  AppSpec s = parse_ok(with(minimal(), {{"accessLog",
                                         {{"format", "json"},
                                          {"status", "http.status"},
                                          {"latency", "duration ms"},
                                          {"latencyUnit", "ms"}}}}));
  ASSERT_TRUE(s.access_log.has_value());
  EXPECT_EQ(s.access_log->format, AccessLogSpec::Format::kJson);
  EXPECT_EQ(s.access_log->status, "http.status");
  EXPECT_EQ(s.access_log->latency, "duration ms");  // any JSON key
  EXPECT_EQ(s.access_log->latency_unit, AccessLogSpec::LatencyUnit::kMilliseconds);
  auto us = parse_ok(with(minimal(), {{"accessLog", {{"format", "ltsv"}, {"latency", "D"}, {"latencyUnit", "us"}}}}));
  EXPECT_EQ(us.access_log->latency_unit, AccessLogSpec::LatencyUnit::kMicroseconds);
}

TEST(AppSpecAccessLog, InvalidFieldsAreNamed) {
  auto log = [](const Json& a) { return with(minimal(), {{"accessLog", a}}); };
  EXPECT_EQ(only_error(log({{"format", "csv"}}), "/accessLog/format"), "must be \"ltsv\" or \"json\"");
  EXPECT_EQ(only_error(log({{"format", 1}}), "/accessLog/format"), "expected a string");
  EXPECT_EQ(only_error(log(Json::object()), "/accessLog/format"), "is required");
  EXPECT_EQ(only_error(log({{"status", "code"}}), "/accessLog/format"), "is required");
  EXPECT_EQ(only_error(log("ltsv"), "/accessLog"), "expected an object");
  EXPECT_EQ(only_error(log({{"format", "ltsv"}, {"latencyUnit", "ns"}}), "/accessLog/latencyUnit"),
            "must be \"s\", \"ms\" or \"us\"");
  EXPECT_EQ(only_error(log({{"format", "json"}, {"status", ""}}), "/accessLog/status"), "must not be empty");
  EXPECT_EQ(only_error(log({{"format", "json"}, {"latency", 3}}), "/accessLog/latency"), "expected a string");
  EXPECT_EQ(only_error(log({{"format", "ltsv"}, {"status", "st:atus"}}), "/accessLog/status"),
            "an LTSV label is letters, digits, '_', '.' and '-'");
  EXPECT_EQ(only_error(log({{"format", "json"}, {"status", "t"}, {"latency", "t"}}), "/accessLog/latency"),
            "must name a different field than status");
  EXPECT_EQ(only_error(log({{"format", "ltsv"}, {"latencyunit", "ms"}}), "/accessLog/latencyunit"),
            "unknown field (expected format, status, latency, latencyUnit)");
}

TEST(AppSpecAccessLog, AllBadFieldsAreReportedTogether) {
  auto r = parse_app_spec(with(minimal(), {{"accessLog", {{"format", "xml"}, {"status", ""}, {"latencyUnit", 1}}}}));
  EXPECT_THAT(paths(r), ::testing::UnorderedElementsAre("/accessLog/format", "/accessLog/status",
                                                       "/accessLog/latencyUnit"));
}

TEST(AppSpecAccessLog, RenderedWithDefaultsFilledIn) {
  AppSpec s = parse_ok(with(minimal(), {{"accessLog", {{"format", "ltsv"}}}}));
  EXPECT_EQ(app_spec_json(s).at("accessLog"),
            (Json{{"format", "ltsv"}, {"status", "status"}, {"latency", "reqtime"}, {"latencyUnit", "s"}}));
  AppSpec j = parse_ok(with(minimal(), {{"accessLog", {{"format", "json"}, {"status", "code"}, {"latencyUnit", "us"}}}}));
  EXPECT_EQ(app_spec_json(j).at("accessLog"),
            (Json{{"format", "json"}, {"status", "code"}, {"latency", "reqtime"}, {"latencyUnit", "us"}}));
  auto again = parse_app_spec(app_spec_json(j));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->access_log, j.access_log);
}

TEST(AppSpecAccessLog, MergeReplacesOrClearsIt) {
  AppSpec base = parse_ok(with(minimal(), {{"accessLog", {{"format", "ltsv"}, {"status", "code"}}}}));
  auto kept = merge_app_spec(base, {{"cpus", 2}});
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->access_log, base.access_log);
  auto replaced = merge_app_spec(base, {{"accessLog", {{"format", "json"}}}});
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->access_log, (AccessLogSpec{AccessLogSpec::Format::kJson}));  // the object is replaced whole
  auto cleared = merge_app_spec(base, {{"accessLog", nullptr}});
  ASSERT_TRUE(cleared.has_value());
  EXPECT_FALSE(cleared->access_log.has_value());
  EXPECT_FALSE(only_instances_differ(base, *cleared));
}

// ---- unknown and read-only fields ------------------------------------------------------

TEST(AppSpecExtra, UnknownFieldsAreKeptAndReadOnlyOnesDropped) {
  Json fetch = Json::array({{{"uri", "https://example.com/app.tgz"}, {"extract", true}}});
  AppSpec s = parse_ok(with(minimal(), {{"fetch", fetch},
                                        {"acceptedResourceRoles", {"*"}},
                                        {"unreachableStrategy", "disabled"},
                                        {"version", "2024-01-01T00:00:00.000Z"},
                                        {"versionInfo", {{"lastConfigChangeAt", "x"}}},
                                        {"tasksRunning", 3},
                                        {"tasksHealthy", 3},
                                        {"deployments", Json::array()},
                                        {"tasks", Json::array()},
                                        {"lastTaskFailure", Json::object()},
                                        {"readinessCheckResults", Json::array()}}));
  EXPECT_EQ(s.extra, (Json{{"fetch", fetch}, {"acceptedResourceRoles", {"*"}}, {"unreachableStrategy", "disabled"}}));
  Json out = app_spec_json(s);
  EXPECT_EQ(out.at("fetch"), fetch);
  EXPECT_FALSE(out.contains("version"));
  EXPECT_FALSE(out.contains("tasksRunning"));
}

// ---- ports --------------------------------------------------------------------------------

TEST(AppSpecPorts, LegacyPortsBecomePortDefinitions) {
  AppSpec s = parse_ok(with(minimal(), {{"ports", {8080, 0, 0}}, {"requirePorts", true}}));
  ASSERT_EQ(s.port_definitions.size(), 3u);
  EXPECT_EQ(s.port_definitions[0].port, 8080);
  EXPECT_EQ(s.port_definitions[1].port, 0);
  EXPECT_EQ(s.port_definitions[2].protocol, "tcp");
  EXPECT_TRUE(s.require_ports);
}

TEST(AppSpecPorts, PortDefinitionsAreRead) {
  AppSpec s = parse_ok(with(minimal(), {{"portDefinitions",
                                         {{{"port", 8080}, {"protocol", "udp"}, {"name", "dns"},
                                           {"labels", {{"VIP_0", "/dns:53"}}}},
                                          {{"port", 0}}}}}));
  ASSERT_EQ(s.port_definitions.size(), 2u);
  EXPECT_EQ(s.port_definitions[0].port, 8080);
  EXPECT_EQ(s.port_definitions[0].protocol, "udp");
  EXPECT_EQ(s.port_definitions[0].name, "dns");
  EXPECT_EQ(s.port_definitions[0].labels.at("VIP_0"), "/dns:53");
  EXPECT_EQ(s.port_definitions[1].protocol, "tcp");
}

TEST(AppSpecPorts, EmptyListMeansNoPorts) {
  EXPECT_TRUE(parse_ok(with(minimal(), {{"portDefinitions", Json::array()}})).port_definitions.empty());
  EXPECT_TRUE(parse_ok(with(minimal(), {{"ports", Json::array()}})).port_definitions.empty());
}

TEST(AppSpecPorts, FixedPortsMustBeInRangeAndUnique) {
  EXPECT_EQ(only_error(with(minimal(), {{"ports", {8080, 8080}}}), "/ports/1"), "port 8080 is given twice");
  EXPECT_EQ(only_error(with(minimal(), {{"ports", {70000}}}), "/ports/0"), "must be between 0 and 65535");
  EXPECT_EQ(only_error(with(minimal(), {{"ports", {"80"}}}), "/ports/0"), "expected an integer");
  EXPECT_EQ(only_error(with(minimal(), {{"portDefinitions", {{{"port", 80}}, {{"port", 80}}}}}),
                       "/portDefinitions/1/port"),
            "port 80 is given twice");
  EXPECT_EQ(only_error(with(minimal(), {{"portDefinitions", {{{"port", -1}}}}}), "/portDefinitions/0/port"),
            "must be between 0 and 65535");
  EXPECT_TRUE(parse_app_spec(with(minimal(), {{"ports", {0, 0}}})).has_value());  // dynamic ports repeat
}

TEST(AppSpecPorts, PortDefinitionFieldsAreValidated) {
  EXPECT_EQ(only_error(with(minimal(), {{"portDefinitions", {{{"protocol", "sctp"}}}}}),
                       "/portDefinitions/0/protocol"),
            "must be tcp, udp or udp,tcp");
  EXPECT_THAT(paths(parse_app_spec(with(minimal(), {{"portDefinitions", {{{"name", "Web"}}}}}))),
              ElementsAre("/portDefinitions/0/name"));
  EXPECT_THAT(paths(parse_app_spec(
                  with(minimal(), {{"portDefinitions", {{{"name", "web"}}, {{"name", "web"}}}}}))),
              ElementsAre("/portDefinitions/1/name"));
  EXPECT_EQ(only_error(with(minimal(), {{"portDefinitions", {8080}}}), "/portDefinitions/0"),
            "expected an object");
}

TEST(AppSpecPorts, BothFormsAcceptedWhenTheyAgree) {
  // Marathon's GET answers carry both.
  Json j = with(minimal(), {{"ports", {8080}}, {"portDefinitions", {{{"port", 8080}, {"name", "http"}}}}});
  AppSpec s = parse_ok(j);
  ASSERT_EQ(s.port_definitions.size(), 1u);
  EXPECT_EQ(s.port_definitions[0].name, "http");
  EXPECT_THAT(paths(parse_app_spec(with(j, {{"ports", {9090}}}))), ElementsAre("/ports"));
}

// ---- constraints ------------------------------------------------------------------------

TEST(AppSpecConstraints, ArrayAndObjectFormsAreRead) {
  AppSpec s = parse_ok(with(minimal(), {{"constraints",
                                         {{"hostname", "UNIQUE"},
                                          {"rack", "GROUP_BY", "3"},
                                          {{"fieldName", "zone"}, {"operator", "LIKE"}, {"value", "eu-.*"}},
                                          {{"fieldName", "hostname"}, {"operator", "MAX_PER"}, {"value", "2"}},
                                          {"kind", "IS", "ssd"},
                                          {"rack", "MAX_PER", 2}}}}));
  ASSERT_EQ(s.constraints.size(), 6u);
  EXPECT_EQ(s.constraints[0], (Constraint{"hostname", "UNIQUE", ""}));
  EXPECT_EQ(s.constraints[1], (Constraint{"rack", "GROUP_BY", "3"}));
  EXPECT_EQ(s.constraints[2], (Constraint{"zone", "LIKE", "eu-.*"}));
  EXPECT_EQ(s.constraints[3], (Constraint{"hostname", "MAX_PER", "2"}));
  EXPECT_EQ(s.constraints[4], (Constraint{"kind", "CLUSTER", "ssd"}));  // IS is CLUSTER
  EXPECT_EQ(s.constraints[5], (Constraint{"rack", "MAX_PER", "2"}));
  EXPECT_EQ(app_spec_json(s).at("constraints")[0], (Json{"hostname", "UNIQUE"}));
  EXPECT_EQ(app_spec_json(s).at("constraints")[2], (Json{"zone", "LIKE", "eu-.*"}));
}

TEST(AppSpecConstraints, OperatorsAndValuesAreValidated) {
  auto one = [](const Json& c) { return with(minimal(), {{"constraints", Json::array({c})}}); };
  EXPECT_THAT(only_error(one({"hostname", "SPREAD"}), "/constraints/0/1"), HasSubstr("unknown operator"));
  EXPECT_THAT(only_error(one({{"fieldName", "rack"}, {"operator", "unique"}}), "/constraints/0/operator"),
              HasSubstr("unknown operator"));
  EXPECT_EQ(only_error(one({"zone", "LIKE", "eu-("}), "/constraints/0/2"), "is not a valid regular expression");
  EXPECT_EQ(only_error(one({"zone", "UNLIKE"}), "/constraints/0"), "UNLIKE requires a value");
  EXPECT_EQ(only_error(one({"rack", "CLUSTER"}), "/constraints/0"), "CLUSTER requires a value");
  EXPECT_EQ(only_error(one({"rack", "MAX_PER", "0"}), "/constraints/0/2"), "MAX_PER's value must be a positive integer");
  EXPECT_EQ(only_error(one({"rack", "MAX_PER", "two"}), "/constraints/0/2"),
            "MAX_PER's value must be a positive integer");
  EXPECT_EQ(only_error(one({"rack", "GROUP_BY", "x"}), "/constraints/0/2"),
            "GROUP_BY's value must be a positive integer");
  EXPECT_EQ(only_error(one({"hostname", "UNIQUE", "x"}), "/constraints/0/2"), "UNIQUE takes no value");
  EXPECT_EQ(only_error(one({"zone", "LIKE", std::string(600, 'a')}), "/constraints/0/2"),
            "pattern longer than 512 characters");
  EXPECT_EQ(only_error(one({"zone", "LIKE", "(a{1000}){1000}"}), "/constraints/0/2"),
            "pattern is too complex (counted repetitions too large)");
  EXPECT_EQ(only_error(one({"zone", "LIKE", "((x[0-9]{50}){50}){50}"}), "/constraints/0/2"),
            "pattern is too complex (counted repetitions too large)");
  EXPECT_TRUE(parse_app_spec(one({"ip", "LIKE", "10\\.0\\.[0-9]{1,3}\\.([0-9]{1,3}|x{2,})"})).has_value());
  EXPECT_EQ(only_error(one({"hostname"}), "/constraints/0"),
            "expected [field, operator] or [field, operator, value]");
  EXPECT_EQ(only_error(one({1, "UNIQUE"}), "/constraints/0/0"), "expected a string");
  EXPECT_EQ(only_error(one({{"operator", "UNIQUE"}}), "/constraints/0/fieldName"), "is required");
  EXPECT_EQ(only_error(one({"", "UNIQUE"}), "/constraints/0/0"), "must not be empty");
}

// ---- health checks ------------------------------------------------------------------------

TEST(AppSpecHealthChecks, DefaultsFollowMarathon) {
  AppSpec s = parse_ok(with(minimal(), {{"healthChecks", {Json::object()}}}));
  ASSERT_EQ(s.health_checks.size(), 1u);
  const HealthCheck& h = s.health_checks[0];
  EXPECT_EQ(h.protocol, "HTTP");
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.port_index, 0);
  EXPECT_FALSE(h.port.has_value());
  EXPECT_EQ(h.grace_period_seconds, 300);
  EXPECT_EQ(h.interval_seconds, 60);
  EXPECT_EQ(h.timeout_seconds, 20);
  EXPECT_EQ(h.max_consecutive_failures, 3);
  EXPECT_FALSE(h.ignore_http1xx);
}

TEST(AppSpecHealthChecks, FieldsAreRead) {
  AppSpec s = parse_ok(with(minimal(), {{"ports", {0, 0}},
                                        {"healthChecks",
                                         {{{"protocol", "MESOS_HTTP"},
                                           {"path", "/health"},
                                           {"portIndex", 1},
                                           {"gracePeriodSeconds", 5},
                                           {"intervalSeconds", 2},
                                           {"timeoutSeconds", 1},
                                           {"maxConsecutiveFailures", 0},
                                           {"ignoreHttp1xx", true}},
                                          {{"protocol", "TCP"}, {"port", 5432}},
                                          {{"protocol", "COMMAND"}, {"command", {{"value", "pg_isready"}}}}}}}));
  ASSERT_EQ(s.health_checks.size(), 3u);
  const HealthCheck& http = s.health_checks[0];
  EXPECT_EQ(http.protocol, "HTTP");
  EXPECT_EQ(http.path, "/health");
  EXPECT_EQ(http.port_index, 1);
  EXPECT_EQ(http.grace_period_seconds, 5);
  EXPECT_EQ(http.interval_seconds, 2);
  EXPECT_EQ(http.timeout_seconds, 1);
  EXPECT_EQ(http.max_consecutive_failures, 0);
  EXPECT_TRUE(http.ignore_http1xx);
  EXPECT_EQ(s.health_checks[1].protocol, "TCP");
  EXPECT_EQ(s.health_checks[1].port, 5432);
  EXPECT_EQ(s.health_checks[2].command, "pg_isready");
}

TEST(AppSpecHealthChecks, InvalidChecksAreNamed) {
  auto one = [](const Json& hc) { return with(minimal(), {{"healthChecks", Json::array({hc})}}); };
  EXPECT_THAT(only_error(one({{"protocol", "GRPC"}}), "/healthChecks/0/protocol"), HasSubstr("must be HTTP"));
  EXPECT_EQ(only_error(one({{"protocol", "COMMAND"}}), "/healthChecks/0/command"),
            "COMMAND health checks require {\"value\": \"...\"}");
  EXPECT_EQ(only_error(one({{"protocol", "COMMAND"}, {"command", Json::object()}}), "/healthChecks/0/command/value"),
            "is required");
  EXPECT_EQ(only_error(one({{"portIndex", 1}}), "/healthChecks/0/portIndex"),
            "must be less than 1, the number of ports");
  EXPECT_EQ(only_error(one({{"port", 80}, {"portIndex", 0}}), "/healthChecks/0/port"),
            "give port or portIndex, not both");
  EXPECT_EQ(only_error(one({{"port", 0}}), "/healthChecks/0/port"), "must be between 1 and 65535");
  EXPECT_EQ(only_error(one({{"timeoutSeconds", 0}}), "/healthChecks/0/timeoutSeconds"), "must be at least 1");
  EXPECT_EQ(only_error(one({{"intervalSeconds", "1"}}), "/healthChecks/0/intervalSeconds"), "expected an integer");
  EXPECT_EQ(only_error(one({{"maxConsecutiveFailures", -1}}), "/healthChecks/0/maxConsecutiveFailures"),
            "must be at least 0");
  EXPECT_EQ(only_error(one({{"command", {{"value", "true"}}}}), "/healthChecks/0/command"),
            "only COMMAND health checks take a command");
  EXPECT_EQ(only_error(one("HTTP"), "/healthChecks/0"), "expected an object");
}

TEST(AppSpecHealthChecks, PortlessAppNeedsAFixedPortOrCommand) {
  Json app = with(minimal(), {{"portDefinitions", Json::array()}});
  EXPECT_THAT(only_error(with(app, {{"healthChecks", {{{"protocol", "TCP"}}}}}), "/healthChecks/0/portIndex"),
              HasSubstr("the app has no ports"));
  EXPECT_TRUE(parse_app_spec(with(app, {{"healthChecks", {{{"protocol", "TCP"}, {"port", 22}}}}})).has_value());
  EXPECT_TRUE(parse_app_spec(with(app, {{"healthChecks", {{{"protocol", "COMMAND"}, {"command", {{"value", "true"}}}}}}}))
                  .has_value());
}

// ---- merge --------------------------------------------------------------------------------

AppSpec base_app() {
  return parse_ok(with(minimal(), {{"cpus", 0.5},
                                   {"instances", 2},
                                   {"env", {{"A", "1"}}},
                                   {"user", "www-data"},
                                   {"fetch", {{{"uri", "https://example.com/x.tgz"}}}},
                                   {"healthChecks", {{{"path", "/health"}}}}}));
}

TEST(AppSpecMerge, PatchFieldsOverrideAndAbsentOnesAreKept) {
  AppSpec base = base_app();
  auto r = merge_app_spec(base, {{"mem", 256}, {"env", {{"B", "2"}}}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->mem, 256.0);
  EXPECT_EQ(r->env, (std::map<std::string, std::string>{{"B", "2"}}));  // a field is replaced whole
  EXPECT_EQ(r->cpus, 0.5);
  EXPECT_EQ(r->instances, 2);
  EXPECT_EQ(r->cmd, base.cmd);
  EXPECT_EQ(r->health_checks, base.health_checks);
  EXPECT_EQ(r->extra, base.extra);
  EXPECT_EQ(r->user, "www-data");
}

TEST(AppSpecMerge, NullResetsToTheDefault) {
  auto r = merge_app_spec(base_app(), {{"user", nullptr}, {"cpus", nullptr}});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->user.has_value());
  EXPECT_EQ(r->cpus, 1.0);
}

TEST(AppSpecMerge, ErrorsAreThoseOfParse) {
  Json patch = {{"cpus", "x"}, {"instances", -1}};
  auto merged = merge_app_spec(base_app(), patch);
  auto parsed = parse_app_spec(with(minimal(), patch));
  ASSERT_FALSE(merged.has_value());
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(merged.error().code, 422);
  EXPECT_EQ(paths(merged), paths(parsed));
  EXPECT_EQ(errors_at(merged, "/cpus"), errors_at(parsed, "/cpus"));
  EXPECT_THAT(paths(merge_app_spec(base_app(), Json::array())), ElementsAre("/"));
}

TEST(AppSpecMerge, ArgsReplaceCmdAndBack) {
  auto r = merge_app_spec(base_app(), {{"args", {"/bin/app", "-v"}}});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->cmd.has_value());
  EXPECT_THAT(r->args, ElementsAre("/bin/app", "-v"));
  auto back = merge_app_spec(*r, {{"cmd", "run"}});
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cmd, "run");
  EXPECT_TRUE(back->args.empty());
  EXPECT_THAT(paths(merge_app_spec(base_app(), {{"cmd", "x"}, {"args", {"y"}}})), ElementsAre("/cmd"));
}

TEST(AppSpecMerge, LegacyPortsReplacePortDefinitions) {
  auto r = merge_app_spec(base_app(), {{"ports", {8080, 8081}}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->port_definitions.size(), 2u);
  EXPECT_EQ(r->port_definitions[1].port, 8081);
}

TEST(AppSpecMerge, PortsShrinkingBelowAHealthCheckIsRefused) {
  AppSpec base = parse_ok(with(minimal(), {{"ports", {0, 0}}, {"healthChecks", {{{"portIndex", 1}}}}}));
  EXPECT_THAT(paths(merge_app_spec(base, {{"ports", {0}}})), ElementsAre("/healthChecks/0/portIndex"));
}

TEST(AppSpecMerge, IdCannotChange) {
  EXPECT_TRUE(merge_app_spec(base_app(), {{"id", "web"}}).has_value());
  EXPECT_THAT(paths(merge_app_spec(base_app(), {{"id", "/other"}})), ElementsAre("/id"));
}

// ---- rendering ------------------------------------------------------------------------------

Json full_spec() {
  return {{"id", "/shop/web"},
          {"cmd", "bin/web --port $PORT0"},
          {"cpus", 0.5},
          {"mem", 256},
          {"disk", 100},
          {"instances", 4},
          {"env", {{"RACK_ENV", "production"}}},
          {"labels", {{"HAPROXY_GROUP", "external"}}},
          {"constraints", {{"hostname", "UNIQUE"}, {{"fieldName", "rack"}, {"operator", "GROUP_BY"}}}},
          {"portDefinitions", {{{"port", 0}, {"name", "http"}}, {{"port", 9100}, {"protocol", "udp,tcp"}}}},
          {"requirePorts", true},
          {"healthChecks",
           {{{"protocol", "HTTP"}, {"path", "/health"}, {"intervalSeconds", 5}},
            {{"protocol", "TCP"}, {"port", 9100}},
            {{"protocol", "COMMAND"}, {"command", {{"value", "test -f /tmp/ok"}}}}}},
          {"upgradeStrategy", {{"minimumHealthCapacity", 0.5}, {"maximumOverCapacity", 0.2}}},
          {"backoffSeconds", 2},
          {"backoffFactor", 1.5},
          {"maxLaunchDelaySeconds", 600},
          {"taskKillGracePeriodSeconds", 30},
          {"user", "www-data"},
          {"accessLog", {{"format", "json"}, {"latency", "duration_us"}, {"latencyUnit", "us"}}},
          {"fetch", {{{"uri", "https://example.com/assets.tgz"}}}},
          {"acceptedResourceRoles", {"*"}}};
}

TEST(AppSpecJson, HasMarathonShapeWithDefaults) {
  Json out = app_spec_json(parse_ok(minimal()));
  EXPECT_EQ(out.at("id"), "/web");
  EXPECT_EQ(out.at("cmd"), "python3 -m http.server $PORT0");
  EXPECT_EQ(out.at("args"), Json::array());
  EXPECT_EQ(out.at("cpus"), 1.0);
  EXPECT_EQ(out.at("mem"), 128.0);
  EXPECT_EQ(out.at("disk"), 0.0);
  EXPECT_EQ(out.at("instances"), 1);
  EXPECT_EQ(out.at("env"), Json::object());
  EXPECT_EQ(out.at("labels"), Json::object());
  EXPECT_EQ(out.at("constraints"), Json::array());
  EXPECT_EQ(out.at("portDefinitions"), (Json::array({{{"port", 0}, {"protocol", "tcp"}}})));
  EXPECT_EQ(out.at("requirePorts"), false);
  EXPECT_EQ(out.at("healthChecks"), Json::array());
  EXPECT_EQ(out.at("upgradeStrategy"), (Json{{"minimumHealthCapacity", 1.0}, {"maximumOverCapacity", 1.0}}));
  EXPECT_EQ(out.at("backoffSeconds"), 1.0);
  EXPECT_EQ(out.at("backoffFactor"), 1.15);
  EXPECT_EQ(out.at("maxLaunchDelaySeconds"), 300.0);
  EXPECT_EQ(out.at("taskKillGracePeriodSeconds"), 3.0);
  EXPECT_FALSE(out.contains("user"));
  Json j = minimal();
  j.erase("cmd");
  j["args"] = {"a"};
  EXPECT_TRUE(app_spec_json(parse_ok(j)).at("cmd").is_null());
}

TEST(AppSpecJson, HealthChecksUseMarathonFieldNames) {
  Json checks = app_spec_json(parse_ok(full_spec())).at("healthChecks");
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[0], (Json{{"protocol", "HTTP"},
                             {"path", "/health"},
                             {"portIndex", 0},
                             {"gracePeriodSeconds", 300},
                             {"intervalSeconds", 5},
                             {"timeoutSeconds", 20},
                             {"maxConsecutiveFailures", 3},
                             {"ignoreHttp1xx", false}}));
  EXPECT_EQ(checks[1].at("port"), 9100);
  EXPECT_FALSE(checks[1].contains("portIndex"));
  EXPECT_EQ(checks[2].at("command"), (Json{{"value", "test -f /tmp/ok"}}));
}

TEST(AppSpecJson, RoundTripsThroughParse) {
  for (const Json& j : {minimal(), full_spec(), Json{{"id", "/c"}, {"container", {{"type", "DOCKER"}, {"docker", {{"image", "i"}}}}}}}) {
    AppSpec s = parse_ok(j);
    auto again = parse_app_spec(app_spec_json(s));
    ASSERT_TRUE(again.has_value()) << error_json(again.error()).dump();
    EXPECT_EQ(*again, s) << app_spec_json(s).dump();
  }
}

TEST(AppSpecJson, OnlyInstancesDiffer) {
  AppSpec a = parse_ok(full_spec());
  AppSpec b = parse_ok(with(full_spec(), {{"instances", 9}}));
  EXPECT_TRUE(only_instances_differ(a, b));
  EXPECT_TRUE(only_instances_differ(a, a));
  EXPECT_FALSE(only_instances_differ(a, parse_ok(with(full_spec(), {{"instances", 9}, {"cpus", 1}}))));
  EXPECT_FALSE(only_instances_differ(a, parse_ok(with(full_spec(), {{"env", {{"RACK_ENV", "staging"}}}}))));
  EXPECT_FALSE(only_instances_differ(a, parse_ok(with(full_spec(), {{"fetch", Json::array()}}))));
  // Spelling a default explicitly is no change.
  EXPECT_TRUE(only_instances_differ(parse_ok(minimal()), parse_ok(with(minimal(), {{"cpus", 1}, {"instances", 5}}))));
}

// The fuzz seeds double as Marathon documents users send: the valid ones
// must stay valid (and round-trip), the bad ones must stay refused.
TEST(AppSpecJson, FuzzSeedsParseAsTheirNamesSay) {
  std::filesystem::path dir = std::filesystem::path(STELE_TEST_DIR) / ".." / "fuzz" / "corpus" / "spec";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto doc = parse_json(text.str());
    ASSERT_TRUE(doc.has_value()) << entry.path();
    std::string name = entry.path().filename().string();
    bool bad = name.rfind("bad_", 0) == 0 || name.rfind("not_", 0) == 0;
    auto r = parse_app_spec(*doc);
    EXPECT_EQ(r.has_value(), !bad) << name << (r ? "" : ": " + error_json(r.error()).dump());
    if (r) {
      auto again = parse_app_spec(app_spec_json(*r));
      ASSERT_TRUE(again.has_value()) << name;
      EXPECT_EQ(*again, *r) << name;
    }
    ++seen;
  }
  EXPECT_GE(seen, 10);
}

}  // namespace
}  // namespace stele

// ---- routes (Stele extension) -------------------------------------------------------

namespace stele {
namespace {

TEST(AppSpecRoutes, ReadWithDefaultsAndRendered) {
  AppSpec s = parse_ok(with(minimal(), {{"routes", {{{"host", "Web.Localhost"}},
                                                    {{"host", "*.example.com"}, {"path", "/api"},
                                                     {"balance", "least-conn"}, {"redirectHttps", true}}}}}));
  ASSERT_EQ(s.routes.size(), 2u);
  EXPECT_EQ(s.routes[0].host, "web.localhost");  // host names are case-insensitive
  EXPECT_EQ(s.routes[0].path, "/");
  EXPECT_EQ(s.routes[0].port_index, 0);
  EXPECT_FALSE(s.routes[0].least_conn);
  EXPECT_TRUE(s.routes[1].least_conn);
  EXPECT_TRUE(s.routes[1].redirect_https);
  Json j = app_spec_json(s);
  EXPECT_EQ(j["routes"][1], Json({{"host", "*.example.com"}, {"path", "/api"}, {"portIndex", 0},
                                  {"balance", "least-conn"}, {"redirectHttps", true}}));
  EXPECT_EQ(parse_ok(j).routes, s.routes);
  EXPECT_FALSE(app_spec_json(parse_ok(minimal())).contains("routes"));
}

TEST(AppSpecRoutes, InvalidFieldsAreNamed) {
  auto routes = [](const Json& r) { return with(minimal(), {{"routes", Json::array({r})}}); };
  EXPECT_EQ(only_error(routes(Json::object()), "/routes/0/host"), "is required");
  EXPECT_EQ(only_error(routes({{"host", "a b"}}), "/routes/0/host"),
            "must be a host name (letters, digits, '-', '.'), '*.' and a name, or '*'");
  EXPECT_EQ(only_error(routes({{"host", "*.*"}}), "/routes/0/host"),
            "must be a host name (letters, digits, '-', '.'), '*.' and a name, or '*'");
  EXPECT_EQ(only_error(routes({{"host", "x"}, {"path", "api"}}), "/routes/0/path"),
            "must start with '/' and hold no space, '?' or '#'");
  EXPECT_EQ(only_error(routes({{"host", "x"}, {"portIndex", 2}}), "/routes/0/portIndex"), "the app has 1 port(s)");
  EXPECT_EQ(only_error(with(routes({{"host", "x"}}), {{"portDefinitions", Json::array()}}), "/routes/0/portIndex"),
            "the app has no ports to route to");
  EXPECT_EQ(only_error(routes({{"host", "x"}, {"balance", "random"}}), "/routes/0/balance"),
            "must be \"round-robin\" or \"least-conn\"");
  EXPECT_EQ(only_error(routes({{"host", "x"}, {"hots", "y"}}), "/routes/0/hots"),
            "unknown field (expected host, path, portIndex, balance, redirectHttps)");
  EXPECT_EQ(only_error(with(minimal(), {{"routes", {{{"host", "x"}}, {{"host", "X"}}}}}), "/routes/1"),
            "host 'x' and path '/' appear twice");
  EXPECT_EQ(only_error(with(minimal(), {{"routes", "x"}}), "/routes"), "expected an array");
}

}  // namespace
}  // namespace stele
