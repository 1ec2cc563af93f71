// The render evaluator against graphite-web 1.1.8.
//
// How the RenderEvalOracle expectations were obtained: graphite-web 1.1.8's
// own render/evaluator.py, render/functions.py, render/datalib.py and
// functions/*.py (Debian's graphite-web 1.1.8 package, run under Python
// 3.11 with pyparsing 3) evaluated each target through evaluateTarget(),
// with stub django/pytz modules and a stub STORE whose fetch() serves the
// same metrics and values as FakeStore below (per-node fnmatch on the
// pattern, whisper-like alignment: start = (from // step + 1) * step, end =
// (until // step + 1) * step). xFilesFactor is the request's (0 unless the
// case says otherwise). Each series' name, pathExpression, start, end, step,
// dict(tags) and list(series) were printed and pasted here unchanged (None
// as N); values are compared exactly.
//
// The other tests (errors, fetch calls, the cases where graphite-web 1.1.8
// fails) were worked out by hand from the Python source; each says so.
#include "metrics/render_eval.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "metrics/render_format.h"

namespace stele::metrics {
namespace {

constexpr double N = std::numeric_limits<double>::quiet_NaN();

// fnmatch of one node: '*' and '?' only (all the tests use).
bool node_matches(std::string_view p, std::string_view s) {
  if (p.empty()) return s.empty();
  if (p[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i)
      if (node_matches(p.substr(1), s.substr(i))) return true;
    return false;
  }
  return !s.empty() && (p[0] == '?' || p[0] == s[0]) && node_matches(p.substr(1), s.substr(1));
}

std::vector<std::string_view> split_nodes(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t from = 0;;) {
    size_t dot = s.find('.', from);
    out.push_back(s.substr(from, dot == std::string_view::npos ? dot : dot - from));
    if (dot == std::string_view::npos) return out;
    from = dot + 1;
  }
}

bool path_matches(std::string_view pattern, std::string_view name) {
  auto p = split_nodes(pattern), n = split_nodes(name);
  if (p.size() != n.size()) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (!node_matches(p[i], n[i])) return false;
  return true;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The data both this store and the Python stub serve.
double value_at(const std::string& name, int64_t t, int64_t step) {
  int64_t k = 0;
  for (unsigned char c : name) k += c;
  const int64_t i = floor_div(t, step);
  if (((i + k) % 7 + 7) % 7 == 0 && !name.starts_with("full.")) return N;
  return double(((i * (k % 5 + 1) + k) % 97 + 97) % 97) * 0.5;
}

struct FakeStore {
  std::map<std::string, int64_t> metrics = {{"a.b.c", 10},        {"a.d.c", 10},        {"a.e.c", 60},
                                            {"srv.web1.cpu", 10}, {"srv.web2.cpu", 10}, {"srv.db1.cpu", 10},
                                            {"full.cnt", 10},     {"full.gauge", 10}};
  std::vector<std::tuple<std::string, int64_t, int64_t>> calls;

  Result<std::vector<Series>> fetch(std::string_view pattern, int64_t from, int64_t until) {
    calls.emplace_back(std::string(pattern), from, until);
    std::vector<Series> out;
    for (const auto& [name, step] : metrics) {
      if (!path_matches(pattern, name)) continue;
      Series s;
      s.name = name;
      s.step = step;
      s.start = (floor_div(from, step) + 1) * step;
      s.end = (floor_div(until, step) + 1) * step;
      for (int64_t t = s.start; t < s.end; t += step) s.values.push_back(value_at(name, t, step));
      out.push_back(std::move(s));
    }
    return out;
  }
  FetchFn fn() {
    return [this](std::string_view p, int64_t f, int64_t u) { return fetch(p, f, u); };
  }
};

Result<std::vector<Series>> render(FakeStore& store, std::string_view target, int64_t from, int64_t until,
                                   double xff = 0) {
  auto e = parse_target(target);
  if (!e) return fail(e.error());
  auto b = bind(*e);
  if (!b) return fail(b.error());
  RenderContext ctx;
  ctx.from = from, ctx.until = until, ctx.now = until, ctx.x_files_factor = xff;
  return evaluate(*e, *b, ctx, store.fn());
}

Result<std::vector<Series>> render(std::string_view target, int64_t from, int64_t until, double xff = 0) {
  FakeStore store;
  return render(store, target, from, until, xff);
}

struct Want {
  std::string name, path_expression;
  int64_t start, end, step;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<double> values;
};

void expect_same_values(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "point " << i << ": " << got[i] << ", want None";
    } else {
      EXPECT_EQ(got[i], want[i]) << "point " << i;
    }
  }
}

void expect_render(std::string_view target, int64_t from, int64_t until, double xff, const std::vector<Want>& want) {
  SCOPED_TRACE(std::string(target));
  auto got = render(target, from, until, xff);
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const Series& s = (*got)[i];
    const Want& w = want[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(s.name, w.name);
    EXPECT_EQ(s.path_expression, w.path_expression);
    EXPECT_EQ(s.start, w.start);
    EXPECT_EQ(s.end, w.end);
    EXPECT_EQ(s.step, w.step);
    EXPECT_EQ(s.tags, (std::map<std::string, std::string>(w.tags.begin(), w.tags.end())));
    expect_same_values(s.values, w.values);
  }
}

Error render_error(std::string_view target, int64_t from = 1000, int64_t until = 1100) {
  auto got = render(target, from, until);
  if (got) return Error{"rendered " + std::to_string(got->size()) + " series", {}, 0};
  return got.error();
}

TEST(RenderEvalOracle, SumSeries) {
  expect_render("sumSeries(a.*.c)", 1000, 1200, 0.0,
                {
                    {"sumSeries(a.*.c)",
                     "sumSeries(a.*.c)",
                     1010,
                     1250,
                     60,
                     {{"name", "sumSeries(a.*.c)"}, {"aggregatedBy", "sum"}},
                     {19.0, 81.9, 101.8, 68.5}},
                });
  expect_render("sumSeries(srv.*.cpu,a.b.c)", 1000, 1100, 0.0,
                {
                    {"sumSeries(srv.*.cpu,a.b.c)",
                     "sumSeries(srv.*.cpu,a.b.c)",
                     1010,
                     1110,
                     10,
                     {{"name", "sumSeries(srv.*.cpu,a.b.c)"}, {"aggregatedBy", "sum"}},
                     {114.5, 121.0, 79.0, 42.0, 87.0, 54.0, 105.0, 63.0, 69.5, 76.0}},
                });
  expect_render("sumSeries(srv.web1.cpu)", 1000, 1060, 0.0,
                {
                    {"sumSeries(srv.web1.cpu)",
                     "sumSeries(srv.web1.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.web1.cpu"}, {"aggregatedBy", "sum"}},
                     {43.5, 46.0, 0.0, 2.5, N, 7.5}},
                });
  expect_render("sumSeries(nosuch.*)", 1000, 1100, 0.0, {});
}

TEST(RenderEvalOracle, AverageSeries) {
  expect_render("averageSeries(srv.*.cpu)", 1000, 1100, 0.0,
                {
                    {"averageSeries(srv.*.cpu)",
                     "averageSeries(srv.*.cpu)",
                     1010,
                     1110,
                     10,
                     {{"name", "averageSeries(srv.*.cpu)"}, {"aggregatedBy", "average"}},
                     {37.166666666666664, 39.0, 24.666666666666668, 21.0, 40.0, 23.0, 32.0, 17.666666666666668, 19.5,
                      21.333333333333332}},
                });
  expect_render("averageSeries(a.*.c)", 1000, 1200, 0.5,
                {
                    {"averageSeries(a.*.c)",
                     "averageSeries(a.*.c)",
                     1010,
                     1250,
                     60,
                     {{"name", "averageSeries(a.*.c)"}, {"aggregatedBy", "average"}},
                     {9.5, 27.3, 33.93333333333333, N}},
                });
}

