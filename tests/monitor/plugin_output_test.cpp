// The Nagios plugin API: exit codes, output/long text/perfdata split (the
// guidelines' multi-line example), perfdata as real plugins print it
// (check_disk, check_load, check_http, check_tcp, check_ping, check_swap),
// ranges, units and metric paths, malformed items kept apart.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "monitor/plugin_output.h"

using namespace stele::monitor;

namespace {

PerfValue one(std::string_view item) {
  auto p = parse_perf_item(item);
  EXPECT_TRUE(p) << item << ": " << (p ? "" : p.error().message);
  return p ? *p : PerfValue{};
}

std::string item_error(std::string_view item) {
  auto p = parse_perf_item(item);
  return p ? "(parsed)" : p.error().message;
}

Range range(std::string_view text) {
  auto r = parse_range(text);
  EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().message);
  return r ? *r : Range{};
}

}  // namespace

TEST(PluginStatus, ExitCodes) {
  EXPECT_EQ(status_from_exit_code(0), CheckStatus::kOk);
  EXPECT_EQ(status_from_exit_code(1), CheckStatus::kWarning);
  EXPECT_EQ(status_from_exit_code(2), CheckStatus::kCritical);
  EXPECT_EQ(status_from_exit_code(3), CheckStatus::kUnknown);
  EXPECT_EQ(status_from_exit_code(127), CheckStatus::kUnknown);
  EXPECT_EQ(status_from_exit_code(128 + 9), CheckStatus::kUnknown);
  EXPECT_EQ(status_from_exit_code(-1), CheckStatus::kUnknown);
  EXPECT_STREQ(status_name(CheckStatus::kCritical), "CRITICAL");
}

TEST(PluginOutput, CheckDiskSingleLine) {
  auto o = parse_plugin_output("DISK OK - free space: / 3326 MB (56% inode=87%);| /=2643MB;5948;6345;0;6610\n");
  EXPECT_EQ(o.output, "DISK OK - free space: / 3326 MB (56% inode=87%);");
  EXPECT_EQ(o.long_output, "");
  ASSERT_EQ(o.perfdata.size(), 1u);
  const PerfValue& p = o.perfdata[0];
  EXPECT_EQ(p.label, "/");
  EXPECT_EQ(p.value, 2643);
  EXPECT_EQ(p.uom, Uom::kMegabytes);
  EXPECT_EQ(p.warn, range("5948"));
  EXPECT_EQ(p.crit, range("6345"));
  EXPECT_EQ(p.min, 0);
  EXPECT_EQ(p.max, 6610);
  EXPECT_EQ(to_metric_value(p), 2643.0 * 1024 * 1024);
  EXPECT_TRUE(o.perfdata_errors.empty());
}

TEST(PluginOutput, GuidelinesMultiLineExample) {
  auto o = parse_plugin_output(
      "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
      "/ 15272 MB (77%);\n"
      "/boot 68 MB (69%);\n"
      "/home 69357 MB (27%);\n"
      "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
      "/home=69357MB;253404;253409;0;253414\n"
      "/var/log=818MB;970;975;0;980\n");
  EXPECT_EQ(o.output, "DISK OK - free space: / 3326 MB (56%);");
  EXPECT_EQ(o.long_output, "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);");
  ASSERT_EQ(o.perfdata.size(), 4u);
  EXPECT_EQ(o.perfdata[0].label, "/");
  EXPECT_EQ(o.perfdata[1].label, "/boot");
  EXPECT_EQ(o.perfdata[2].label, "/home");
  EXPECT_EQ(o.perfdata[3].label, "/var/log");
  EXPECT_EQ(o.perfdata[3].max, 980);
  EXPECT_EQ(o.text(), o.output + "\n" + o.long_output);
}

TEST(PluginOutput, LinesAfterTheFirstWithoutBarAreLongText) {
  auto o = parse_plugin_output("WARNING - something|a=1\nline two\r\nline three|b=2\nc=3 d=4\n\n");
  EXPECT_EQ(o.output, "WARNING - something");
  EXPECT_EQ(o.long_output, "line two\nline three");
  ASSERT_EQ(o.perfdata.size(), 4u);
  EXPECT_EQ(o.perfdata[3].label, "d");
}

TEST(PluginOutput, NoPerfdataNoNewline) {
  auto o = parse_plugin_output("OK");
  EXPECT_EQ(o.output, "OK");
  EXPECT_TRUE(o.perfdata.empty());
  auto e = parse_plugin_output("");
  EXPECT_EQ(e.output, "");
  EXPECT_FALSE(e.truncated);
}

