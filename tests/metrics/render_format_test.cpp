// The render output formats against graphite-web 1.1.8.
//
// How the expectations were obtained: graphite-web 1.1.8's own
// render/views.py (renderViewJson, renderViewCsv, renderViewRaw; Debian's
// graphite-web 1.1.8 package, Python 3.11, stub django modules) was run on
// TimeSeries built exactly like data() and long_data() below (tags given in
// the order Stele writes them: "name" first, then sorted), with the
// requestOptions each test names; the response bodies were pasted here
// unchanged. python_float_repr / python_percent_g expectations are Python's
// repr(v) and '%g' % v.
#include "metrics/render_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "metrics/render_eval.h"

namespace stele::metrics {
namespace {

constexpr double N = std::numeric_limits<double>::quiet_NaN();

Series make(std::string name, int64_t start, int64_t end, int64_t step, std::vector<double> values,
            std::map<std::string, std::string> tags = {}) {
  Series s;
  s.tags = tags.empty() ? std::map<std::string, std::string>{{"name", name}} : std::move(tags);
  s.name = std::move(name);
  s.start = start, s.end = end, s.step = step;
  s.values = std::move(values);
  return s;
}

const std::string kOddName = "x,\"y\"\xc3\xa9\xf0\x9f\x98\x80\t";  // x,"y" e-acute, U+1F600, tab

std::vector<Series> data() {
  return {
      make("a.b", 100, 160, 10, {1.0, N, 2.5, INFINITY, -INFINITY, 1e-05}),
      make(kOddName, 100, 130, 10, {0.1, 1e16, 123456789.0}, {{"name", kOddName}, {"a", "1"}, {"k", "NaN, v"}}),
      make("e", 100, 100, 10, {}),
      make("5.0", 1000, 1100, 50, {5.0, 5.0, 5.0}),
      make("nulls", 100, 120, 10, {N, N}),
  };
}

// [None if i % 4 == 1 else i * 1.5 for i in range(30)] every 10 s, and a
// 60 s series, consolidation average, xFilesFactor 0.
std::vector<Series> long_data() {
  std::vector<double> v;
  for (int i = 0; i < 30; ++i) v.push_back(i % 4 == 1 ? N : double(i) * 1.5);
  return {make("m", 1005, 1305, 10, v), make("n", 1020, 1320, 60, {1.0, N, 3.0, 4.0, 5.0})};
}

TEST(RenderFormat, JsonLikeGraphite) {
  EXPECT_EQ(
      format_json(data()),
      "[{\"target\": \"a.b\", \"tags\": {\"name\": \"a.b\"}, \"datapoints\": [[1.0, 100], [null, 110], [2.5, 120], "
      "[1e9999, 130], [-1e9999, 140], [1e-05, 150]]}, {\"target\": \"x,\\\"y\\\"\\u00e9\\ud83d\\ude00\\t\", \"tags\": "
      "{\"name\": \"x,\\\"y\\\"\\u00e9\\ud83d\\ude00\\t\", \"a\": \"1\", \"k\": \"null, v\"}, \"datapoints\": [[0.1, "
      "100], [1e+16, 110], [123456789.0, 120]]}, {\"target\": \"e\", \"tags\": {\"name\": \"e\"}, \"datapoints\": []}, "
      "{\"target\": \"5.0\", \"tags\": {\"name\": \"5.0\"}, \"datapoints\": [[5.0, 1000], [5.0, 1050], [5.0, 1100]]}, "
      "{\"target\": \"nulls\", \"tags\": {\"name\": \"nulls\"}, \"datapoints\": [[null, 100], [null, 110]]}]");
}

TEST(RenderFormat, JsonPretty) {
  JsonOptions o;
  o.pretty = true;
  auto d = data();
  d.resize(2);
  EXPECT_EQ(format_json(d, o),
            "[\n  {\n    \"target\": \"a.b\",\n    \"tags\": {\n      \"name\": \"a.b\"\n    },\n    \"datapoints\": "
            "[\n      [\n        1.0,\n        100\n      ],\n      [\n        null,\n        110\n      ],\n      [\n "
            "       2.5,\n        120\n      ],\n      [\n        1e9999,\n        130\n      ],\n      [\n        "
            "-1e9999,\n        140\n      ],\n      [\n        1e-05,\n        150\n      ]\n    ]\n  },\n  {\n    "
            "\"target\": \"x,\\\"y\\\"\\u00e9\\ud83d\\ude00\\t\",\n    \"tags\": {\n      \"name\": "
            "\"x,\\\"y\\\"\\u00e9\\ud83d\\ude00\\t\",\n      \"a\": \"1\",\n      \"k\": \"null, v\"\n    },\n    "
            "\"datapoints\": [\n      [\n        0.1,\n        100\n      ],\n      [\n        1e+16,\n        110\n   "
            "   ],\n      [\n        123456789.0,\n        120\n      ]\n    ]\n  }\n]");
}

TEST(RenderFormat, JsonNoNullPointsDropsNullsAndEmptySeries) {
  JsonOptions o;
  o.no_null_points = true;
  EXPECT_EQ(format_json(data(), o),
            "[{\"target\": \"a.b\", \"tags\": {\"name\": \"a.b\"}, \"datapoints\": [[1.0, 100], [2.5, 120], [1e9999, "
            "130], [-1e9999, 140], [1e-05, 150]]}, {\"target\": \"x,\\\"y\\\"\\u00e9\\ud83d\\ude00\\t\", \"tags\": "
            "{\"name\": \"x,\\\"y\\\"\\u00e9\\ud83d\\ude00\\t\", \"a\": \"1\", \"k\": \"null, v\"}, \"datapoints\": "
            "[[0.1, 100], [1e+16, 110], [123456789.0, 120]]}, {\"target\": \"5.0\", \"tags\": {\"name\": \"5.0\"}, "
            "\"datapoints\": [[5.0, 1000], [5.0, 1050], [5.0, 1100]]}]");
}

TEST(RenderFormat, JsonpWrapsTheJson) {
  JsonOptions o;
  o.jsonp = "cb";
  EXPECT_EQ(format_json({data()[3]}, o),
            "cb([{\"target\": \"5.0\", \"tags\": {\"name\": \"5.0\"}, \"datapoints\": [[5.0, 1000], [5.0, 1050], [5.0, "
            "1100]]}])");
  EXPECT_EQ(render_content_type(RenderFormat::kJson, true), "text/javascript");
}

// views.py: `if any(data)` -- no series with a value gives an empty list.
TEST(RenderFormat, JsonWithoutAnyValueIsAnEmptyList) {
  EXPECT_EQ(format_json({make("e", 100, 100, 10, {})}), "[]");
  EXPECT_EQ(format_json({}), "[]");
}

// requestOptions['maxDataPoints'] = 1, 4, 7, 100.
TEST(RenderFormat, JsonMaxDataPointsConsolidatesLikeGraphite) {
  {
    auto d = long_data();
    consolidate_for_max_points(d, 1);
    EXPECT_EQ(format_json(d),
              "[{\"target\": \"m\", \"tags\": {\"name\": \"m\"}, \"datapoints\": [[21.477272727272727, 1005]]}, "
              "{\"target\": \"n\", \"tags\": {\"name\": \"n\"}, \"datapoints\": [[3.25, 1020]]}]");
  }
  {
    auto d = long_data();
    consolidate_for_max_points(d, 4);
    EXPECT_EQ(format_json(d),
              "[{\"target\": \"m\", \"tags\": {\"name\": \"m\"}, \"datapoints\": [[9.5, 1045], [21.5, 1125], [33.5, "
              "1205], [41.25, 1285]]}, {\"target\": \"n\", \"tags\": {\"name\": \"n\"}, \"datapoints\": [[1.0, 1080], "
              "[3.5, 1200], [5.0, 1320]]}]");
  }
  {
    auto d = long_data();
    consolidate_for_max_points(d, 7);
    EXPECT_EQ(format_json(d),
              "[{\"target\": \"m\", \"tags\": {\"name\": \"m\"}, \"datapoints\": [[9.375, 1055], [16.5, 1105], "
              "[23.625, 1155], [31.5, 1205], [39.375, 1255], [null, 1305]]}, {\"target\": \"n\", \"tags\": {\"name\": "
              "\"n\"}, \"datapoints\": [[1.0, 1020], [null, 1080], [3.0, 1140], [4.0, 1200], [5.0, 1260]]}]");
  }
  {
    auto d = long_data();
    consolidate_for_max_points(d, 100);
    EXPECT_EQ(
        format_json(d),
        "[{\"target\": \"m\", \"tags\": {\"name\": \"m\"}, \"datapoints\": [[0.0, 1005], [null, 1015], [3.0, 1025], "
        "[4.5, 1035], [6.0, 1045], [null, 1055], [9.0, 1065], [10.5, 1075], [12.0, 1085], [null, 1095], [15.0, 1105], "
        "[16.5, 1115], [18.0, 1125], [null, 1135], [21.0, 1145], [22.5, 1155], [24.0, 1165], [null, 1175], [27.0, "
        "1185], [28.5, 1195], [30.0, 1205], [null, 1215], [33.0, 1225], [34.5, 1235], [36.0, 1245], [null, 1255], "
        "[39.0, 1265], [40.5, 1275], [42.0, 1285], [null, 1295]]}, {\"target\": \"n\", \"tags\": {\"name\": \"n\"}, "
        "\"datapoints\": [[1.0, 1020], [null, 1080], [3.0, 1140], [4.0, 1200], [5.0, 1260]]}]");
  }
}

// By hand: graphite divides by zero for maxDataPoints=0 and fails on an
// empty series with maxDataPoints=1; Stele leaves such series alone.
TEST(RenderFormat, MaxDataPointsEdgeCasesLeaveSeriesAlone) {
  auto d = long_data();
  consolidate_for_max_points(d, 0);
  EXPECT_EQ(format_json(d), format_json(long_data()));
  std::vector<Series> mixed = {make("e", 1000, 1000, 10, {}), make("n", 1020, 1080, 60, {1.0})};
  consolidate_for_max_points(mixed, 1);
  EXPECT_TRUE(mixed[0].values.empty());
  EXPECT_EQ(mixed[1].values, std::vector<double>{1.0});
}

TEST(RenderFormat, CsvLikeGraphite) {
  EXPECT_EQ(
      format_csv(data(), TimeZone::kUtc),
      "a.b,1970-01-01 00:01:40,1.0\r\na.b,1970-01-01 00:01:50,\r\na.b,1970-01-01 00:02:00,2.5\r\na.b,1970-01-01 "
      "00:02:10,inf\r\na.b,1970-01-01 00:02:20,-inf\r\na.b,1970-01-01 00:02:30,1e-05\r\n\"x,\"\"y\"\"\xc3"
      "\xa9"
      "\xf0"
      "\x9f"
      "\x98"
      "\x80"
      "\x09"
      "\",1970-01-01 00:01:40,0.1\r\n\"x,\"\"y\"\"\xc3"
      "\xa9"
      "\xf0"
      "\x9f"
      "\x98"
      "\x80"
      "\x09"
      "\",1970-01-01 00:01:50,1e+16\r\n\"x,\"\"y\"\"\xc3"
      "\xa9"
      "\xf0"
      "\x9f"
      "\x98"
      "\x80"
      "\x09"
      "\",1970-01-01 00:02:00,123456789.0\r\n5.0,1970-01-01 00:16:40,5.0\r\n5.0,1970-01-01 "
      "00:17:30,5.0\r\n5.0,1970-01-01 00:18:20,5.0\r\nnulls,1970-01-01 00:01:40,\r\nnulls,1970-01-01 00:01:50,\r\n");
}

TEST(RenderFormat, RawLikeGraphite) {
  EXPECT_EQ(
      format_raw(data()),
      "a.b,100,160,10|1.0,None,2.5,inf,-inf,1e-05\nx,\"y\"\xc3"
      "\xa9"
      "\xf0"
      "\x9f"
      "\x98"
      "\x80"
      "\x09"
      ",100,130,10|0.1,1e+16,123456789.0\ne,100,100,10|\n5.0,1000,1100,50|5.0,5.0,5.0\nnulls,100,120,10|None,None\n");
}

TEST(RenderFormat, PythonNumberSpellings) {
  struct Case {
    double v;
    const char* repr;
    const char* g;
  };
  const Case cases[] = {
      {1.0, "1.0", "1"},
      {0.1, "0.1", "0.1"},
      {1e-05, "1e-05", "1e-05"},
      {0.0001, "0.0001", "0.0001"},
      {1e+16, "1e+16", "1e+16"},
      {1234567890123456.0, "1234567890123456.0", "1.23457e+15"},
      {1.2345678901234568e+16, "1.2345678901234568e+16", "1.23457e+16"},
      {-0.0, "-0.0", "-0"},
      {5e-324, "5e-324", "4.94066e-324"},
      {1.7976931348623157e+308, "1.7976931348623157e+308", "1.79769e+308"},
      {123.456, "123.456", "123.456"},
      {2.5e-07, "2.5e-07", "2.5e-07"},
      {100.0, "100.0", "100"},
      {1e+22, "1e+22", "1e+22"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(python_float_repr(c.v), c.repr);
    EXPECT_EQ(python_percent_g(c.v), c.g);
  }
  EXPECT_EQ(python_float_repr(INFINITY), "inf");
  EXPECT_EQ(python_float_repr(-INFINITY), "-inf");
  EXPECT_EQ(python_float_repr(N), "nan");
  EXPECT_EQ(python_percent_g(-N), "nan");
  EXPECT_EQ(python_number_str(5, true), "5");
  EXPECT_EQ(python_number_str(5, false), "5.0");
}

TEST(RenderFormat, FormatNames) {
  EXPECT_EQ(parse_render_format("json"), RenderFormat::kJson);
  EXPECT_EQ(parse_render_format("csv"), RenderFormat::kCsv);
  EXPECT_EQ(parse_render_format("raw"), RenderFormat::kRaw);
  EXPECT_EQ(parse_render_format("png"), std::nullopt);
  EXPECT_EQ(render_content_type(RenderFormat::kCsv), "text/csv");
  EXPECT_EQ(render_content_type(RenderFormat::kRaw), "text/plain");
}

}  // namespace
}  // namespace stele::metrics