TEST(RenderEvalOracle, MaxMinSeries) {
  expect_render("maxSeries(srv.*.cpu)", 1000, 1100, 0.0,
                {
                    {"maxSeries(srv.*.cpu)",
                     "maxSeries(srv.*.cpu)",
                     1010,
                     1110,
                     10,
                     {{"name", "maxSeries(srv.*.cpu)"}, {"aggregatedBy", "max"}},
                     {43.5, 46.0, 37.0, 39.5, 42.0, 38.5, 47.0, 39.5, 40.0, 40.5}},
                });
  expect_render("minSeries(srv.*.cpu)", 1000, 1100, 0.0,
                {
                    {"minSeries(srv.*.cpu)",
                     "minSeries(srv.*.cpu)",
                     1010,
                     1110,
                     10,
                     {{"name", "minSeries(srv.*.cpu)"}, {"aggregatedBy", "min"}},
                     {32.0, 34.5, 0.0, 2.5, 38.0, 7.5, 10.0, 1.0, 3.5, 6.0}},
                });
}

TEST(RenderEvalOracle, Scale) {
  expect_render("scale(a.b.c,2)", 1000, 1100, 0.0,
                {
                    {"scale(a.b.c,2)",
                     "scale(a.b.c,2)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"scale", "2.0"}},
                     {6.0, 8.0, 10.0, N, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0}},
                });
  expect_render("scale(srv.*.cpu,0.1)", 1000, 1050, 0.0,
                {
                    {"scale(srv.db1.cpu,0.1)",
                     "scale(srv.db1.cpu,0.1)",
                     1010,
                     1060,
                     10,
                     {{"name", "srv.db1.cpu"}, {"scale", "0.1"}},
                     {3.2, 3.45, 3.7, 3.95, 4.2}},
                    {"scale(srv.web1.cpu,0.1)",
                     "scale(srv.web1.cpu,0.1)",
                     1010,
                     1060,
                     10,
                     {{"name", "srv.web1.cpu"}, {"scale", "0.1"}},
                     {4.3500000000000005, 4.6000000000000005, 0.0, 0.25, N}},
                    {"scale(srv.web2.cpu,0.1)",
                     "scale(srv.web2.cpu,0.1)",
                     1010,
                     1060,
                     10,
                     {{"name", "srv.web2.cpu"}, {"scale", "0.1"}},
                     {3.6, 3.6500000000000004, 3.7, N, 3.8000000000000003}},
                });
  expect_render("scale(a.b.c,1e20)", 1000, 1040, 0.0,
                {
                    {"scale(a.b.c,1e+20)",
                     "scale(a.b.c,1e+20)",
                     1010,
                     1050,
                     10,
                     {{"name", "a.b.c"}, {"scale", "1e+20"}},
                     {3e+20, 4e+20, 5e+20, N}},
                });
}

TEST(RenderEvalOracle, Offset) {
  expect_render("offset(a.b.c,-1.5)", 1000, 1100, 0.0,
                {
                    {"offset(a.b.c,-1.5)",
                     "offset(a.b.c,-1.5)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"offset", "-1.5"}},
                     {1.5, 2.5, 3.5, N, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5}},
                });
  expect_render("offset(a.b.c,3)", 1000, 1040, 0.0,
                {
                    {"offset(a.b.c,3)",
                     "offset(a.b.c,3)",
                     1010,
                     1050,
                     10,
                     {{"name", "a.b.c"}, {"offset", "3.0"}},
                     {6.0, 7.0, 8.0, N}},
                });
}

TEST(RenderEvalOracle, Derivative) {
  expect_render("derivative(a.b.c)", 1000, 1200, 0.0,
                {
                    {"derivative(a.b.c)",
                     "derivative(a.b.c)",
                     1010,
                     1210,
                     10,
                     {{"name", "a.b.c"}, {"derivative", "1"}},
                     {N, 1.0, 1.0, N, N, 1.0, 1.0, 1.0, 1.0, 1.0, N, N, 1.0, 1.0, 1.0, 1.0, 1.0, N, N, 1.0}},
                });
}

