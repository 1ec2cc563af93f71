// Check, handler and silence definitions: defaults, every bad field named,
// unknown fields refused, JSON round trips, {{token}} substitution, handler
// filters and silence matching with wildcards.
#include <gtest/gtest.h>

#include "monitor/check_spec.h"
#include "monitor/command_tokens.h"

using namespace stele::monitor;
using stele::Json;

namespace {

// The error paths of a failed parse, "path: first reason" each.
template <class R>
std::vector<std::string> problems(const R& r) {
  std::vector<std::string> out;
  if (r) return {"(valid)"};
  for (const auto& d : r.error().details) out.push_back(d.path + ": " + d.errors.front());
  return out;
}

bool has_problem(const std::vector<std::string>& ps, std::string_view path, std::string_view text) {
  for (const auto& p : ps)
    if (p.rfind(std::string(path) + ": ", 0) == 0 && p.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(CheckSpec, DefaultsAndRoundTrip) {
  auto c = parse_check(Json{{"name", "check_disk"}, {"command", "check_disk -w 20% -c 10% -p /"},
                            {"subscriptions", {"linux"}}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->interval, 60);
  EXPECT_EQ(c->timeout, 10);
  EXPECT_EQ(c->occurrences, 1);
  EXPECT_FALSE(c->ttl);
  EXPECT_FALSE(c->round_robin);
  EXPECT_EQ(c->low_flap_threshold, 5);
  EXPECT_EQ(c->high_flap_threshold, 20);
  Json j = *c;
  auto back = parse_check(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *c);
}

TEST(CheckSpec, FullDefinitionRoundTrips) {
  Json in = {{"name", "web_health"},
             {"command", "check_http -H {{host}} -p {{port0}} -u /health"},
             {"interval", 30},
             {"timeout", 5.0},
             {"proxy", "shop/web"},
             {"round_robin", true},
             {"ttl", 90},
             {"ttl_status", 2},
             {"handlers", {"pager", "slack"}},
             {"occurrences", 3},
             {"low_flap_threshold", 10},
             {"high_flap_threshold", 30},
             {"annotations", {{"team", "ops"}}}};
  auto c = parse_check(in);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->proxy, "/shop/web");
  EXPECT_EQ(c->timeout, 5);
  EXPECT_EQ(c->ttl_status, CheckStatus::kCritical);
  auto back = parse_check(Json(*c));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *c);
}

TEST(CheckSpec, EveryBadFieldIsNamed) {
  auto r = parse_check(Json{{"name", "bad name"},
                            {"interval", 0},
                            {"timeout", 1.5},
                            {"subscriptions", {"ok", 3, "no spaces"}},
                            {"round_robin", "yes"},
                            {"ttl", 30},
                            {"occurrences", 0},
                            {"handlers", "pager"},
                            {"low_flap_threshold", 50},
                            {"intervall", 10}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 422);
  auto ps = problems(r);
  EXPECT_TRUE(has_problem(ps, "/name", "may only hold letters")) << testing::PrintToString(ps);
  EXPECT_TRUE(has_problem(ps, "/command", "required"));
  EXPECT_TRUE(has_problem(ps, "/interval", "whole number of seconds from 1"));
  EXPECT_TRUE(has_problem(ps, "/timeout", "whole number of seconds"));
  EXPECT_TRUE(has_problem(ps, "/subscriptions/1", "expected a string"));
  EXPECT_TRUE(has_problem(ps, "/subscriptions/2", "may only hold"));
  EXPECT_TRUE(has_problem(ps, "/round_robin", "true or false"));
  EXPECT_TRUE(has_problem(ps, "/ttl", "greater than interval (60)"));
  EXPECT_TRUE(has_problem(ps, "/occurrences", "from 1"));
  EXPECT_TRUE(has_problem(ps, "/handlers", "expected an array"));
  EXPECT_TRUE(has_problem(ps, "/high_flap_threshold", "greater than low_flap_threshold"));
  EXPECT_TRUE(has_problem(ps, "/intervall", "unknown field (expected name, command, interval"));
  EXPECT_NE(r.error().message.find("check is not valid: "), std::string::npos);
}

TEST(CheckSpec, SubscriptionsOrProxyAndTokens) {
  auto none = parse_check(Json{{"name", "c"}, {"command", "true"}});
  EXPECT_TRUE(has_problem(problems(none), "/subscriptions", "unless proxy is set"));
  auto star = parse_check(Json{{"name", "c"}, {"command", "true"}, {"subscriptions", {"*", "entity:web-1"}}});
  EXPECT_TRUE(star) << star.error().message;
  auto token_without_proxy = parse_check(Json{{"name", "c"}, {"command", "check_tcp -H {{host}}"}, {"subscriptions", {"*"}}});
  EXPECT_TRUE(has_problem(problems(token_without_proxy), "/command", "{{host}} at 13 needs a proxy app"));
  auto unknown = parse_check(Json{{"name", "c"}, {"command", "check_tcp -H {{hots}}"}, {"proxy", "/web"}});
  EXPECT_TRUE(has_problem(problems(unknown), "/command", "unknown token {{hots}} at 13"));
  EXPECT_FALSE(parse_check(Json::array()));
}

TEST(CommandTokens, Substitution) {
  ProxyTarget t{"10.0.0.5", {31001, 31002}, "shop_web-r3.0.1", "/shop/web", "shop_web-r3-0"};
  auto s = substitute_tokens("check_http -H {{host}} -p {{ port0 }} -u /health # {{port1}} {{port}} {{task}} {{app}} {{entity}}", t);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, "check_http -H 10.0.0.5 -p 31001 -u /health # 31002 31001 shop_web-r3.0.1 /shop/web shop_web-r3-0");
  auto missing = substitute_tokens("check_tcp -p {{port2}}", t);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "{{port2}}: task shop_web-r3.0.1 has 2 ports");
  // Not tokens: left alone.
  auto awk = substitute_tokens("awk '{{print $1}}' {{ }} {{", t);
  ASSERT_TRUE(awk);
  EXPECT_EQ(*awk, "awk '{{print $1}}' {{ }} {{");
  EXPECT_TRUE(check_command_tokens("awk '{{print $1}}'", false));
}

TEST(HandlerSpec, PipeAndHttp) {
  auto pipe = parse_handler(Json{{"name", "mail"}, {"type", "pipe"}, {"command", "mail -s alert ops"},
                                 {"filters", {"is_incident", "not_silenced", "occurrences>=3"}}});
  ASSERT_TRUE(pipe) << pipe.error().message;
  ASSERT_EQ(pipe->filters.size(), 3u);
  EXPECT_EQ(pipe->filters[2], (HandlerFilter{HandlerFilter::Kind::kOccurrencesAtLeast, 3}));
  EXPECT_EQ(Json(*pipe)["filters"][2], "occurrences >= 3");
  auto back = parse_handler(Json(*pipe));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *pipe);

