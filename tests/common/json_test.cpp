#include <gtest/gtest.h>

#include "common/json.h"

using namespace stele;

TEST(ParseJson, ReportsWhereTheTextIsBroken) {
  auto r = parse_json(R"({"id": "/a", "cpus": })");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 400);
  EXPECT_NE(r.error().message.find("invalid JSON"), std::string::npos);
}

// nlohmann throws on number overflow even without exceptions enabled.
TEST(ParseJson, NumberOverflowIsAnErrorNotACrash) {
  auto r = parse_json(R"({"cpus": 11E2222222222222222222222222222222})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 400);
}

TEST(ParseJson, RefusesAbsurdNestingButNotBracketsInStrings) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto r = parse_json(deep);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nested deeper"), std::string::npos);
  std::string in_string = "{\"s\": \"" + std::string(200, '[') + "\\\"\"}";
  EXPECT_TRUE(parse_json(in_string));
}

TEST(ErrorJson, NamesEveryField) {
  Error e{"Object is not valid", {{"/cpus", {"must be > 0"}}, {"/mem", {"expected a number"}}}, 422};
  Json j = error_json(e);
  EXPECT_EQ(j["message"], "Object is not valid");
  ASSERT_EQ(j["details"].size(), 2u);
  EXPECT_EQ(j["details"][1]["path"], "/mem");
}
