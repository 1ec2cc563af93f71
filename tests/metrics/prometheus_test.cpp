// Prometheus text format 0.0.4: exact text for families, labels, escaping,
// values, and what the writer refuses.
#include "metrics/prometheus.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

using namespace stele::metrics;

namespace {

void ok(const stele::Result<void>& r) { ASSERT_TRUE(r.has_value()) << r.error().message; }

std::string error_of(const stele::Result<void>& r) { return r ? "" : r.error().message; }

TEST(PrometheusWriter, CounterAndGaugeFamilies) {
  PrometheusWriter w;
  ok(w.family("stele_forward_records_total", "Records acked by the forward input.", PrometheusType::kCounter));
  ok(w.sample({{"listener", "0.0.0.0:24224"}}, 1027));
  ok(w.sample({{"listener", "unix"}}, 3));
  ok(w.family("stele_tasks", "Tasks by state.", PrometheusType::kGauge));
  ok(w.sample({{"state", "running"}, {"app", "shop_web"}}, 4));
  ok(w.sample({}, 0.5));
  EXPECT_EQ(w.text(),
            "# HELP stele_forward_records_total Records acked by the forward input.\n"
            "# TYPE stele_forward_records_total counter\n"
            "stele_forward_records_total{listener=\"0.0.0.0:24224\"} 1027\n"
            "stele_forward_records_total{listener=\"unix\"} 3\n"
            "# HELP stele_tasks Tasks by state.\n"
            "# TYPE stele_tasks gauge\n"
            "stele_tasks{state=\"running\",app=\"shop_web\"} 4\n"
            "stele_tasks 0.5\n");
}

TEST(PrometheusWriter, EmptyWriterIsEmptyText) { EXPECT_EQ(PrometheusWriter().text(), ""); }

TEST(PrometheusWriter, FamiliesAreNeverRepeated) {
  PrometheusWriter w;
  ok(w.family("a", "A.", PrometheusType::kGauge));
  ok(w.sample({{"x", "1"}}, 1));
  ok(w.family("b", "B.", PrometheusType::kGauge));
  ok(w.sample({}, 2));
  ok(w.family("a", "A.", PrometheusType::kGauge));  // back to a
  ok(w.sample({{"x", "2"}}, 3));
  EXPECT_EQ(w.text(),
            "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 3\n"
            "# HELP b B.\n# TYPE b gauge\nb 2\n");
  EXPECT_EQ(error_of(w.family("a", "Other.", PrometheusType::kGauge)),
            "metric \"a\" is declared again with another help or type");
  EXPECT_EQ(error_of(w.family("a", "A.", PrometheusType::kCounter)),
            "metric \"a\" is declared again with another help or type");
}

TEST(PrometheusWriter, LabelValuesAreEscaped) {
  PrometheusWriter w;
  ok(w.family("m", "", PrometheusType::kGauge));
  ok(w.sample({{"path", "C:\\dir \"q\"\nnext"}, {"utf8", "caf\xc3\xa9"}}, 1));
  EXPECT_EQ(w.text(), "# TYPE m gauge\nm{path=\"C:\\\\dir \\\"q\\\"\\nnext\",utf8=\"caf\xc3\xa9\"} 1\n");
}

TEST(PrometheusWriter, HelpIsEscapedButQuotesAreNot) {
  PrometheusWriter w;
  ok(w.family("m", "a \"b\" \\ c\nd", PrometheusType::kCounter));
  EXPECT_EQ(w.text(), "# HELP m a \"b\" \\\\ c\\nd\n# TYPE m counter\n");
  EXPECT_EQ(escape_prometheus_help("x\\\n\""), "x\\\\\\n\"");
  EXPECT_EQ(escape_prometheus_label_value("x\\\n\""), "x\\\\\\n\\\"");
}

TEST(PrometheusWriter, ValuesAndTimestamps) {
  EXPECT_EQ(format_prometheus_value(0), "0");
  EXPECT_EQ(format_prometheus_value(-0.0), "0");
  EXPECT_EQ(format_prometheus_value(1e6), "1000000");
  EXPECT_EQ(format_prometheus_value(-42), "-42");
  EXPECT_EQ(format_prometheus_value(9007199254740992.0), "9007199254740992");  // 2^53
  EXPECT_EQ(format_prometheus_value(1e20), "1e+20");
  EXPECT_EQ(format_prometheus_value(0.1), "0.1");
  EXPECT_EQ(format_prometheus_value(2.5e-7), "2.5e-07");
  EXPECT_EQ(format_prometheus_value(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(format_prometheus_value(INFINITY), "+Inf");
  EXPECT_EQ(format_prometheus_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_prometheus_value(std::nan("")), "NaN");
  PrometheusWriter w;
  ok(w.family("g", "G.", PrometheusType::kGauge));
  ok(w.sample({{"k", "v"}}, -INFINITY, 1700000000123));
  ok(w.sample({{"k", "w"}}, std::nan("")));
  EXPECT_EQ(w.text(), "# HELP g G.\n# TYPE g gauge\ng{k=\"v\"} -Inf 1700000000123\ng{k=\"w\"} NaN\n");
}

TEST(PrometheusWriter, MetricNamesAreValidated) {
  EXPECT_TRUE(valid_prometheus_metric_name("stele:requests_total"));
  EXPECT_TRUE(valid_prometheus_metric_name("_x9"));
  EXPECT_TRUE(valid_prometheus_metric_name(":x"));
  for (const char* bad : {"", "9x", "a-b", "a.b", "a b", "caf\xc3\xa9"})
    EXPECT_FALSE(valid_prometheus_metric_name(bad)) << bad;
  PrometheusWriter w;
  EXPECT_EQ(error_of(w.family("stele.app", "x", PrometheusType::kGauge)),
            "metric name \"stele.app\": must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  EXPECT_EQ(error_of(w.sample({}, 1)), "a sample needs a family declared first");
  EXPECT_EQ(w.text(), "");
}

TEST(PrometheusWriter, LabelNamesAreValidated) {
  EXPECT_TRUE(valid_prometheus_label_name("app_name"));
  for (const char* bad : {"", "1a", "a:b", "a-b", "__name__"}) EXPECT_FALSE(valid_prometheus_label_name(bad)) << bad;
  PrometheusWriter w;
  ok(w.family("m", "M.", PrometheusType::kGauge));
  EXPECT_EQ(error_of(w.sample({{"a:b", "1"}}, 1)),
            "metric \"m\": label name \"a:b\": must match [a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\"");
  EXPECT_EQ(error_of(w.sample({{"a", "1"}, {"a", "2"}}, 1)), "metric \"m\": label \"a\" is given twice");
  EXPECT_EQ(w.text(), "# HELP m M.\n# TYPE m gauge\n");  // nothing written by refused samples
}

TEST(PrometheusWriter, DuplicateSeriesAreRefused) {
  PrometheusWriter w;
  ok(w.family("m", "M.", PrometheusType::kGauge));
  ok(w.sample({{"a", "1"}, {"b", "2"}}, 1));
  EXPECT_EQ(error_of(w.sample({{"b", "2"}, {"a", "1"}}, 5)), "metric \"m\": sample {b=\"2\",a=\"1\"} is given twice");
  ok(w.sample({}, 2));
  EXPECT_EQ(error_of(w.sample({}, 3)), "metric \"m\": sample without labels is given twice");
  ok(w.family("n", "N.", PrometheusType::kGauge));
  ok(w.sample({{"a", "1"}, {"b", "2"}}, 1));  // same labels, other family: fine
}

TEST(PrometheusWriter, CountersMustNotBeNegative) {
  PrometheusWriter w;
  ok(w.family("c_total", "C.", PrometheusType::kCounter));
  EXPECT_EQ(error_of(w.sample({}, -1)), "counter \"c_total\": must not be negative, got -1");
  ok(w.sample({{"k", "nan"}}, std::nan("")));
  ok(w.sample({{"k", "inf"}}, INFINITY));
  EXPECT_EQ(w.text(), "# HELP c_total C.\n# TYPE c_total counter\nc_total{k=\"nan\"} NaN\nc_total{k=\"inf\"} +Inf\n");
}

}  // namespace