  auto http = parse_handler(Json{{"name", "hook"}, {"type", "http"}, {"url", "http://127.0.0.1:9/x"}, {"timeout", 3}});
  ASSERT_TRUE(http) << http.error().message;
  EXPECT_EQ(http->type, HandlerSpec::Type::kHttp);
  auto hback = parse_handler(Json(*http));
  ASSERT_TRUE(hback) << hback.error().message;
  EXPECT_EQ(*hback, *http);
}

TEST(HandlerSpec, BadFieldsNamed) {
  auto r = parse_handler(Json{{"name", "h"}, {"type", "http"}, {"command", "x"}, {"url", "ftp://x"},
                              {"filters", {"is_incident", "occurrences >= 0", "is_resolution"}}, {"extra", 1}});
  auto ps = problems(r);
  EXPECT_TRUE(has_problem(ps, "/command", "only for a pipe handler")) << testing::PrintToString(ps);
  EXPECT_TRUE(has_problem(ps, "/url", "http:// or https://"));
  EXPECT_TRUE(has_problem(ps, "/filters/1", "N must be a whole number from 1"));
  EXPECT_TRUE(has_problem(ps, "/filters/2", "unknown filter 'is_resolution'"));
  EXPECT_TRUE(has_problem(ps, "/extra", "unknown field"));
  auto pipe = parse_handler(Json{{"name", "h"}, {"type", "pipe"}});
  EXPECT_TRUE(has_problem(problems(pipe), "/command", "required for a pipe handler"));
  auto type = parse_handler(Json{{"name", "h"}, {"type", "tcp"}});
  EXPECT_TRUE(has_problem(problems(type), "/type", "must be pipe or http"));
}