TEST(PluginOutput, CheckLoad) {
  auto o = parse_plugin_output(
      "OK - load average: 0.15, 0.10, 0.05|load1=0.150;15.000;30.000;0; load5=0.100;10.000;25.000;0; "
      "load15=0.050;5.000;20.000;0; \n");
  EXPECT_EQ(o.output, "OK - load average: 0.15, 0.10, 0.05");
  ASSERT_EQ(o.perfdata.size(), 3u) << (o.perfdata_errors.empty() ? "" : o.perfdata_errors[0].message());
  EXPECT_EQ(o.perfdata[0].label, "load1");
  EXPECT_DOUBLE_EQ(*o.perfdata[0].value, 0.15);
  EXPECT_EQ(o.perfdata[0].min, 0);
  EXPECT_FALSE(o.perfdata[0].max);
  EXPECT_EQ(o.perfdata[2].crit, range("20"));
}

TEST(PluginOutput, CheckHttpAndTcp) {
  auto o = parse_plugin_output(
      "HTTP OK: HTTP/1.1 200 OK - 612 bytes in 0.001 second response time |time=0.000123s;;;0.000000;10.000000 "
      "size=612B;;;0\n");
  ASSERT_EQ(o.perfdata.size(), 2u);
  const PerfValue& t = o.perfdata[0];
  EXPECT_EQ(t.uom, Uom::kSeconds);
  EXPECT_FALSE(t.warn);
  EXPECT_FALSE(t.crit);
  EXPECT_EQ(t.min, 0);
  EXPECT_EQ(t.max, 10);
  EXPECT_DOUBLE_EQ(*to_metric_value(t), 0.000123);
  EXPECT_EQ(o.perfdata[1].uom, Uom::kBytes);
  EXPECT_EQ(to_metric_value(o.perfdata[1]), 612);

  auto tcp = parse_plugin_output("TCP OK - 0.000 second response time on 127.0.0.1 port 22|time=0.000123s;;;0.000000;10.000000");
  EXPECT_EQ(tcp.output, "TCP OK - 0.000 second response time on 127.0.0.1 port 22");
  ASSERT_EQ(tcp.perfdata.size(), 1u);
}

TEST(PluginOutput, CheckPingAndSwapUnits) {
  auto o = parse_plugin_output(
      "PING OK - Packet loss = 0%, RTA = 0.05 ms|rta=0.050000ms;100.000000;500.000000;0.000000 pl=0%;20;60;0");
  ASSERT_EQ(o.perfdata.size(), 2u);
  EXPECT_EQ(o.perfdata[0].uom, Uom::kMilliseconds);
  EXPECT_DOUBLE_EQ(*to_metric_value(o.perfdata[0]), 0.00005);
  EXPECT_EQ(o.perfdata[1].uom, Uom::kPercent);
  EXPECT_EQ(to_metric_value(o.perfdata[1]), 0);
  auto swap = parse_plugin_output("SWAP OK - 100% free (2047 MB out of 2047 MB) |swap=2147479552B;0;0;0;2147479552");
  ASSERT_EQ(swap.perfdata.size(), 1u);
  EXPECT_EQ(to_metric_value(swap.perfdata[0]), 2147479552.0);
}

TEST(Perfdata, QuotedLabelsWithSpacesAndQuotes) {
  auto v = parse_perfdata("'C:\\ Label:  Serial Number 1234'=10GB;20;30 'it''s'=1c 'a=b'=2", nullptr);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].label, "C:\\ Label:  Serial Number 1234");
  EXPECT_EQ(to_metric_value(v[0]), 10.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(v[1].label, "it's");
  EXPECT_EQ(v[1].uom, Uom::kCounter);
  EXPECT_EQ(v[2].label, "a=b");
}

TEST(Perfdata, UnitsAndConversions) {
  EXPECT_DOUBLE_EQ(*to_metric_value(one("t=250ms")), 0.25);
  EXPECT_DOUBLE_EQ(*to_metric_value(one("t=250us")), 0.00025);
  EXPECT_EQ(to_metric_value(one("m=2KB")), 2048);
  EXPECT_EQ(to_metric_value(one("m=1TB")), 1099511627776.0);
  EXPECT_EQ(to_metric_value(one("m=1kB")), 1024);  // case is not significant
  EXPECT_EQ(to_metric_value(one("n=-3.5e2")), -350);
  EXPECT_EQ(to_metric_value(one("n=+7")), 7);
  EXPECT_EQ(to_metric_value(one("n=0,5")), 0.5);  // a ',' decimal separator
  PerfValue u = one("x=U;1;2");
  EXPECT_FALSE(u.value);
  EXPECT_FALSE(to_metric_value(u));
  EXPECT_EQ(u.warn, range("1"));
}