TEST(RenderEvalOracle, NonNegativeDerivative) {
  expect_render("nonNegativeDerivative(srv.web1.cpu)", 1000, 1400, 0.0,
                {
                    {"nonNegativeDerivative(srv.web1.cpu)",
                     "nonNegativeDerivative(srv.web1.cpu)",
                     1010,
                     1410,
                     10,
                     {{"name", "srv.web1.cpu"}, {"nonNegativeDerivative", "1"}},
                     {N,   2.5, N, 2.5, N,   N, 2.5, 2.5, 2.5, 2.5, 2.5, N,   N, 2.5, 2.5, 2.5, 2.5, 2.5, N,   N,
                      2.5, 2.5, N, 2.5, 2.5, N, N,   2.5, 2.5, 2.5, 2.5, 2.5, N, N,   2.5, 2.5, 2.5, 2.5, 2.5, N}},
                });
  expect_render(
      "nonNegativeDerivative(full.cnt,40)", 1000, 1400, 0.0,
      {
          {"nonNegativeDerivative(full.cnt)",
           "nonNegativeDerivative(full.cnt)",
           1010,
           1410,
           10,
           {{"name", "full.cnt"}, {"nonNegativeDerivative", "1"}},
           {N,   1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, N,   N,   N,   N,   N,   N,   N,   N,   N,   1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
      });
  expect_render(
      "nonNegativeDerivative(full.cnt,maxValue=40,minValue=3)", 1000, 1400, 0.0,
      {
          {"nonNegativeDerivative(full.cnt)",
           "nonNegativeDerivative(full.cnt)",
           1010,
           1410,
           10,
           {{"name", "full.cnt"}, {"nonNegativeDerivative", "1"}},
           {N,   1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   N,   1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
      });
  expect_render(
      "nonNegativeDerivative(full.cnt,minValue=3)", 1000, 1400, 0.0,
      {
          {"nonNegativeDerivative(full.cnt)",
           "nonNegativeDerivative(full.cnt)",
           1010,
           1410,
           10,
           {{"name", "full.cnt"}, {"nonNegativeDerivative", "1"}},
           {N,   1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, N,   N,   N,   N,   1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
      });
}

TEST(RenderEvalOracle, PerSecond) {
  expect_render(
      "perSecond(srv.web1.cpu)", 1000, 1400, 0.0,
      {
          {"perSecond(srv.web1.cpu)",
           "perSecond(srv.web1.cpu)",
           1010,
           1410,
           10,
           {{"name", "srv.web1.cpu"}, {"perSecond", "1"}},
           {N,    0.25, N,    0.25, N, N, 0.25, 0.25, 0.25, 0.25, 0.25, N, N, 0.25, 0.25, 0.25, 0.25, 0.25, N, N, 0.25,
            0.25, N,    0.25, 0.25, N, N, 0.25, 0.25, 0.25, 0.25, 0.25, N, N, 0.25, 0.25, 0.25, 0.25, 0.25, N}},
      });
  expect_render(
      "perSecond(full.cnt,40)", 1000, 1400, 0.0,
      {
          {"perSecond(full.cnt)",
           "perSecond(full.cnt)",
           1010,
           1410,
           10,
           {{"name", "full.cnt"}, {"perSecond", "1"}},
           {N,   0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1,
            0.1, 0.1, N,   N,   N,   N,   N,   N,   N,   N,   N,   0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}},
      });
  expect_render("perSecond(scale(full.gauge,0.3))", 1000, 1200, 0.0,
                {
                    {"perSecond(scale(full.gauge,0.3))",
                     "perSecond(scale(full.gauge,0.3))",
                     1010,
                     1210,
                     10,
                     {{"name", "full.gauge"}, {"scale", "0.3"}, {"perSecond", "1"}},
                     {N,     0.045, 0.045, 0.045, 0.045, 0.045, 0.045, 0.045, 0.045, 0.045,
                      0.045, 0.045, 0.045, 0.045, 0.045, 0.045, 0.045, 0.045, N,     0.045}},
                });
}

TEST(RenderEvalOracle, MovingAverage) {
  expect_render("movingAverage(a.b.c,3)", 1000, 1100, 0.0,
                {
                    {"movingAverage(a.b.c,3)",
                     "movingAverage(a.b.c,3)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"movingAverage", "3"}},
                     {1.0, 2.0, 3.0, 4.0, 4.5, 6.0, 7.5, 8.0, 9.0, 10.0}},
                });
  expect_render("movingAverage(a.b.c,\"30s\")", 1000, 1100, 0.0,
                {
                    {"movingAverage(a.b.c,\"30s\")",
                     "movingAverage(a.b.c,\"30s\")",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"movingAverage", "30s"}},
                     {1.0, 2.0, 3.0, 4.0, 4.5, 6.0, 7.5, 8.0, 9.0, 10.0}},
                });
  expect_render("movingAverage(a.*.c,2)", 1000, 1300, 0.0,
                {
                    {"movingAverage(a.b.c,2)",
                     "movingAverage(a.b.c,2)",
                     1010,
                     1310,
                     10,
                     {{"name", "a.b.c"}, {"movingAverage", "2"}},
                     {39.5, 41.5, 42.0, 43.0, 44.0, 45.0, 46.0, 46.5, 0.0,  0.5,  1.5,  2.5,  3.5,  4.5,
                      5.0,  7.0,  7.5,  8.5,  9.5,  10.5, 11.5, 12.0, 14.0, 14.5, 15.5, 16.5, 17.5, 18.5,
                      19.0, 21.0, 21.5, 22.5, 23.5, 24.5, 25.5, 26.0, 28.0, 28.5, 29.5, 30.5}},
                    {"movingAverage(a.d.c,2)",
                     "movingAverage(a.d.c,2)",
                     1010,
                     1310,
                     10,
                     {{"name", "a.d.c"}, {"movingAverage", "2"}},
                     {33.5, 35.5, 37.5, 39.5, 41.5,  42.5, 46.5, 23.25, 1.0,  3.0,  5.0,  7.0,  8.0,  12.0,
                      13.0, 15.0, 17.0, 19.0, 21.0,  22.0, 26.0, 27.0,  29.0, 31.0, 33.0, 35.0, 36.0, 40.0,
                      41.0, 43.0, 45.0, 47.0, 24.75, 1.5,  5.5,  6.5,   8.5,  10.5, 12.5, 14.5}},
                    {"movingAverage(a.e.c,2)",
                     "movingAverage(a.e.c,2)",
                     1020,
                     1320,
                     60,
                     {{"name", "a.e.c"}, {"movingAverage", "2"}},
                     {39.25, 40.5, 45.5, 46.75, 25.0}},
                });
  expect_render("movingAverage(a.b.c,5,0.9)", 1000, 1200, 0.0,
                {
                    {"movingAverage(a.b.c,5)",
                     "movingAverage(a.b.c,5)",
                     1010,
                     1210,
                     10,
                     {{"name", "a.b.c"}, {"movingAverage", "5"}},
                     {N, N, 2.0, 3.0, N, N, N, N, N, 9.0, 10.0, N, N, N, N, N, 16.0, 17.0, N, N}},
                });
  expect_render(
      "movingAverage(a.b.c,\"45s\")", 1000, 1100, 0.0,
      {
          {"movingAverage(a.b.c,\"45s\")",
           "movingAverage(a.b.c,\"45s\")",
           1005,
           1110,
           10,
           {{"name", "a.b.c"}, {"movingAverage", "45s"}},
           {15.833333333333334, 1.0, 1.5, 2.5, 3.5, 4.0, 5.333333333333333, 6.666666666666667, 8.0, 8.5, 9.5}},
      });
  expect_render("movingAverage(a.b.c,2.5)", 1000, 1060, 0.0,
                {
                    {"movingAverage(a.b.c,2.5)",
                     "movingAverage(a.b.c,2.5)",
                     1010,
                     1070,
                     10,
                     {{"name", "a.b.c"}, {"movingAverage", "2.5"}},
                     {1.5, 2.5, 3.5, 4.5, 5.0, 7.0}},
                });
  expect_render("movingAverage(a.b.c,0)", 1000, 1040, 0.0,
                {
                    {"movingAverage(a.b.c,0)",
                     "movingAverage(a.b.c,0)",
                     1010,
                     1050,
                     10,
                     {{"name", "a.b.c"}, {"movingAverage", "0"}},
                     {N, N, N, N}},
                });
}

TEST(RenderEvalOracle, Summarize) {
  expect_render("summarize(a.b.c,\"1min\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"sum\")",
                     "summarize(a.b.c, \"1min\", \"sum\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "sum"}},
                     {3.0, 33.0, 62.0, 91.0, 120.0, 150.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"avg\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"avg\")",
                     "summarize(a.b.c, \"1min\", \"avg\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "avg"}},
                     {3.0, 6.6, 12.4, 18.2, 24.0, 30.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"max\",true)", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"max\", true)",
                     "summarize(a.b.c, \"1min\", \"max\", true)",
                     1010,
                     1310,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "max"}},
                     {8.0, 14.0, 19.0, 26.0, 32.0}},
                });
  expect_render("summarize(a.b.c,\"45s\",\"count\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"45s\", \"count\")",
                     "summarize(a.b.c, \"45s\", \"count\")",
                     990,
                     1350,
                     45,
                     {{"name", "a.b.c"}, {"summarize", "45s"}, {"summarizeFunction", "count"}},
                     {3.0, 3.0, 4.0, 4.0, 4.0, 3.0, 5.0, N}},
                });
  expect_render("summarize(a.b.c,\"45s\",\"last\",true)", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"45s\", \"last\", true)",
                     "summarize(a.b.c, \"45s\", \"last\", true)",
                     1010,
                     1325,
                     45,
                     {{"name", "a.b.c"}, {"summarize", "45s"}, {"summarizeFunction", "last"}},
                     {7.0, 11.0, 16.0, 19.0, 25.0, 29.0, 32.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"median\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"median\")",
                     "summarize(a.b.c, \"1min\", \"median\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "median"}},
                     {3.0, 7.0, 12.0, 18.0, 24.0, 30.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"diff\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"diff\")",
                     "summarize(a.b.c, \"1min\", \"diff\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "diff"}},
                     {3.0, -25.0, -42.0, -59.0, -76.0, -94.0}},
                });
  expect_render(
      "summarize(a.b.c,\"1min\",\"stddev\")", 1000, 1300, 0.0,
      {
          {"summarize(a.b.c, \"1min\", \"stddev\")",
           "summarize(a.b.c, \"1min\", \"stddev\")",
           960,
           1320,
           60,
           {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "stddev"}},
           {0.0, 1.8547236990991407, 1.8547236990991407, 1.7204650534085253, 1.4142135623730951, 1.4142135623730951}},
      });
  expect_render("summarize(a.b.c,\"1min\",\"range\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"range\")",
                     "summarize(a.b.c, \"1min\", \"range\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "range"}},
                     {0.0, 5.0, 5.0, 5.0, 4.0, 4.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"multiply\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"multiply\")",
                     "summarize(a.b.c, \"1min\", \"multiply\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "multiply"}},
                     {3.0, N, N, N, N, 24165120.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"avg_zero\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"avg_zero\")",
                     "summarize(a.b.c, \"1min\", \"avg_zero\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "avg_zero"}},
                     {3.0, 5.5, 10.333333333333334, 15.166666666666666, 20.0, 30.0}},
                });
  expect_render("summarize(a.b.c,\"1min\",\"min\")", 1000, 1300, 0.0,
                {
                    {"summarize(a.b.c, \"1min\", \"min\")",
                     "summarize(a.b.c, \"1min\", \"min\")",
                     960,
                     1320,
                     60,
                     {{"name", "a.b.c"}, {"summarize", "1min"}, {"summarizeFunction", "min"}},
                     {3.0, 4.0, 10.0, 16.0, 22.0, 28.0}},
                });
  expect_render("summarize(a.*.c,\"2min\",\"sum\")", 1000, 1500, 0.5,
                {
                    {"summarize(a.b.c, \"2min\", \"sum\")",
                     "summarize(a.b.c, \"2min\", \"sum\")",
                     960,
                     1560,
                     120,
                     {{"name", "a.b.c"}, {"summarize", "2min"}, {"summarizeFunction", "sum"}},
                     {36.0, 153.0, 303.0, 399.0, 101.0}},
                    {"summarize(a.d.c, \"2min\", \"sum\")",
                     "summarize(a.d.c, \"2min\", \"sum\")",
                     960,
                     1560,
                     120,
                     {{"name", "a.d.c"}, {"summarize", "2min"}, {"summarizeFunction", "sum"}},
                     {88.0, 334.0, 178.0, 358.5, 72.5}},
                    {"summarize(a.e.c, \"2min\", \"sum\")",
                     "summarize(a.e.c, \"2min\", \"sum\")",
                     960,
                     1680,
                     120,
                     {{"name", "a.e.c"}, {"summarize", "2min"}, {"summarizeFunction", "sum"}},
                     {N, 93.5, 6.5, 16.5, 14.5, N}},
                });
}

