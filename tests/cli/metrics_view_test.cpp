#include "cli/metrics_view.h"

#include <gtest/gtest.h>

namespace stele::cli {
namespace {

using V = std::vector<std::optional<double>>;

TEST(GraphiteTime, BareDurationsBecomeOffsetsOtherFormsPassThrough) {
  EXPECT_EQ(graphite_time("1h"), "-1h");
  EXPECT_EQ(graphite_time("10m"), "-10min");  // Graphite would not read "-10m" as minutes
  EXPECT_EQ(graphite_time("30s"), "-30s");
  EXPECT_EQ(graphite_time("7d"), "-7d");
  EXPECT_EQ(graphite_time("2w"), "-2w");
  for (const char* same : {"-1h", "now", "1700000000", "14:00_20261127", "20261127", "1x", "h", ""})
    EXPECT_EQ(graphite_time(same), same);
}

TEST(Sparkline, ScalesBetweenLowestAndHighestAndLeavesGapsBlank) {
  EXPECT_EQ(sparkline({0.0, 7.0, std::nullopt, 3.5}, 10), "▁█ ▅");
  EXPECT_EQ(sparkline({5.0, 5.0, 5.0}, 10), "▄▄▄");  // flat: mid-height
  EXPECT_EQ(sparkline({}, 10), "");
  EXPECT_EQ(sparkline({1.0}, 0), "");
  EXPECT_EQ(sparkline({std::nullopt, std::nullopt}, 5), "  ");
}

TEST(Sparkline, AveragesIntoWidthBuckets) {
  // 8 values into 4 columns: (0+0) (1+1) (2+2) (3+3) -> lowest..highest.
  EXPECT_EQ(sparkline({0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0}, 4), "▁▃▆█");
  // A null beside a value in one bucket: the value counts alone.
  EXPECT_EQ(sparkline({0.0, std::nullopt, std::nullopt, 4.0}, 2), "▁█");
  V many(1000, 1.0);
  many[999] = 2.0;
  std::string s = sparkline(many, 40);
  EXPECT_EQ(s.size(), 40u * 3);  // 40 columns, 3 bytes of UTF-8 each
  EXPECT_EQ(s.substr(0, 3), "▁");
  EXPECT_EQ(s.substr(39 * 3), "█");
}

TEST(FormatMetric, NarrowWithSiSuffixes) {
  EXPECT_EQ(format_metric(std::nullopt), "-");
  EXPECT_EQ(format_metric(0.126), "0.13");
  EXPECT_EQ(format_metric(9999), "9999");
  EXPECT_EQ(format_metric(12345), "12.3k");
  EXPECT_EQ(format_metric(-4'560'000), "-4.56M");
  EXPECT_EQ(format_metric(67'108'864), "67.1M");
  EXPECT_EQ(format_metric(999'999), "1.00M");
  EXPECT_EQ(format_metric(2.5e12), "2.50T");
}

Json series(const std::string& name, int64_t t0, int64_t step, const V& values) {
  Json dps = Json::array();
  for (size_t i = 0; i < values.size(); ++i)
    dps.push_back({values[i] ? Json(*values[i]) : Json(nullptr), t0 + int64_t(i) * step});
  return {{"target", name}, {"datapoints", dps}, {"tags", {{"name", name}}}};
}

TEST(SummarizeRender, LastMinAvgMaxOverNonNullValues) {
  Json doc = Json::array({series("a.b", 1'800'000'000, 10, {1.0, std::nullopt, 5.0, 3.0, std::nullopt}),
                          series("a.c", 1'800'000'000, 10, {std::nullopt, std::nullopt}), Json("junk")});
  auto s = summarize_render(doc);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "a.b");
  EXPECT_EQ(s[0].points, 3u);
  EXPECT_EQ(s[0].step, 10);
  EXPECT_EQ(*s[0].last, 3.0);
  EXPECT_EQ(*s[0].min, 1.0);
  EXPECT_EQ(*s[0].avg, 3.0);
  EXPECT_EQ(*s[0].max, 5.0);
  EXPECT_FALSE(s[1].last);

  Table t = metrics_table(s, 5);
  EXPECT_EQ(t.render(),
            "SERIES   LAST   MIN   AVG   MAX   TREND\n"
            "a.b      3      1     3     5     ▁ █▅\n"
            "a.c      -      -     -     -\n");
  // 1800000000 = 2027-01-15 08:00:00 UTC.
  EXPECT_EQ(metrics_range_line(s), "2027-01-15 08:00:00 to 08:00:40 UTC, step 10s, 5 values per series");
  EXPECT_EQ(metrics_range_line({}), "");
}

TEST(TopTargets, NarrowToOneAppsTasks) {
  auto all = top_targets("");
  EXPECT_EQ(all[0], "stele.task.*.*.*.cpu.usage");
  EXPECT_EQ(top_targets("shop_web")[1], "stele.task.*.shop_web-r*.*.memory.{usage,rss,limit}");
}

Json task(const std::string& id, const std::string& app, const std::string& agent, const std::string& state) {
  return {{"id", id}, {"appId", app}, {"agentId", agent}, {"host", "10.0.0.9"}, {"state", state}};
}

TEST(TopView, JoinsTasksWithTheirSeriesByHostnameAndSlot) {
  Json tasks = Json::array({task("web-r3.0.2", "/web", "a1", "running"), task("web-r3.1.1", "/web", "a2", "running"),
                            task("db-r1.0.1", "/db", "a1", "running"), task("web-r2.0.1", "/web", "a1", "killed")});
  Json nodes = Json::array({{{"id", "a1"}, {"hostname", "box.example"}}, {{"id", "a2"}, {"hostname", "b2"}}});
  int64_t t0 = 1'800'000'000;
  Json render = Json::array({
      // cpu.usage in seconds: 1 s of cpu per 10 s step = 10%, over the last two samples (a gap between is fine).
      series("stele.task.box_example.web-r3.0.cpu.usage", t0, 10, {100.0, 101.0, std::nullopt, 105.0}),
      series("stele.task.box_example.web-r3.0.memory.usage", t0, 10, {1e6, 2e6, std::nullopt, std::nullopt}),
      series("stele.task.box_example.web-r3.0.memory.limit", t0, 10, {8e6, 8e6, 8e6, 8e6}),
      series("stele.task.b2.web-r3.1.cpu.usage", t0, 10, {1.0, 6.0, 11.0, 16.0}),
      series("stele.task.b2.web-r3.1.memory.usage", t0, 10, {std::nullopt, std::nullopt, 9e6, 9e6}),
      series("stele.task.box_example.db-r1.0.cpu.usage", t0, 10, {50.0, 10.0}),  // reset: unknown
      series("stele.node.b2.cpu.user", t0, 10, {0.0, 5.0}),
      series("stele.node.b2.cpu.idle", t0, 10, {0.0, 10.0}),
      series("stele.node.b2.cpu.iowait", t0, 10, {0.0, 5.0}),
      series("stele.node.b2.load.1", t0, 10, {0.5, 0.25}),
      series("stele.node.b2.memory.total", t0, 10, {16e9, 16e9}),
      series("stele.node.b2.memory.available", t0, 10, {12e9, 4e9}),
  });
  TopView v = make_top_view(tasks, nodes, render, TopSort::kCpu);
  ASSERT_EQ(v.tasks.size(), 3u);  // running only
  EXPECT_EQ(v.tasks[0].id, "web-r3.1.1");
  EXPECT_DOUBLE_EQ(*v.tasks[0].cpu_percent, 50.0);
  EXPECT_EQ(v.tasks[0].host, "b2");
  EXPECT_EQ(*v.tasks[0].mem, 9e6);
  EXPECT_EQ(v.tasks[1].id, "web-r3.0.2");
  EXPECT_DOUBLE_EQ(*v.tasks[1].cpu_percent, 20.0);  // (105 - 101) / 20 s
  EXPECT_EQ(*v.tasks[1].mem, 2e6);
  EXPECT_EQ(*v.tasks[1].limit, 8e6);
  EXPECT_EQ(v.tasks[2].id, "db-r1.0.1");
  EXPECT_FALSE(v.tasks[2].cpu_percent);
  ASSERT_EQ(v.nodes.size(), 1u);
  EXPECT_EQ(v.nodes[0].host, "b2");
  EXPECT_DOUBLE_EQ(*v.nodes[0].cpu_percent, 25.0);  // user / (user + idle + iowait)
  EXPECT_EQ(*v.nodes[0].mem_used, 12e9);

  EXPECT_EQ(make_top_view(tasks, nodes, render, TopSort::kMem).tasks[0].id, "web-r3.1.1");
  EXPECT_EQ(make_top_view(tasks, nodes, render, TopSort::kTask).tasks[0].id, "db-r1.0.1");

  std::string screen = render_top(v, t0 * 1000);
  EXPECT_NE(screen.find("3 running tasks on 1 node - cpu 70.0% - mem 10M"), std::string::npos) << screen;
  EXPECT_NE(screen.find("web-r3.0.2   /web   box.example   20.0   1.9M   -     7.6M    25.0   -"), std::string::npos)
      << screen;
  Json j = top_json(v, t0 * 1000);
  EXPECT_EQ(j["tasks"][2]["cpuPercent"], nullptr);
  EXPECT_EQ(j["nodes"][0]["memUsedBytes"], 12e9);
}

TEST(TopView, NoTasksSaysSo) {
  TopView v = make_top_view(Json::array(), Json::array(), Json::array(), TopSort::kCpu);
  EXPECT_NE(render_top(v, 0).find("No running tasks."), std::string::npos);
}

}  // namespace
}  // namespace stele::cli
