// The verbs as the user types them: options before or after the verb, help,
// and the one-line error when the API is not there.
#include "cli/cli.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cli/commands.h"

namespace stele::cli {
namespace {

// Parses argv (without the program name) on a root app that, like main.cpp,
// also has a non-client subcommand.
class Cli : public ::testing::Test {
 protected:
  Cli() {
    app_.add_subcommand("server", "the control plane");
    add_client_commands(app_);
  }
  void parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
    app_.parse(args);
  }
  const ClientCommand* selected() {
    for (auto* sub : app_.get_subcommands())
      if (auto* c = dynamic_cast<ClientCommand*>(sub)) return c;
    return nullptr;
  }

  CLI::App app_{"stele", "stele"};
};

TEST_F(Cli, GlobalOptionsBeforeTheVerb) {
  parse({"--api", "http://h:1", "--token", "t", "--json", "apps"});
  ASSERT_NE(selected(), nullptr);
  EXPECT_EQ(selected()->get_name(), "apps");
  EXPECT_EQ(selected()->flags().api, "http://h:1");
  EXPECT_EQ(selected()->flags().token, "t");
  EXPECT_TRUE(selected()->flags().json);
}

TEST_F(Cli, GlobalOptionsAfterTheVerb) {
  parse({"ps", "/shop/web", "--api", "http://h:2", "--data-dir", "/tmp/d", "--json"});
  ASSERT_NE(selected(), nullptr);
  EXPECT_EQ(selected()->get_name(), "ps");
  EXPECT_EQ(selected()->flags().api, "http://h:2");
  EXPECT_EQ(selected()->flags().data_dir, "/tmp/d");
  EXPECT_TRUE(selected()->flags().json);
}

TEST_F(Cli, OptionBeforeTheVerbIsKeptWhenTheVerbHasNone) {
  parse({"--json", "nodes", "--api", "http://h:3"});
  EXPECT_TRUE(selected()->flags().json);
  EXPECT_EQ(selected()->flags().api, "http://h:3");
}

TEST_F(Cli, NonClientSubcommandIsNotRun) {
  parse({"server"});
  EXPECT_EQ(run_client(app_), -1);
}

TEST_F(Cli, VerbArgumentsAreChecked) {
  EXPECT_THROW(parse({"scale", "/web"}), CLI::ParseError);          // N missing
  EXPECT_THROW(parse({"scale", "/web", "-1"}), CLI::ParseError);    // negative
  EXPECT_THROW(parse({"deploy", "--wait"}), CLI::ParseError);       // -f missing
  EXPECT_THROW(parse({"rollback", "/web", "x"}), CLI::ParseError);  // not a number
}

TEST_F(Cli, DeployTakesAFileOrAReleaseOfAnApp) {
  EXPECT_THROW(parse({"deploy", "/web"}), CLI::ParseError);                            // neither
  EXPECT_THROW(parse({"deploy", "-f", "a.json", "--release", "3"}), CLI::ParseError);  // both
  EXPECT_THROW(parse({"deploy", "-f", "a.json", "/web"}), CLI::ParseError);            // a file names its app
  EXPECT_THROW(parse({"deploy", "--release", "3"}), CLI::ParseError);                  // which app?
  parse({"deploy", "/web", "--release", "3", "--wait"});
  EXPECT_EQ(selected()->get_name(), "deploy");
}

TEST_F(Cli, PipelineVerbArgumentsAreChecked) {
  EXPECT_THROW(parse({"run", "/web"}), CLI::ParseError);                          // CMD missing
  EXPECT_THROW(parse({"config", "set", "/web"}), CLI::ParseError);                // KEY=VALUE missing
  EXPECT_THROW(parse({"pipeline", "/web", "--release", "0"}), CLI::ParseError);   // releases start at 1
  EXPECT_THROW(parse({"create"}), CLI::ParseError);                               // NAME missing
  parse({"run", "/web", "--", "ls", "-l", "--api", "x"});  // after --, everything is the command
  EXPECT_EQ(selected()->get_name(), "run");
  EXPECT_EQ(selected()->flags().api, "");
}

TEST_F(Cli, ConfigSubcommandsRunThemselves) {
  parse({"config", "set", "/web", "A=1", "--api", "http://h:4"});
  ASSERT_NE(selected(), nullptr);
  EXPECT_EQ(selected()->get_name(), "config");
  auto subs = selected()->get_subcommands();
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0]->get_name(), "set");
  EXPECT_EQ(selected()->flags().api, "http://h:4");
}

TEST_F(Cli, EveryVerbExplainsItselfWithAnExample) {
  std::vector<std::string> verbs = {"apps",     "app",    "deploy",   "scale",       "restart", "rollback",
                                    "releases", "ps",     "nodes",    "deployments", "events",  "create",
                                    "pipeline", "run",    "config",   "config set",  "config unset"};
  for (const auto& v : verbs) {
    CLI::App* sub = &app_;
    for (size_t start = 0; start <= v.size();) {
      size_t space = v.find(' ', start);
      sub = sub->get_subcommand(v.substr(start, space == std::string::npos ? std::string::npos : space - start));
      start = space == std::string::npos ? v.size() + 1 : space + 1;
    }
    std::string help = sub->help();
    EXPECT_FALSE(sub->get_description().empty()) << v;
    EXPECT_NE(help.find("Example:\n  stele " + v), std::string::npos) << help;
    EXPECT_NE(help.find("--api"), std::string::npos) << help;
  }
}

// A loopback port that refuses connections: bound, never listening.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(Cli, UnreachableApiIsOneClearLine) {
  RefusingPort port;
  std::string url = "http://127.0.0.1:" + std::to_string(port.port());
  parse({"apps", "--api", url});
  testing::internal::CaptureStderr();
  int rc = run_client(app_);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err, "stele: cannot reach the Stele API at " + url + " (is `stele up` running?)\n");
}

}  // namespace
}  // namespace stele::cli