TEST(Perfdata, MalformedItemsAreSkippedAndReported) {
  std::vector<PerfError> errs;
  auto v = parse_perfdata("good=1 bad=1zz =3 noequals x=1;2;3;4;5;6 'open=1 fine=2s y=abc z=1;5:2", &errs);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].label, "good");
  EXPECT_EQ(v[1].label, "fine");
  ASSERT_EQ(errs.size(), 7u);
  EXPECT_EQ(errs[0].item, "bad=1zz");
  EXPECT_EQ(errs[0].position, 7u);
  EXPECT_NE(errs[0].reason.find("unknown unit 'zz'"), std::string::npos) << errs[0].reason;
  EXPECT_NE(errs[1].reason.find("empty label"), std::string::npos);
  EXPECT_NE(errs[2].reason.find("no '='"), std::string::npos);
  EXPECT_NE(errs[3].reason.find("more than 5"), std::string::npos);
  EXPECT_NE(errs[4].reason.find("unterminated quote"), std::string::npos);
  EXPECT_NE(errs[5].reason.find("not a number"), std::string::npos);
  EXPECT_NE(errs[6].reason.find("warn: range '5:2': start is greater than end"), std::string::npos) << errs[6].reason;
  EXPECT_NE(errs[0].message().find("perfdata at 7 ('bad=1zz')"), std::string::npos) << errs[0].message();
}

TEST(Perfdata, ItemErrorsSayWhatIsWrong) {
  EXPECT_NE(item_error("x=1;2;3;abc").find("min 'abc' is not a number"), std::string::npos);
  EXPECT_NE(item_error("x=inf").find("is not a number"), std::string::npos);
  EXPECT_NE(item_error("a b=1").find("single quotes"), std::string::npos);
  EXPECT_NE(item_error("'x'1").find("no '=' after the quoted label"), std::string::npos);
}

TEST(PluginOutput, OutputIsCappedAt64KiB) {
  std::string big = "OK|a=1\n" + std::string(100 * 1024, 'x');
  auto o = parse_plugin_output(big);
  EXPECT_TRUE(o.truncated);
  EXPECT_EQ(o.output, "OK");
  EXPECT_EQ(o.long_output.size(), kMaxPluginOutput - 7);
  EXPECT_EQ(o.perfdata.size(), 1u);
}

TEST(Ranges, GuidelineForms) {
  Range r10 = range("10");
  EXPECT_FALSE(range_alerts(r10, 0));
  EXPECT_FALSE(range_alerts(r10, 10));
  EXPECT_TRUE(range_alerts(r10, 10.5));
  EXPECT_TRUE(range_alerts(r10, -1));

  Range from10 = range("10:");
  EXPECT_TRUE(range_alerts(from10, 9.9));
  EXPECT_FALSE(range_alerts(from10, 1e12));

  Range upto10 = range("~:10");
  EXPECT_FALSE(range_alerts(upto10, -1e12));
  EXPECT_TRUE(range_alerts(upto10, 11));

  Range between = range("10:20");
  EXPECT_TRUE(range_alerts(between, 9));
  EXPECT_FALSE(range_alerts(between, 15));
  EXPECT_TRUE(range_alerts(between, 21));

  Range inside = range("@10:20");
  EXPECT_FALSE(range_alerts(inside, 9));
  EXPECT_TRUE(range_alerts(inside, 10));
  EXPECT_TRUE(range_alerts(inside, 20));
  EXPECT_FALSE(range_alerts(inside, 21));
}

TEST(Ranges, TextRoundTripAndErrors) {
  for (const char* t : {"10", "10:", "~:10", "10:20", "@10:20", "@~:0.5", "-5:-1", "~:"})
    EXPECT_EQ(range(format_range(range(t))), range(t)) << t;
  EXPECT_EQ(format_range(range("0:10")), "10");
  EXPECT_EQ(format_range(range("@10:20")), "@10:20");
  EXPECT_EQ(range(":10"), range("10"));
  auto bad = parse_range("20:10");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "range '20:10': start is greater than end");
  EXPECT_FALSE(parse_range(""));
  EXPECT_FALSE(parse_range("@"));
  EXPECT_FALSE(parse_range("a:b"));
  EXPECT_FALSE(parse_range("1:2:3"));
}

TEST(MetricPath, NodesAreSanitised) {
  EXPECT_EQ(check_metric_path("web-1", "disk", "/boot"), "stele.check.web-1.disk._boot");
  EXPECT_EQ(check_metric_path("shop_web-r3-0", "http.check", "time"), "stele.check.shop_web-r3-0.http_check.time");
  EXPECT_EQ(check_metric_path("h", "c", "C:\\ Label"), "stele.check.h.c.C___Label");
}