TEST(HandlerFilters, SensuSemantics) {
  std::vector<HandlerFilter> incident = {{HandlerFilter::Kind::kIsIncident, 0}};
  EXPECT_TRUE(filters_pass(incident, {CheckStatus::kCritical, CheckStatus::kOk, 1, false}));
  EXPECT_TRUE(filters_pass(incident, {CheckStatus::kOk, CheckStatus::kWarning, 2, false}));  // resolution
  EXPECT_FALSE(filters_pass(incident, {CheckStatus::kOk, CheckStatus::kOk, 0, false}));
  std::vector<HandlerFilter> all = {{HandlerFilter::Kind::kIsIncident, 0},
                                    {HandlerFilter::Kind::kNotSilenced, 0},
                                    {HandlerFilter::Kind::kOccurrencesAtLeast, 3}};
  EXPECT_FALSE(filters_pass(all, {CheckStatus::kCritical, CheckStatus::kCritical, 2, false}));
  EXPECT_TRUE(filters_pass(all, {CheckStatus::kCritical, CheckStatus::kCritical, 3, false}));
  EXPECT_FALSE(filters_pass(all, {CheckStatus::kCritical, CheckStatus::kCritical, 3, true}));
  EXPECT_TRUE(filters_pass({}, {CheckStatus::kOk, CheckStatus::kOk, 0, true}));
}

TEST(Silence, IdDefaultsAndRoundTrip) {
  auto s = parse_silence(Json{{"check", "check_disk"}, {"reason", "disk swap"}, {"expire", 3600}, {"creator", "ann"}});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(silence_id(*s), "*:check_disk");
  Json j = *s;
  EXPECT_EQ(j["id"], "*:check_disk");
  auto back = parse_silence(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *s);
  auto sub = parse_silence(Json{{"subscription", "entity:web-1"}, {"expire_on_resolve", true}});
  ASSERT_TRUE(sub);
  EXPECT_EQ(silence_id(*sub), "entity:web-1:*");
}

TEST(Silence, Validation) {
  EXPECT_TRUE(has_problem(problems(parse_silence(Json::object())), "/subscription", "subscription or check is required"));
  auto bad = parse_silence(Json{{"check", "a b"}, {"expire", -1}, {"expire_on_resolve", 1}, {"reson", "x"}});
  auto ps = problems(bad);
  EXPECT_TRUE(has_problem(ps, "/check", "may only hold")) << testing::PrintToString(ps);
  EXPECT_TRUE(has_problem(ps, "/expire", "whole number of seconds"));
  EXPECT_TRUE(has_problem(ps, "/expire_on_resolve", "true or false"));
  EXPECT_TRUE(has_problem(ps, "/reson", "unknown field"));
}

TEST(Silence, MatchingWithWildcards) {
  Silence by_check{"*", "check_disk"};
  EXPECT_TRUE(silence_matches(by_check, {"linux"}, "check_disk"));
  EXPECT_TRUE(silence_matches(by_check, {}, "check_disk"));
  EXPECT_FALSE(silence_matches(by_check, {"linux"}, "check_load"));

  Silence by_sub{"web", "*"};
  EXPECT_TRUE(silence_matches(by_sub, {"linux", "web"}, "anything"));
  EXPECT_FALSE(silence_matches(by_sub, {"linux"}, "anything"));
  EXPECT_FALSE(silence_matches(by_sub, {}, "anything"));

  Silence globs{"entity:web-*", "check_*"};
  EXPECT_TRUE(silence_matches(globs, {"entity:web-12"}, "check_http"));
  EXPECT_FALSE(silence_matches(globs, {"entity:db-1"}, "check_http"));
  EXPECT_FALSE(silence_matches(globs, {"entity:web-12"}, "disk"));

  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("a*b*c", "aXXbYYc"));
  EXPECT_TRUE(wildcard_match("a*b", "abab"));
  EXPECT_FALSE(wildcard_match("a*b", "abac"));
  EXPECT_FALSE(wildcard_match("abc", "abcd"));
}

TEST(Silence, Expiry) {
  Silence s;
  s.begin = 1000;
  EXPECT_FALSE(silence_expired(s, 1'000'000));
  s.expire = 60;
  EXPECT_FALSE(silence_expired(s, 1059));
  EXPECT_TRUE(silence_expired(s, 1060));
}
