#include "cli/api_client.h"

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "cli/commands.h"

namespace stele::cli {
namespace {

namespace fs = std::filesystem;

TEST(ErrorFromResponse, ServerMessageAndDetails) {
  Error e = error_from_response(
      422, R"({"message": "Object is not valid", "details": [{"path": "/cpus", "errors": ["must be > 0"]},
                                                             {"path": "/id", "errors": ["is required", "x"]}]})");
  EXPECT_EQ(e.code, 422);
  EXPECT_EQ(format_error(e), "stele: Object is not valid: /cpus: must be > 0; /id: is required, x");
}

TEST(ErrorFromResponse, NonJsonBodyNamesTheStatus) {
  EXPECT_EQ(format_error(error_from_response(502, "Bad Gateway\nmore")), "stele: HTTP 502: Bad Gateway");
  EXPECT_EQ(format_error(error_from_response(500, "")), "stele: HTTP 500");
  EXPECT_EQ(format_error(error_from_response(404, R"({"other": 1})")), R"(stele: HTTP 404: {"other": 1})");
}

TEST(FormatError, OneLineEvenWithNewlinesInMessages) {
  EXPECT_EQ(format_error(Error{"a\nb", {{"/x", {"c\nd"}}}, 0}), "stele: a b: /x: c d");
  EXPECT_EQ(format_error(Error{"App '/x' does not exist", {}, 404}), "stele: App '/x' does not exist");
}

TEST(ConnectionError, RefusedSaysTheApiIsNotRunning) {
  Error e = connection_error("http://127.0.0.1:7070", Error{"cannot connect to 127.0.0.1:7070: Connection refused", {}, 0});
  EXPECT_EQ(format_error(e), "stele: cannot reach the Stele API at http://127.0.0.1:7070 (is `stele up` running?)");
}

TEST(ConnectionError, OtherConnectFailuresNameTheCause) {
  Error e = connection_error("http://nohost:7070", Error{"cannot resolve nohost: Host not found", {}, 0});
  EXPECT_EQ(e.message, "cannot reach the Stele API at http://nohost:7070: Host not found");
  Error other{"reading from http://x/api: end of stream", {}, 0};
  EXPECT_EQ(connection_error("http://x", other).message, other.message);
}

TEST(AppPath, LeadingSlashOptional) {
  EXPECT_EQ(app_path("/shop/web"), "/api/v1/apps/shop/web");
  EXPECT_EQ(app_path("shop/web"), "/api/v1/apps/shop/web");
  EXPECT_EQ(app_path("web/"), "/api/v1/apps/web");
}

class ClientFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stele-cli-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    old_cwd_ = fs::current_path();
    fs::current_path(dir_);
  }
  void TearDown() override {
    fs::current_path(old_cwd_);
    fs::remove_all(dir_);
  }
  void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  EnvLookup env() {
    return [this](const std::string& k) -> std::optional<std::string> {
      auto it = env_.find(k);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }

  fs::path dir_, old_cwd_;
  std::map<std::string, std::string> env_;
};

TEST_F(ClientFiles, DefaultOptions) {
  ClientOptions o = resolve_options({}, env());
  EXPECT_EQ(o.api, "http://127.0.0.1:7070");
  EXPECT_EQ(o.token, "");
  EXPECT_FALSE(o.json);
}

TEST_F(ClientFiles, FlagBeatsEnvironment) {
  env_ = {{"STELE_API", "http://10.0.0.1:7070/"}, {"STELE_TOKEN", "from-env"}};
  ClientOptions o = resolve_options({}, env());
  EXPECT_EQ(o.api, "http://10.0.0.1:7070");
  EXPECT_EQ(o.token, "from-env");
  GlobalFlags flags;
  flags.api = "10.0.0.2:7070";
  flags.token = "from-flag";
  flags.json = true;
  o = resolve_options(flags, env());
  EXPECT_EQ(o.api, "http://10.0.0.2:7070");
  EXPECT_EQ(o.token, "from-flag");
  EXPECT_TRUE(o.json);
  // Several servers: each URL normalized, the list kept.
  flags.api = "10.0.0.2:7070, http://10.0.0.3:7070/";
  EXPECT_EQ(resolve_options(flags, env()).api, "http://10.0.0.2:7070,http://10.0.0.3:7070");
}

TEST_F(ClientFiles, TokenFileOfSteleUpInTheWorkingDirectory) {
  write(dir_ / "stele-data" / "token", "tok-up\n");
  EXPECT_EQ(resolve_options({}, env()).token, "tok-up");
}

TEST_F(ClientFiles, DataDirFromEnvironmentThenWorkingDirectory) {
  write(dir_ / "stele-data" / "token", "tok-cwd");
  env_ = {{"STELE_DATA_DIR", (dir_ / "data").string()}};
  EXPECT_EQ(resolve_options({}, env()).token, "tok-cwd");  // no token file there: falls back
  write(dir_ / "data" / "token", "  tok-env-dir \n");
  EXPECT_EQ(resolve_options({}, env()).token, "tok-env-dir");
}

TEST_F(ClientFiles, DataDirFlagIsTheOnlyPlaceLooked) {
  write(dir_ / "stele-data" / "token", "tok-cwd");
  GlobalFlags f;
  f.data_dir = (dir_ / "elsewhere").string();
  EXPECT_EQ(resolve_options(f, env()).token, "");
  write(dir_ / "elsewhere" / "token", "tok-flag-dir");
  EXPECT_EQ(resolve_options(f, env()).token, "tok-flag-dir");
}

TEST_F(ClientFiles, SpecFileIsCheckedLocally) {
  write(dir_ / "ok.json", R"({"id": "shop/web", "cmd": "sleep 100", "instances": 2})");
  auto ok = load_spec_file((dir_ / "ok.json").string());
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->id, "/shop/web");
  EXPECT_EQ(ok->doc["instances"], 2);

  write(dir_ / "bad.json", R"({"id": "/web", "cmd": "x", "cpus": -1})");
  auto bad = load_spec_file("bad.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(format_error(bad.error()).rfind("stele: bad.json: ", 0), 0u) << format_error(bad.error());
  EXPECT_NE(format_error(bad.error()).find("/cpus"), std::string::npos) << format_error(bad.error());

  write(dir_ / "broken.json", "{\"id\": ");
  auto broken = load_spec_file("broken.json");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message.find("broken.json: invalid JSON"), std::string::npos);

  auto missing = load_spec_file("missing.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "cannot read missing.json: No such file or directory");
}

}  // namespace
}  // namespace stele::cli