TEST(RenderEvalOracle, GroupByNode) {
  expect_render("groupByNode(srv.*.cpu,1,\"sum\")", 1000, 1060, 0.0,
                {
                    {"db1",
                     "sumSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.db1.cpu"}, {"aggregatedBy", "sum"}},
                     {32.0, 34.5, 37.0, 39.5, 42.0, N}},
                    {"web1",
                     "sumSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.web1.cpu"}, {"aggregatedBy", "sum"}},
                     {43.5, 46.0, 0.0, 2.5, N, 7.5}},
                    {"web2",
                     "sumSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.web2.cpu"}, {"aggregatedBy", "sum"}},
                     {36.0, 36.5, 37.0, N, 38.0, 38.5}},
                });
  expect_render("groupByNode(srv.*.cpu,2)", 1000, 1060, 0.0,
                {
                    {"cpu",
                     "averageSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "averageSeries(srv.*.cpu)"}, {"aggregatedBy", "average"}},
                     {37.166666666666664, 39.0, 24.666666666666668, 21.0, 40.0, 23.0}},
                });
  expect_render("groupByNode(a.*.c,2,\"avg\")", 1000, 1200, 0.0,
                {
                    {"c",
                     "averageSeries(a.*.c)",
                     1010,
                     1250,
                     60,
                     {{"name", "averageSeries(a.*.c)"}, {"aggregatedBy", "average"}},
                     {9.5, 27.3, 33.93333333333333, 22.833333333333332}},
                });
  expect_render("groupByNode(a.*.c,0,\"maxSeries\")", 1000, 1100, 0.0,
                {
                    {"a",
                     "maxSeries(a.*.c)",
                     1010,
                     1130,
                     60,
                     {{"name", "maxSeries(a.*.c)"}, {"aggregatedBy", "max"}},
                     {13.6, 45.5}},
                });
  expect_render("groupByNode(srv.*.cpu,2,\"asPercent\")", 1000, 1060, 0.0,
                {
                    {"cpu",
                     "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))"}},
                     {28.699551569506728, 29.48717948717949, 50.0, 94.04761904761905, 52.5, N}},
                });
  expect_render("groupByNode(srv.*.cpu,2,\"total\")", 1000, 1060, 0.0,
                {
                    {"cpu",
                     "totalSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "totalSeries(srv.*.cpu)"}, {"aggregatedBy", "total"}},
                     {111.5, 117.0, 74.0, 42.0, 80.0, 46.0}},
                });
  expect_render("groupByNode(scale(srv.*.cpu,2),-1,\"median\")", 1000, 1060, 0.0,
                {
                    {"cpu",
                     "medianSeries(scale(srv.db1.cpu,2),scale(srv.web1.cpu,2),scale(srv.web2.cpu,2))",
                     1010,
                     1070,
                     10,
                     {{"scale", "2.0"},
                      {"name", "medianSeries(scale(srv.db1.cpu,2),scale(srv.web1.cpu,2),scale(srv.web2.cpu,2))"},
                      {"aggregatedBy", "median"}},
                     {72.0, 73.0, 74.0, 42.0, 80.0, 46.0}},
                });
  expect_render("groupByNode(srv.*.cpu,\"name\",\"count\")", 1000, 1060, 0.0,
                {
                    {"srv.db1.cpu",
                     "countSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.db1.cpu"}, {"aggregatedBy", "count"}},
                     {1.0, 1.0, 1.0, 1.0, 1.0, N}},
                    {"srv.web1.cpu",
                     "countSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.web1.cpu"}, {"aggregatedBy", "count"}},
                     {1.0, 1.0, 1.0, 1.0, N, 1.0}},
                    {"srv.web2.cpu",
                     "countSeries(srv.*.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "srv.web2.cpu"}, {"aggregatedBy", "count"}},
                     {1.0, 1.0, 1.0, N, 1.0, 1.0}},
                });
}

TEST(RenderEvalOracle, HighestCurrent) {
  expect_render(
      "highestCurrent(srv.*.cpu,2)", 1000, 1060, 0.0,
      {
          {"srv.db1.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.db1.cpu"}}, {32.0, 34.5, 37.0, 39.5, 42.0, N}},
          {"srv.web2.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.web2.cpu"}}, {36.0, 36.5, 37.0, N, 38.0, 38.5}},
      });
  expect_render("highestCurrent(srv.*.cpu,0)", 1000, 1060, 0.0, {});
}

TEST(RenderEvalOracle, HighestAverage) {
  expect_render(
      "highestAverage(srv.*.cpu,1)", 1000, 1060, 0.0,
      {
          {"srv.web2.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.web2.cpu"}}, {36.0, 36.5, 37.0, N, 38.0, 38.5}},
      });
  expect_render(
      "highestAverage(srv.*.cpu,-1)", 1000, 1060, 0.0,
      {
          {"srv.web2.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.web2.cpu"}}, {36.0, 36.5, 37.0, N, 38.0, 38.5}},
          {"srv.db1.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.db1.cpu"}}, {32.0, 34.5, 37.0, 39.5, 42.0, N}},
      });
  expect_render(
      "highestAverage(srv.*.cpu,10)", 1000, 1060, 0.0,
      {
          {"srv.web2.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.web2.cpu"}}, {36.0, 36.5, 37.0, N, 38.0, 38.5}},
          {"srv.db1.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.db1.cpu"}}, {32.0, 34.5, 37.0, 39.5, 42.0, N}},
          {"srv.web1.cpu", "srv.*.cpu", 1010, 1070, 10, {{"name", "srv.web1.cpu"}}, {43.5, 46.0, 0.0, 2.5, N, 7.5}},
      });
}

