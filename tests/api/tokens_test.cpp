// API tokens (docs/api.md "Tokens"): the pure role and name rules, and the
// decisions check_auth / check_agent_auth make through a real ApiServer over
// a SQLite store (no sockets: requests go straight to the router's handlers).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "../common/run_awaitable.h"
#include "api/api_impl.h"
#include "common/clock.h"

namespace stele::api {
namespace {

TEST(TokenRoles, EachRoleAllowsWhatTheOnesBelowAllow) {
  EXPECT_TRUE(role_allows(Role::admin, Role::deployer));
  EXPECT_TRUE(role_allows(Role::admin, Role::admin));
  EXPECT_TRUE(role_allows(Role::deployer, Role::viewer));
  EXPECT_FALSE(role_allows(Role::deployer, Role::admin));
  EXPECT_FALSE(role_allows(Role::viewer, Role::deployer));
  EXPECT_TRUE(role_allows(Role::viewer, Role::viewer));
}

TEST(TokenRoles, ParseAndNameRoundTrip) {
  for (Role r : {Role::viewer, Role::deployer, Role::admin}) EXPECT_EQ(parse_role(role_name(r)), r);
  EXPECT_FALSE(parse_role("root"));
  EXPECT_FALSE(parse_role("Admin"));
  EXPECT_FALSE(parse_role(""));
}

TEST(TokenRoles, ReadsNeedViewerEverythingElseDeployer) {
  net::HttpRequest req;
  for (const char* m : {"GET", "HEAD"}) {
    req.method = m;
    EXPECT_EQ(required_role(req), Role::viewer) << m;
  }
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE"}) {
    req.method = m;
    EXPECT_EQ(required_role(req), Role::deployer) << m;
  }
}

TEST(TokenNames, FollowThePattern) {
  EXPECT_EQ(token_name_error("ci"), "");
  EXPECT_EQ(token_name_error("0day.bot_1-x"), "");
  EXPECT_EQ(token_name_error(std::string(63, 'a')), "");
  EXPECT_NE(token_name_error(std::string(64, 'a')), "");
  EXPECT_NE(token_name_error(""), "");
  EXPECT_NE(token_name_error("-ci"), "");
  EXPECT_NE(token_name_error(".ci"), "");
  EXPECT_NE(token_name_error("CI"), "");
  EXPECT_NE(token_name_error("c i"), "");
  EXPECT_NE(token_name_error("ci/x"), "");
}

TEST(TokenNames, BearerSecretIsTheHeaderValue) {
  net::HttpRequest req;
  EXPECT_EQ(bearer_secret(req), "");
  req.headers["authorization"] = "Bearer stl_abc";
  EXPECT_EQ(bearer_secret(req), "stl_abc");
  req.headers["authorization"] = "bearer  stl_abc ";
  EXPECT_EQ(bearer_secret(req), "stl_abc");
  req.headers["authorization"] = "Basic Z2l0OnRvaw==";
  EXPECT_EQ(bearer_secret(req), "");
}

class TokenAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("stele-tokens-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = store::open_sqlite_store((dir_ / "state.db").string());
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    cluster_ = std::make_unique<deploy::Cluster>(*store_, clock_, deploy::ClusterOptions{});
    ASSERT_TRUE(cluster_->load());
  }
  void TearDown() override {
    api_.reset();
    cluster_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(bool require_token) {
    ApiOptions o;
    o.token = "boot-secret";
    o.join_token = "join-secret";
    o.require_token = require_token;
    api_ = std::make_unique<ApiServer>(io_, *cluster_, *store_, o);
  }
  // Status of `method path` with `token` ("" = none) and `body`.
  std::pair<int, Json> call(const std::string& method, const std::string& path, const std::string& token,
                            const std::string& body = "") {
    net::HttpRequest req;
    req.method = method;
    req.path = path;
    req.target = path;
    req.body = body;
    req.peer = "127.0.0.1";
    if (!token.empty()) req.headers["authorization"] = "Bearer " + token;
    bool matched = false;
    const net::Handler* h = api_->router().match(req, matched);
    if (!h) return {404, Json()};
    net::HttpResponse r = test::run((*h)(req));
    auto j = parse_json(r.body);
    return {r.status, j ? *j : Json()};
  }
  std::string create(const std::string& name, const std::string& role) {
    auto [status, j] = call("POST", "/api/v1/tokens", "boot-secret", Json{{"name", name}, {"role", role}}.dump());
    EXPECT_EQ(status, 201) << j.dump();
    return j.value("token", "");
  }

  std::filesystem::path dir_;
  SimulatedClock clock_{1'767'323'045'000};
  boost::asio::io_context io_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<deploy::Cluster> cluster_;
  std::unique_ptr<ApiServer> api_;
};

TEST_F(TokenAuthTest, CreatedSecretIsShownOnceAndOnlyItsHashIsStored) {
  start(true);
  std::string secret = create("ci", "deployer");
  ASSERT_EQ(secret.size(), 36u);
  EXPECT_EQ(secret.substr(0, 4), "stl_");
  auto stored = store_->get("tokens", "ci");
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->find(secret), std::string::npos);
  auto [status, list] = call("GET", "/api/v1/tokens", "boot-secret");
  EXPECT_EQ(status, 200);
  ASSERT_EQ(list["tokens"].size(), 1u);
  EXPECT_FALSE(list["tokens"][0].contains("sha256"));
  EXPECT_FALSE(list["tokens"][0].contains("token"));
  EXPECT_EQ(call("POST", "/api/v1/tokens", "boot-secret", R"({"name":"ci","role":"viewer"})").first, 409);
}

