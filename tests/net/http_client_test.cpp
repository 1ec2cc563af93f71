// The client's pure helpers: server lists and a follower's redirect.
#include <gtest/gtest.h>

#include "net/http_client.h"

using namespace stele::net;

TEST(UrlList, SplitsOnCommasAndDropsEmptyItems) {
  EXPECT_EQ(split_url_list("http://a:7070"), std::vector<std::string>{"http://a:7070"});
  EXPECT_EQ(split_url_list("http://a:7070, http://b:7070,,"),
            (std::vector<std::string>{"http://a:7070", "http://b:7070"}));
  EXPECT_TRUE(split_url_list("").empty());
}

TEST(LeaderRedirect, OnlyA307Or308NamingTheLeader) {
  ClientResponse r;
  r.status = 307;
  r.headers["x-stele-leader"] = "http://10.213.7.12:7070";
  EXPECT_EQ(leader_redirect(r), "http://10.213.7.12:7070");
  r.status = 308;
  EXPECT_TRUE(leader_redirect(r));
  r.status = 200;
  EXPECT_FALSE(leader_redirect(r));
  r.status = 307;
  r.headers.clear();
  r.headers["location"] = "http://elsewhere/";
  EXPECT_FALSE(leader_redirect(r)) << "a plain redirect is not a leader";
}