TEST(RenderEvalOracle, AsPercent) {
  expect_render("asPercent(srv.*.cpu)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))"}},
                     {28.699551569506728, 29.48717948717949, 50.0, 94.04761904761905, 52.5, N}},
                    {"asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))"}},
                     {39.01345291479821, 39.31623931623932, 0.0, 5.952380952380952, N, 16.304347826086957}},
                    {"asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))"}},
                     {32.28699551569507, 31.196581196581196, 50.0, N, 47.5, 83.69565217391305}},
                });
  expect_render("asPercent(srv.*.cpu,a.b.c)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.db1.cpu,a.b.c)",
                     "asPercent(srv.db1.cpu,a.b.c)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,a.b.c)"}},
                     {1066.6666666666665, 862.5, 740.0, N, 600.0, N}},
                    {"asPercent(srv.web1.cpu,a.b.c)",
                     "asPercent(srv.web1.cpu,a.b.c)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,a.b.c)"}},
                     {1450.0, 1150.0, 0.0, N, N, 93.75}},
                    {"asPercent(srv.web2.cpu,a.b.c)",
                     "asPercent(srv.web2.cpu,a.b.c)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,a.b.c)"}},
                     {1200.0, 912.5, 740.0, N, 542.8571428571429, 481.25}},
                });
  expect_render("asPercent(srv.*.cpu,100)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.db1.cpu,100)",
                     "asPercent(srv.db1.cpu,100)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,100)"}},
                     {32.0, 34.5, 37.0, 39.5, 42.0, N}},
                    {"asPercent(srv.web1.cpu,100)",
                     "asPercent(srv.web1.cpu,100)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,100)"}},
                     {43.5, 46.0, 0.0, 2.5, N, 7.5}},
                    {"asPercent(srv.web2.cpu,100)",
                     "asPercent(srv.web2.cpu,100)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,100)"}},
                     {36.0, 36.5, 37.0, N, 38.0, 38.5}},
                });
  expect_render("asPercent(a.*.c)", 1000, 1200, 0.0,
                {
                    {"asPercent(a.b.c,sumSeries(a.*.c))",
                     "asPercent(a.b.c,sumSeries(a.*.c))",
                     1010,
                     1210,
                     10,
                     {{"name", "asPercent(a.b.c,sumSeries(a.*.c))"}},
                     {28.421052631578945, 13.675213675213675, 16.69941060903733, 31.386861313868614}},
                    {"asPercent(a.d.c,sumSeries(a.*.c))",
                     "asPercent(a.d.c,sumSeries(a.*.c))",
                     1010,
                     1210,
                     10,
                     {{"name", "asPercent(a.d.c,sumSeries(a.*.c))"}},
                     {71.57894736842105, 30.769230769230766, 36.149312377210215, 65.69343065693431}},
                    {"asPercent(a.e.c,sumSeries(a.*.c))",
                     "asPercent(a.e.c,sumSeries(a.*.c))",
                     1020,
                     1260,
                     60,
                     {{"name", "asPercent(a.e.c,sumSeries(a.*.c))"}},
                     {N, 55.55555555555555, 47.151277013752456, 2.9197080291970803}},
                });
  expect_render("asPercent(a.*.c,100)", 1000, 1200, 0.0,
                {
                    {"asPercent(a.b.c,100)",
                     "asPercent(a.b.c,100)",
                     1010,
                     1210,
                     10,
                     {{"name", "asPercent(a.b.c,100)"}},
                     {5.4, 11.2, 17.0, 21.5, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N}},
                    {"asPercent(a.d.c,100)",
                     "asPercent(a.d.c,100)",
                     1010,
                     1210,
                     10,
                     {{"name", "asPercent(a.d.c,100)"}},
                     {13.600000000000001, 25.2, 36.8, 45.0, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N}},
                    {"asPercent(a.e.c,100)",
                     "asPercent(a.e.c,100)",
                     1020,
                     1260,
                     60,
                     {{"name", "asPercent(a.e.c,100)"}},
                     {N, 45.5, 48.0, 2.0, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N}},
                });
  expect_render("asPercent(srv.*.cpu,srv.*.cpu)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.db1.cpu,srv.db1.cpu)",
                     "asPercent(srv.db1.cpu,srv.db1.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,srv.db1.cpu)"}},
                     {100.0, 100.0, 100.0, 100.0, 100.0, N}},
                    {"asPercent(srv.web1.cpu,srv.web1.cpu)",
                     "asPercent(srv.web1.cpu,srv.web1.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,srv.web1.cpu)"}},
                     {100.0, 100.0, N, 100.0, N, 100.0}},
                    {"asPercent(srv.web2.cpu,srv.web2.cpu)",
                     "asPercent(srv.web2.cpu,srv.web2.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,srv.web2.cpu)"}},
                     {100.0, 100.0, 100.0, N, 100.0, 100.0}},
                });
  expect_render("asPercent(a.*.c,a.e.c)", 1000, 1200, 0.0,
                {
                    {"asPercent(a.b.c,a.e.c)",
                     "asPercent(a.b.c,a.e.c)",
                     1010,
                     1210,
                     10,
                     {{"name", "asPercent(a.b.c,a.e.c)"}},
                     {N, 24.615384615384613, 35.41666666666667, 1075.0}},
                    {"asPercent(a.d.c,a.e.c)",
                     "asPercent(a.d.c,a.e.c)",
                     1010,
                     1210,
                     10,
                     {{"name", "asPercent(a.d.c,a.e.c)"}},
                     {N, 55.38461538461539, 76.66666666666666, 2250.0}},
                    {"asPercent(a.e.c,a.e.c)",
                     "asPercent(a.e.c,a.e.c)",
                     1020,
                     1260,
                     60,
                     {{"name", "asPercent(a.e.c,a.e.c)"}},
                     {N, 100.0, 100.0, 100.0}},
                });
  expect_render("asPercent(srv.*.cpu,None,0)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))"}},
                     {28.699551569506728, 29.48717948717949, 50.0, 94.04761904761905, 52.5, N}},
                    {"asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))"}},
                     {39.01345291479821, 39.31623931623932, 0.0, 5.952380952380952, N, 16.304347826086957}},
                    {"asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))"}},
                     {32.28699551569507, 31.196581196581196, 50.0, N, 47.5, 83.69565217391305}},
                });
  expect_render("asPercent(a.*.c,None,2)", 1000, 1200, 0.0,
                {
                    {"asPercent(a.b.c,sumSeries(a.*.c))",
                     "asPercent(a.b.c,sumSeries(a.*.c))",
                     1010,
                     1250,
                     60,
                     {{"name", "asPercent(a.b.c,sumSeries(a.*.c))"}},
                     {28.421052631578945, 13.675213675213675, 16.69941060903733, 31.386861313868614}},
                    {"asPercent(a.d.c,sumSeries(a.*.c))",
                     "asPercent(a.d.c,sumSeries(a.*.c))",
                     1010,
                     1250,
                     60,
                     {{"name", "asPercent(a.d.c,sumSeries(a.*.c))"}},
                     {71.57894736842105, 30.769230769230766, 36.149312377210215, 65.69343065693431}},
                    {"asPercent(a.e.c,sumSeries(a.*.c))",
                     "asPercent(a.e.c,sumSeries(a.*.c))",
                     1010,
                     1250,
                     60,
                     {{"name", "asPercent(a.e.c,sumSeries(a.*.c))"}},
                     {N, 55.55555555555555, 47.151277013752456, 2.9197080291970803}},
                });
  expect_render("asPercent(srv.web*.cpu,srv.*1.cpu,1)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.web1.cpu,srv.web1.cpu)",
                     "asPercent(srv.web1.cpu,srv.web1.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,srv.web1.cpu)"}},
                     {100.0, 100.0, N, 100.0, N, 100.0}},
                    {"asPercent(srv.web2.cpu,MISSING)",
                     "asPercent(srv.web2.cpu,MISSING)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,MISSING)"}},
                     {N, N, N, N, N, N}},
                    {"asPercent(MISSING,srv.db1.cpu)",
                     "asPercent(MISSING,srv.db1.cpu)",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(MISSING,srv.db1.cpu)"}},
                     {N, N, N, N, N, N}},
                });
  expect_render("asPercent(srv.*.cpu,srv.*.cpu,0)", 1000, 1060, 0.0,
                {
                    {"asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.db1.cpu,sumSeries(srv.*.cpu))"}},
                     {28.699551569506728, 29.48717948717949, 50.0, 94.04761904761905, 52.5, N}},
                    {"asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web1.cpu,sumSeries(srv.*.cpu))"}},
                     {39.01345291479821, 39.31623931623932, 0.0, 5.952380952380952, N, 16.304347826086957}},
                    {"asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))",
                     "asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))",
                     1010,
                     1070,
                     10,
                     {{"name", "asPercent(srv.web2.cpu,sumSeries(srv.*.cpu))"}},
                     {32.28699551569507, 31.196581196581196, 50.0, N, 47.5, 83.69565217391305}},
                });
}

TEST(RenderEvalOracle, DivideSeries) {
  expect_render("divideSeries(srv.*.cpu,a.b.c)", 1000, 1060, 0.0,
                {
                    {"divideSeries(srv.db1.cpu,a.b.c)",
                     "divideSeries(srv.db1.cpu,a.b.c)",
                     1010,
                     1070,
                     10,
                     {{"name", "divideSeries(srv.db1.cpu,a.b.c)"}},
                     {10.666666666666666, 8.625, 7.4, N, 6.0, N}},
                    {"divideSeries(srv.web1.cpu,a.b.c)",
                     "divideSeries(srv.web1.cpu,a.b.c)",
                     1010,
                     1070,
                     10,
                     {{"name", "divideSeries(srv.web1.cpu,a.b.c)"}},
                     {14.5, 11.5, 0.0, N, N, 0.9375}},
                    {"divideSeries(srv.web2.cpu,a.b.c)",
                     "divideSeries(srv.web2.cpu,a.b.c)",
                     1010,
                     1070,
                     10,
                     {{"name", "divideSeries(srv.web2.cpu,a.b.c)"}},
                     {12.0, 9.125, 7.4, N, 5.428571428571429, 4.8125}},
                });
  expect_render("divideSeries(a.b.c,a.e.c)", 1000, 1200, 0.0,
                {
                    {"divideSeries(a.b.c,a.e.c)",
                     "divideSeries(a.b.c,a.e.c)",
                     1010,
                     1250,
                     60,
                     {{"name", "divideSeries(a.b.c,a.e.c)"}},
                     {N, 0.24615384615384614, 0.3541666666666667, 10.75}},
                });
  expect_render("divideSeries(a.b.c,nosuch.x)", 1000, 1040, 0.0,
                {
                    {"divideSeries(a.b.c,MISSING)",
                     "divideSeries(a.b.c,MISSING)",
                     1010,
                     1050,
                     10,
                     {{"name", "a.b.c"}},
                     {N, N, N, N}},
                });
}

