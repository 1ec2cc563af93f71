// `stele tokens list`: the table of GET /api/v1/tokens (commands_tokens.cpp).
#include <gtest/gtest.h>

#include "cli/commands.h"

namespace stele::cli {
namespace {

TEST(TokensTable, OneRowPerTokenWithoutSecrets) {
  Json tokens = Json::array({{{"name", "ci"}, {"role", "deployer"}, {"created", "2026-01-02T03:04:05.000Z"},
                              {"createdBy", "token:bootstrap"}},
                             {{"name", "grafana"}, {"role", "viewer"}, {"created", "2026-01-03T00:00:00.000Z"},
                              {"createdBy", "api:127.0.0.1"}}});
  std::string out = tokens_table(tokens).render();
  EXPECT_EQ(out,
            "NAME      ROLE       CREATED                    CREATED-BY\n"
            "ci        deployer   2026-01-02T03:04:05.000Z   token:bootstrap\n"
            "grafana   viewer     2026-01-03T00:00:00.000Z   api:127.0.0.1\n");
}

TEST(TokensTable, EmptyOrMalformedListsGiveNoRows) {
  EXPECT_TRUE(tokens_table(Json::array()).empty());
  EXPECT_TRUE(tokens_table(Json::object()).empty());
}

}  // namespace
}  // namespace stele::cli
