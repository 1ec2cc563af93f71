#include "cli/run_stream.h"

#include <gtest/gtest.h>

#include "cli/config_patch.h"

namespace stele::cli {
namespace {

struct Decoded {
  std::string out;
  RunStreamDecoder decoder{[this](std::string_view d) { out.append(d); }};
};

TEST(RunStreamDecoder, OutputInOrderAcrossSplitLinesThenTheExit) {
  Decoded d;
  std::string stream =
      "{\"type\":\"started\",\"task\":\"hello-r2.run.1\"}\n"
      "{\"type\":\"output\",\"data\":\"line 1\\n\"}\n{\"type\":\"output\",\"data\":\"\\u00e9\\ttab\"}\r\n"
      "{\"type\":\"exit\",\"code\":3,\"reason\":\"\"}\n";
  for (char c : stream) d.decoder.feed(std::string_view(&c, 1));  // the worst split: byte by byte
  d.decoder.finish();
  EXPECT_EQ(d.out, "line 1\n\xc3\xa9\ttab");
  EXPECT_TRUE(d.decoder.exited());
  EXPECT_EQ(d.decoder.exit_status(), 3);
  EXPECT_EQ(d.decoder.reason(), "");
  EXPECT_EQ(d.decoder.other(), "");
}

TEST(RunStreamDecoder, ALastLineWithoutNewlineCounts) {
  Decoded d;
  d.decoder.feed(R"({"type":"exit","code":0,"reason":"finished"})");
  EXPECT_FALSE(d.decoder.exited());
  d.decoder.finish();
  EXPECT_TRUE(d.decoder.exited());
  EXPECT_EQ(d.decoder.exit_status(), 0);
  EXPECT_EQ(d.decoder.reason(), "finished");
}

TEST(RunStreamDecoder, NoExitLineOrACodeOutOfRangeExitsOne) {
  Decoded d;
  d.decoder.feed("{\"type\":\"output\",\"data\":\"x\"}\n");
  d.decoder.finish();
  EXPECT_FALSE(d.decoder.exited());
  EXPECT_EQ(d.decoder.exit_status(), 1);
  Decoded neg;
  neg.decoder.feed("{\"type\":\"exit\",\"code\":-9,\"reason\":\"killed\"}\n");
  EXPECT_EQ(neg.decoder.exit_status(), 1);
  EXPECT_EQ(neg.decoder.code(), -9);
}

TEST(RunStreamDecoder, ForeignLinesAreKeptAsTheErrorBodyNotPrinted) {
  Decoded d;
  d.decoder.feed("{\"message\": \"App '/x' does not exist\"}");
  d.decoder.finish();
  EXPECT_EQ(d.out, "");
  EXPECT_EQ(d.decoder.other(), "{\"message\": \"App '/x' does not exist\"}\n");
}

TEST(RunStreamDecoder, LinesAfterTheExitAreIgnored) {
  Decoded d;
  d.decoder.feed("{\"type\":\"exit\",\"code\":2}\n{\"type\":\"output\",\"data\":\"late\"}\n");
  EXPECT_EQ(d.out, "");
  EXPECT_EQ(d.decoder.exit_status(), 2);
}

TEST(CommandLine, OneArgumentIsAShellLineSeveralAreQuoted) {
  EXPECT_EQ(command_line({"ls -l | wc -l"}), "ls -l | wc -l");
  EXPECT_EQ(command_line({"sh", "-c", "echo out; exit 3"}), "sh -c 'echo out; exit 3'");
  EXPECT_EQ(command_line({"echo", "it's", "", "a=b/c.d"}), "echo 'it'\\''s' '' a=b/c.d");
  EXPECT_EQ(command_line({"echo", "$HOME"}), "echo '$HOME'");
}

TEST(ConfigPatch, SetTakesKeyEqualsValue) {
  auto p = config_set_patch({"GREETING=hi there", "EMPTY=", "URL=a=b", "_x1=y"});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, Json({{"GREETING", "hi there"}, {"EMPTY", ""}, {"URL", "a=b"}, {"_x1", "y"}}));
}

TEST(ConfigPatch, SetNamesTheBadArgument) {
  EXPECT_EQ(config_set_patch({"A=1", "B"}).error().message, "bad argument 'B': expected KEY=VALUE (e.g. GREETING=hi)");
  EXPECT_EQ(config_set_patch({"=v"}).error().message, "bad argument '=v': the key is empty");
  EXPECT_EQ(config_set_patch({"9A=v"}).error().message, "bad argument '9A=v': a key must not start with a digit");
  EXPECT_EQ(config_set_patch({"MY-KEY=v"}).error().message,
            "bad argument 'MY-KEY=v': a key may hold only letters, digits and '_'");
  EXPECT_EQ(config_set_patch({"A=1", "A=2"}).error().message, "bad argument 'A=2': A is given twice");
  EXPECT_FALSE(config_set_patch({}));
}

TEST(ConfigPatch, UnsetTakesKeysOnly) {
  auto p = config_unset_patch({"A", "B_2"});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, Json({{"A", nullptr}, {"B_2", nullptr}}));
  EXPECT_NE(config_unset_patch({"A=1"}).error().message.find("takes keys only"), std::string::npos);
  EXPECT_EQ(config_unset_patch({"a b"}).error().message, "bad argument 'a b': a key may hold only letters, digits and '_'");
  EXPECT_FALSE(config_unset_patch({}));
}

}  // namespace
}  // namespace stele::cli