TEST(RenderEvalOracle, KeepLastValue) {
  expect_render("keepLastValue(a.b.c)", 1000, 1200, 0.0,
                {
                    {"keepLastValue(a.b.c)",
                     "keepLastValue(a.b.c)",
                     1010,
                     1210,
                     10,
                     {{"name", "a.b.c"}},
                     {3.0,  4.0,  5.0,  5.0,  7.0,  8.0,  9.0,  10.0, 11.0, 12.0,
                      12.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 19.0, 21.0, 22.0}},
                });
  expect_render("keepLastValue(removeBelowValue(a.b.c,14),2)", 1000, 1300, 0.0,
                {
                    {"keepLastValue(removeBelowValue(a.b.c, 14))",
                     "keepLastValue(removeBelowValue(a.b.c, 14))",
                     1010,
                     1310,
                     10,
                     {{"name", "a.b.c"}},
                     {N,    N,    N,    N,    N,    N,    N,    N,    N,    N,    N,    14.0, 15.0, 16.0, 17.0,
                      18.0, 19.0, 19.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 26.0, 28.0, 29.0, 30.0, 31.0, 32.0}},
                });
  expect_render("keepLastValue(removeBelowValue(a.b.c,14),inf)", 1000, 1300, 0.0,
                {
                    {"keepLastValue(removeBelowValue(a.b.c, 14))",
                     "keepLastValue(removeBelowValue(a.b.c, 14))",
                     1010,
                     1310,
                     10,
                     {{"name", "a.b.c"}},
                     {N,    N,    N,    N,    N,    N,    N,    N,    N,    N,    N,    14.0, 15.0, 16.0, 17.0,
                      18.0, 19.0, 19.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 26.0, 28.0, 29.0, 30.0, 31.0, 32.0}},
                });
  expect_render("keepLastValue(removeBelowValue(a.b.c,14),0)", 1000, 1300, 0.0,
                {
                    {"keepLastValue(removeBelowValue(a.b.c, 14))",
                     "keepLastValue(removeBelowValue(a.b.c, 14))",
                     1010,
                     1310,
                     10,
                     {{"name", "a.b.c"}},
                     {N,    N,    N, N,    N,    N,    N,    N,    N,    N, N,    14.0, 15.0, 16.0, 17.0,
                      18.0, 19.0, N, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, N, 28.0, 29.0, 30.0, 31.0, 32.0}},
                });
}

TEST(RenderEvalOracle, TransformNull) {
  expect_render("transformNull(a.b.c)", 1000, 1100, 0.0,
                {
                    {"transformNull(a.b.c,0)",
                     "transformNull(a.b.c,0)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"transformNull", "0"}},
                     {3.0, 4.0, 5.0, 0.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0}},
                });
  expect_render("transformNull(a.b.c,-1)", 1000, 1100, 0.0,
                {
                    {"transformNull(a.b.c,-1)",
                     "transformNull(a.b.c,-1)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"transformNull", "-1.0"}},
                     {3.0, 4.0, 5.0, -1.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0}},
                });
  expect_render("transformNull(a.b.c,5,srv.web1.cpu)", 1000, 1100, 0.0,
                {
                    {"transformNull(a.b.c,5,referenceSeries)",
                     "transformNull(a.b.c,5,referenceSeries)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"transformNull", "5.0"}, {"referenceSeries", "1"}},
                     {3.0, 4.0, 5.0, 5.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0}},
                });
  expect_render("transformNull(removeBelowValue(a.b.c,10),2.5,removeBelowValue(srv.web1.cpu,40))", 1000, 1200, 0.0,
                {
                    {"transformNull(removeBelowValue(a.b.c, 10),2.5,referenceSeries)",
                     "transformNull(removeBelowValue(a.b.c, 10),2.5,referenceSeries)",
                     1010,
                     1210,
                     10,
                     {{"name", "a.b.c"}, {"transformNull", "2.5"}, {"referenceSeries", "1"}},
                     {2.5, 2.5, N, N, N, N, N, 10.0, 11.0, 12.0, N, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, N, 21.0, 22.0}},
                });
}

TEST(RenderEvalOracle, RemoveBelowValue) {
  expect_render("removeBelowValue(a.b.c,10)", 1000, 1100, 0.0,
                {
                    {"removeBelowValue(a.b.c, 10)",
                     "removeBelowValue(a.b.c, 10)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}},
                     {N, N, N, N, N, N, N, 10.0, 11.0, 12.0}},
                });
  expect_render("removeBelowValue(a.b.c,12.5)", 1000, 1100, 0.0,
                {
                    {"removeBelowValue(a.b.c, 12.5)",
                     "removeBelowValue(a.b.c, 12.5)",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}},
                     {N, N, N, N, N, N, N, N, N, N}},
                });
}

TEST(RenderEvalOracle, TimeShift) {
  expect_render("timeShift(a.b.c,\"1min\")", 1000, 1100, 0.0,
                {
                    {"timeShift(a.b.c, \"-1min\")",
                     "a.b.c",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"timeShift", "-1min"}},
                     {45.5, 46.5, N, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, N}},
                });
  expect_render("timeShift(a.b.c,\"+1min\",false)", 1000, 1100, 0.0,
                {
                    {"timeShift(a.b.c, \"+1min\")",
                     "a.b.c",
                     1010,
                     1110,
                     10,
                     {{"name", "a.b.c"}, {"timeShift", "+1min"}},
                     {9.0, 10.0, 11.0, 12.0, N, 14.0, 15.0, 16.0, 17.0, 18.0}},
                });
  expect_render("timeShift(a.e.c,\"-1h\")", 3000, 4000, 0.0,
                {
                    {"timeShift(a.e.c, \"-1h\")",
                     "a.e.c",
                     3060,
                     4020,
                     60,
                     {{"name", "a.e.c"}, {"timeShift", "-1h"}},
                     {26.5, 29.0, 31.5, 34.0, 36.5, N, 41.5, 44.0, 46.5, 0.5, 3.0, 5.5, N, 10.5, 13.0, 15.5}},
                });
  expect_render("timeShift(a.e.c,\"-90s\",false)", 3000, 3300, 0.0,
                {
                    {"timeShift(a.e.c, \"-90s\")",
                     "a.e.c",
                     3060,
                     3360,
                     60,
                     {{"name", "a.e.c"}, {"timeShift", "-90s"}},
                     {26.0, 28.5, 31.0, N, 36.0}},
                });
}

TEST(RenderEvalOracle, ConstantLine) {
  expect_render("constantLine(5)", 1000, 1100, 0.0,
                {
                    {"5.0", "constantLine(5.0)", 1000, 1100, 50, {{"name", "5.0"}}, {5.0, 5.0, 5.0}},
                });
  expect_render("constantLine(1.5)", 1000, 1101, 0.0,
                {
                    {"1.5", "constantLine(1.5)", 1000, 1101, 50, {{"name", "1.5"}}, {1.5, 1.5, 1.5}},
                });
  expect_render("constantLine(-2e-7)", 1000, 1004, 0.0,
                {
                    {"-2e-07", "constantLine(-2e-07)", 1000, 1004, 2, {{"name", "-2e-07"}}, {-2e-07, -2e-07, -2e-07}},
                });
}

TEST(RenderEvalOracle, Alias) {
  expect_render("alias(a.b.c,\"x y\")", 1000, 1030, 0.0,
                {
                    {"x y", "a.b.c", 1010, 1040, 10, {{"name", "a.b.c"}}, {3.0, 4.0, 5.0}},
                });
  expect_render("alias(sumSeries(srv.*.cpu),\"total\")", 1000, 1030, 0.0,
                {
                    {"total",
                     "sumSeries(srv.*.cpu)",
                     1010,
                     1040,
                     10,
                     {{"name", "sumSeries(srv.*.cpu)"}, {"aggregatedBy", "sum"}},
                     {111.5, 117.0, 74.0}},
                });
}