TEST_F(TokenAuthTest, BadBodiesNameTheField) {
  start(true);
  auto [status, j] = call("POST", "/api/v1/tokens", "boot-secret", R"({"name":"Bad Name","role":"root"})");
  EXPECT_EQ(status, 422);
  ASSERT_EQ(j["details"].size(), 2u) << j.dump();
  EXPECT_EQ(j["details"][0]["path"], "/name");
  EXPECT_EQ(j["details"][1]["path"], "/role");
  EXPECT_NE(j["details"][1]["errors"][0].get<std::string>().find("admin, deployer, viewer"), std::string::npos);
}

TEST_F(TokenAuthTest, RolesDecideAndUnknownTokensAreRefusedEvenOnLoopback) {
  start(false);  // loopback, no --require-token: no token is the local admin
  std::string viewer = create("v", "viewer"), deployer = create("d", "deployer");
  EXPECT_EQ(call("GET", "/api/v1/apps", viewer).first, 200);
  EXPECT_EQ(call("POST", "/api/v1/apps", "", "{}").first, 422);  // allowed through, bad spec
  auto [forbidden, why] = call("POST", "/api/v1/apps", viewer, "{}");
  EXPECT_EQ(forbidden, 403);
  EXPECT_NE(why.value("message", "").find("deployer"), std::string::npos) << why.dump();
  EXPECT_EQ(call("POST", "/api/v1/apps", deployer, "{}").first, 422);  // allowed through, bad spec
  EXPECT_EQ(call("GET", "/api/v1/tokens", deployer).first, 403);
  EXPECT_EQ(call("GET", "/api/v1/tokens", viewer).first, 403);
  EXPECT_EQ(call("GET", "/api/v1/apps", "stl_00000000000000000000000000000000").first, 401);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/v", "boot-secret").first, 200);
  EXPECT_EQ(call("GET", "/api/v1/apps", viewer).first, 401);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/v", "boot-secret").first, 404);
}

TEST_F(TokenAuthTest, RequiredTokensRefuseAnonymousChanges) {
  start(true);
  EXPECT_EQ(call("POST", "/api/v1/apps", "", "{}").first, 401);
  EXPECT_EQ(call("GET", "/api/v1/apps", "").first, 200);  // reads stay open
  EXPECT_EQ(call("GET", "/api/v1/tokens", "").first, 401);
}

TEST_F(TokenAuthTest, AgentRoutesTakeTheJoinTokenOrAnAdminOne) {
  start(false);
  std::string deployer = create("d", "deployer");
  const std::string hb = R"({"id":"nobody"})";
  EXPECT_EQ(call("POST", "/api/v1/agent/heartbeat", "join-secret", hb).first, 404);  // allowed, unknown agent
  EXPECT_EQ(call("POST", "/api/v1/agent/heartbeat", "boot-secret", hb).first, 404);
  EXPECT_EQ(call("POST", "/api/v1/agent/heartbeat", "", hb).first, 404);  // loopback, nothing required
  auto [refused, why] = call("POST", "/api/v1/agent/heartbeat", "wrong", hb);
  EXPECT_EQ(refused, 401);
  EXPECT_EQ(why.value("message", ""), "agent join token rejected");
  EXPECT_EQ(call("POST", "/api/v1/agent/heartbeat", deployer, hb).first, 401);
  // The join token is no user token.
  EXPECT_EQ(call("GET", "/api/v1/apps", "join-secret").first, 401);
}

TEST_F(TokenAuthTest, EventsOfTokenChangesNameTheActor) {
  start(true);
  std::string admin = create("root2", "admin");
  auto [status, j] = call("POST", "/api/v1/tokens", admin, R"({"name":"ci","role":"viewer"})");
  ASSERT_EQ(status, 201);
  EXPECT_EQ(j.value("createdBy", ""), "token:root2");
  auto events = store_->events_since(0, 100);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].value("actor", ""), "token:bootstrap");
  EXPECT_EQ((*events)[1].value("type", ""), "token_created");
  EXPECT_EQ((*events)[1].value("token", ""), "ci");
  EXPECT_EQ((*events)[1].value("actor", ""), "token:root2");
}

}  // namespace
}  // namespace stele::api