TEST(RenderEvalOracle, AliasByNode) {
  expect_render("aliasByNode(srv.*.cpu,1)", 1000, 1030, 0.0,
                {
                    {"db1", "srv.*.cpu", 1010, 1040, 10, {{"name", "srv.db1.cpu"}}, {32.0, 34.5, 37.0}},
                    {"web1", "srv.*.cpu", 1010, 1040, 10, {{"name", "srv.web1.cpu"}}, {43.5, 46.0, 0.0}},
                    {"web2", "srv.*.cpu", 1010, 1040, 10, {{"name", "srv.web2.cpu"}}, {36.0, 36.5, 37.0}},
                });
  expect_render("aliasByNode(scale(srv.*.cpu,2),1,-1)", 1000, 1030, 0.0,
                {
                    {"db1.cpu",
                     "scale(srv.db1.cpu,2)",
                     1010,
                     1040,
                     10,
                     {{"name", "srv.db1.cpu"}, {"scale", "2.0"}},
                     {64.0, 69.0, 74.0}},
                    {"web1.cpu",
                     "scale(srv.web1.cpu,2)",
                     1010,
                     1040,
                     10,
                     {{"name", "srv.web1.cpu"}, {"scale", "2.0"}},
                     {87.0, 92.0, 0.0}},
                    {"web2.cpu",
                     "scale(srv.web2.cpu,2)",
                     1010,
                     1040,
                     10,
                     {{"name", "srv.web2.cpu"}, {"scale", "2.0"}},
                     {72.0, 73.0, 74.0}},
                });
  expect_render("aliasByNode(a.b.c,5,\"name\")", 1000, 1030, 0.0,
                {
                    {".a.b.c", "a.b.c", 1010, 1040, 10, {{"name", "a.b.c"}}, {3.0, 4.0, 5.0}},
                });
}

TEST(RenderEvalOracle, AliasSub) {
  expect_render("aliasSub(srv.*.cpu,\"^srv\\.(\\w+)\\.cpu$\",\"host \\1\")", 1000, 1030, 0.0,
                {
                    {"host db1", "srv.*.cpu", 1010, 1040, 10, {{"name", "srv.db1.cpu"}}, {32.0, 34.5, 37.0}},
                    {"host web1", "srv.*.cpu", 1010, 1040, 10, {{"name", "srv.web1.cpu"}}, {43.5, 46.0, 0.0}},
                    {"host web2", "srv.*.cpu", 1010, 1040, 10, {{"name", "srv.web2.cpu"}}, {36.0, 36.5, 37.0}},
                });
  expect_render("aliasSub(a.b.c,\"b*\",\"-\")", 1000, 1030, 0.0,
                {
                    {"-a-.--.-c-", "a.b.c", 1010, 1040, 10, {{"name", "a.b.c"}}, {3.0, 4.0, 5.0}},
                });
  expect_render("aliasSub(srv.web1.cpu,\"(?P<h>web)(\\d)\",\"\\g<2>\\g<h>\")", 1000, 1030, 0.0,
                {
                    {"srv.1web.cpu", "srv.web1.cpu", 1010, 1040, 10, {{"name", "srv.web1.cpu"}}, {43.5, 46.0, 0.0}},
                });
  expect_render("aliasSub(a.b.c,\"\",\"|\")", 1000, 1030, 0.0,
                {
                    {"|a|.|b|.|c|", "a.b.c", 1010, 1040, 10, {{"name", "a.b.c"}}, {3.0, 4.0, 5.0}},
                });
  expect_render("aliasSub(a.b.c,\"[.]\",\"\\\\\")", 1000, 1030, 0.0,
                {
                    {"a\\b\\c", "a.b.c", 1010, 1040, 10, {{"name", "a.b.c"}}, {3.0, 4.0, 5.0}},
                });
  expect_render("aliasSub(a.b.c,\"(x)?b\",\"[\\1]\")", 1000, 1030, 0.0,
                {
                    {"a.[].c", "a.b.c", 1010, 1040, 10, {{"name", "a.b.c"}}, {3.0, 4.0, 5.0}},
                });
}

TEST(RenderEvalOracle, Pipes) {
  expect_render("a.b.c|scale(2)|alias(\"y\")", 1000, 1030, 0.0,
                {
                    {"y", "scale(a.b.c,2)", 1010, 1040, 10, {{"name", "a.b.c"}, {"scale", "2.0"}}, {6.0, 8.0, 10.0}},
                });
  expect_render(
      "sumSeries(movingAverage(srv.*.cpu,2))", 1000, 1060, 0.0,
      {
          {"sumSeries(movingAverage(srv.db1.cpu,2),movingAverage(srv.web1.cpu,2),movingAverage(srv.web2.cpu,2))",
           "sumSeries(movingAverage(srv.db1.cpu,2),movingAverage(srv.web1.cpu,2),movingAverage(srv.web2.cpu,2))",
           1010,
           1070,
           10,
           {{"movingAverage", "2"},
            {"name",
             "sumSeries(movingAverage(srv.db1.cpu,2),movingAverage(srv.web1.cpu,2),movingAverage(srv.web2.cpu,2))"},
            {"aggregatedBy", "sum"}},
           {104.5, 108.75, 114.25, 95.5, 76.5, 81.25}},
      });
  expect_render("movingAverage(timeShift(a.b.c,\"1min\"),2)", 1000, 1060, 0.0,
                {
                    {"movingAverage(timeShift(a.b.c, \"-1min\"),2)",
                     "movingAverage(timeShift(a.b.c, \"-1min\"),2)",
                     1010,
                     1070,
                     10,
                     {{"name", "a.b.c"}, {"timeShift", "-1min"}, {"movingAverage", "2"}},
                     {44.0, 45.0, 46.0, 46.5, 0.0, 0.5}},
                });
}

// --- by hand from the Python source ---

TEST(RenderEval, EveryFunctionInTheTableEvaluates) {
  const std::map<std::string_view, std::string> samples = {
      {"alias", "alias(a.b.c,'x')"},
      {"aliasByNode", "aliasByNode(a.b.c,1)"},
      {"aliasSub", "aliasSub(a.b.c,'b','x')"},
      {"asPercent", "asPercent(srv.*.cpu)"},
      {"averageSeries", "averageSeries(srv.*.cpu)"},
      {"constantLine", "constantLine(1)"},
      {"derivative", "derivative(a.b.c)"},
      {"divideSeries", "divideSeries(a.b.c,a.d.c)"},
      {"groupByNode", "groupByNode(srv.*.cpu,1)"},
      {"highestAverage", "highestAverage(srv.*.cpu,1)"},
      {"highestCurrent", "highestCurrent(srv.*.cpu,1)"},
      {"keepLastValue", "keepLastValue(a.b.c)"},
      {"maxSeries", "maxSeries(srv.*.cpu)"},
      {"minSeries", "minSeries(srv.*.cpu)"},
      {"movingAverage", "movingAverage(a.b.c,2)"},
      {"nonNegativeDerivative", "nonNegativeDerivative(a.b.c)"},
      {"offset", "offset(a.b.c,1)"},
      {"perSecond", "perSecond(a.b.c)"},
      {"removeBelowValue", "removeBelowValue(a.b.c,1)"},
      {"scale", "scale(a.b.c,1)"},
      {"sumSeries", "sumSeries(srv.*.cpu)"},
      {"summarize", "summarize(a.b.c,'1min')"},
      {"timeShift", "timeShift(a.b.c,'1min')"},
      {"transformNull", "transformNull(a.b.c)"},
  };
  for (const FunctionSpec& f : render_functions()) {
    auto it = samples.find(f.name);
    ASSERT_NE(it, samples.end()) << "no sample target for " << f.name;
    auto got = render(it->second, 1000, 1100);
    ASSERT_TRUE(got.has_value()) << it->second << ": " << got.error().message;
    EXPECT_FALSE(got->empty()) << it->second;
  }
}

// movingWindow(): previewSeconds = max step * windowSize, or the interval;
// the first argument is evaluated again with startTime - previewSeconds.
TEST(RenderEval, MovingAverageFetchesTheWindowBeforeTheRange) {
  FakeStore store;
  ASSERT_TRUE(render(store, "movingAverage(a.b.c,3)", 1000, 1100));
  ASSERT_TRUE(render(store, "movingAverage(a.*.c,'1min')", 1000, 1100));
  const std::vector<std::tuple<std::string, int64_t, int64_t>> want = {
      {"a.b.c", 1000, 1100}, {"a.b.c", 970, 1100}, {"a.*.c", 1000, 1100}, {"a.*.c", 940, 1100}};
  EXPECT_EQ(store.calls, want);
}

// timeShift(): a shift without a sign goes back; start and end move together.
TEST(RenderEval, TimeShiftFetchesTheShiftedRange) {
  FakeStore store;
  ASSERT_TRUE(render(store, "timeShift(a.b.c,'1h')", 10000, 10100));
  ASSERT_TRUE(render(store, "timeShift(a.b.c,'+1d')", 10000, 10100));
  const std::vector<std::tuple<std::string, int64_t, int64_t>> want = {
      {"a.b.c", 10000, 10100}, {"a.b.c", 6400, 6500}, {"a.b.c", 10000, 10100}, {"a.b.c", 96400, 96500}};
  EXPECT_EQ(store.calls, want);
}

TEST(RenderEval, BadArgumentsAre400NamingTheFunction) {
  struct Case {
    const char* target;
    const char* message_start;
  };
  const Case cases[] = {
      {"divideSeries(a.b.c,srv.*.cpu)", "divideSeries: second argument must reference exactly 1 series (got 3)"},
      {"asPercent(srv.web*.cpu,srv.*.cpu)", "asPercent: second argument must be missing"},
      {"asPercent(srv.*.cpu,100,0)", "asPercent: total must be None or a seriesList"},
      {"summarize(a.b.c,'-1min')", "summarize: interval '-1min' must be positive"},
      {"summarize(a.b.c,'0s')", "summarize: interval '0s' must be positive"},
      {"movingAverage(a.b.c,-2)", "movingAverage: windowSize must not be negative"},
      {"timeShift(a.b.c,'')", "timeShift: "},
      {"aliasSub(a.b.c,'(','x')", "aliasSub: invalid regular expression '('"},
      {"aliasSub(a.b.c,'(?<=a)b','x')", "aliasSub: invalid regular expression"},
      {"aliasSub(a.b.c,'b','\\q')", "aliasSub: invalid replacement '\\q': bad escape \\q"},
      {"aliasSub(a.b.c,'(b)','\\2')", "aliasSub: invalid replacement '\\2': invalid group reference 2"},
      {"aliasSub(a.b.c,'b','\\g<x>')", "aliasSub: invalid replacement"},
  };
  for (const Case& c : cases) {
    const Error e = render_error(c.target);
    EXPECT_EQ(e.code, 400) << c.target << ": " << e.message;
    EXPECT_TRUE(e.message.starts_with(c.message_start)) << c.target << ": " << e.message;
  }
  const Error line = render_error("constantLine(1)", 1000, 1001);  // graphite: step 0, fails later
  EXPECT_EQ(line.code, 400);
  EXPECT_TRUE(line.message.starts_with("constantLine: ")) << line.message;
}

TEST(RenderEval, FetchErrorsPassThrough) {
  auto e = parse_target("sumSeries(a.*)");
  ASSERT_TRUE(e);
  auto b = bind(*e);
  ASSERT_TRUE(b);
  auto got = evaluate(
      *e, *b, RenderContext{1000, 1100, 1100},
      [](std::string_view, int64_t, int64_t) -> Result<std::vector<Series>> { return fail("store unavailable", 503); });
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, 503);
  EXPECT_EQ(got.error().message, "store unavailable");
}

// Each movingAverage evaluates its argument twice, so nesting doubles the
// work (as in graphite); past kMaxEvaluations nodes the target is refused.
TEST(RenderEval, ReEvaluationBlowUpIsRefused) {
  std::string target = "a.b.c";
  for (int i = 0; i < 20; ++i) target = "movingAverage(" + target + ",1)";
  const Error e = render_error(target);
  EXPECT_EQ(e.code, 400);
  EXPECT_NE(e.message.find("too many evaluations"), std::string::npos) << e.message;
}

// graphite-web 1.1.8 raises TypeError here (None > maxValue in Python 3) on
// the first null point; Stele treats a null as neither above maxValue nor
// below minValue, so with no counter wrap the result equals the plain one.
TEST(RenderEval, NonNegativeDerivativeLimitsSkipNulls) {
  auto limited = render("nonNegativeDerivative(a.b.c,100,0)", 1000, 1200);
  auto plain = render("nonNegativeDerivative(a.b.c)", 1000, 1200);
  ASSERT_TRUE(limited && plain);
  ASSERT_EQ(limited->size(), 1u);
  expect_same_values(limited->front().values, plain->front().values);
  EXPECT_EQ(limited->front().name, "nonNegativeDerivative(a.b.c)");
}

// asPercent with nodes and no total matching: graphite-web 1.1.8 fails with
// UnboundLocalError (no normalize() ran before the MISSING series); Stele
// gives each MISSING series its own start, end and step, all None.
TEST(RenderEval, AsPercentMissingTotalsBeforeAnyNormalize) {
  auto got = render("asPercent(srv.web*.cpu,nosuch.*,1)", 1000, 1060);
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].name, "asPercent(srv.web1.cpu,MISSING)");
  EXPECT_EQ((*got)[1].name, "asPercent(srv.web2.cpu,MISSING)");
  for (const Series& s : *got) {
    EXPECT_EQ(s.start, 1010);
    EXPECT_EQ(s.end, 1070);
    EXPECT_EQ(s.step, 10);
    expect_same_values(s.values, {N, N, N, N, N, N});
  }
}

// datalib.py fetchData(): series sorted by name, one per name (the one with
// fewer None), pathExpression the pattern, xFilesFactor the request's;
// TimeSeries() parses ";tag=value" segments of a name into tags.
TEST(RenderEval, FetchedSeriesAreSortedDeduplicatedAndTagged) {
  auto e = parse_target("x.*");
  ASSERT_TRUE(e);
  auto b = bind(*e);
  ASSERT_TRUE(b);
  auto fetch = [](std::string_view, int64_t, int64_t) -> Result<std::vector<Series>> {
    std::vector<Series> out(3);
    out[0].name = "x.b;host=h1;dc=d", out[0].values = {1, 2};
    out[1].name = "x.a", out[1].values = {N, N};
    out[2].name = "x.a", out[2].values = {N, 3};
    for (Series& s : out) s.start = 100, s.end = 120, s.step = 10, s.x_files_factor = 0.9;
    return out;
  };
  RenderContext ctx{1000, 1100, 1100};
  ctx.x_files_factor = 0.25;
  auto got = evaluate(*e, *b, ctx, fetch);
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].name, "x.a");
  expect_same_values((*got)[0].values, {N, 3});
  EXPECT_EQ((*got)[1].tags, (std::map<std::string, std::string>{{"dc", "d"}, {"host", "h1"}, {"name", "x.b"}}));
  for (const Series& s : *got) {
    EXPECT_EQ(s.path_expression, "x.*");
    EXPECT_EQ(s.x_files_factor, 0.25);
  }
}

// sumSeries over 1,000 series of 360 points: one pass over the columns.
TEST(RenderEval, SumSeriesOverManySeries) {
  FakeStore store;
  store.metrics.clear();
  for (int i = 0; i < 1000; ++i) store.metrics["big.m" + std::to_string(i)] = 10;
  auto e = parse_target("sumSeries(big.*)");
  auto b = bind(*e);
  auto fetched = store.fetch("big.*", 0, 3600);
  ASSERT_TRUE(fetched && fetched->size() == 1000 && fetched->front().values.size() == 360);
  const auto t0 = std::chrono::steady_clock::now();
  auto got = evaluate(*e, *b, RenderContext{0, 3600, 3600}, store.fn());
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("evaluate_ms", std::to_string(ms));
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 1u);
  ASSERT_EQ(got->front().values.size(), 360u);
  for (size_t p : {size_t(0), size_t(359)}) {
    double sum = 0;
    for (const Series& s : *fetched)
      if (!std::isnan(s.values[p])) sum += s.values[p];
    EXPECT_EQ(got->front().values[p], sum);
  }
}

}  // namespace
}  // namespace stele::metrics
