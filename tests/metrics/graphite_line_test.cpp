// Graphite plaintext input: carbon's line rules (lib/carbon/protocols.py
// MetricLineReceiver / MetricDatagramReceiver and MetricReceiver.
// metricReceived), Python float() forms, streams split anywhere, too-long
// lines, bad-line messages, and the rate limiter for their log lines.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "metrics/graphite_line.h"

using namespace stele::metrics;

namespace {

constexpr int64_t kNow = 1'700'000'123;

struct Got {
  std::string name;
  double value;
  int64_t time_s;
  bool operator==(const Got& o) const {
    return name == o.name && time_s == o.time_s && (value == o.value || (std::isnan(value) && std::isnan(o.value)));
  }
};

struct Bad {
  LineStatus reason;
  uint64_t line_no;
  std::string message;
  bool operator==(const Bad&) const = default;
};

struct Sink {
  std::vector<Got> points;
  std::vector<Bad> bad;
  auto on_point() {
    return [this](const Point& p) { points.push_back({std::string(p.name), p.value, p.time_s}); };
  }
  auto on_bad() {
    return [this](const BadLine& b) { bad.push_back({b.reason, b.line_no, b.message()}); };
  }
};

Sink feed_all(std::string_view data, size_t max_line = LineParser::kDefaultMaxLine) {
  Sink s;
  LineParser p(max_line);
  p.feed(data, kNow, s.on_point(), s.on_bad());
  p.finish(kNow, s.on_point(), s.on_bad());
  return s;
}

LineStatus status_of(std::string_view line) {
  Point p;
  return scan_line(line, kNow, p);
}

Point point_of(std::string_view line) {
  Point p;
  EXPECT_EQ(scan_line(line, kNow, p), LineStatus::kPoint) << line;
  return p;
}

double value_of(std::string_view field) {
  double v = -12345;
  EXPECT_TRUE(parse_carbon_float(field, v)) << field;
  return v;
}

}  // namespace

TEST(GraphiteLine, ParsesTheThreeFields) {
  Point p = point_of("servers.web01.cpu 42.5 1700000000");
  EXPECT_EQ(p.name, "servers.web01.cpu");
  EXPECT_EQ(p.value, 42.5);
  EXPECT_EQ(p.time_s, 1700000000);
}

TEST(GraphiteLine, SplitsOnAnyRunOfWhitespaceLikePythonSplit) {
  // carbon: line.strip().split(): leading/trailing blanks, tabs, several
  // spaces, CR (from CR LF) and the ASCII separators \x1c-\x1f all split.
  EXPECT_EQ(point_of("  a.b \t 1   2 \r").name, "a.b");
  EXPECT_EQ(point_of("a\v1\f2").value, 1);
  EXPECT_EQ(point_of(std::string("a\x1c" "1\x1f" "2")).time_s, 2);
}

TEST(GraphiteLine, NeedsExactlyThreeFields) {
  EXPECT_EQ(status_of("a.b 1"), LineStatus::kFieldCount);
  EXPECT_EQ(status_of("a.b"), LineStatus::kFieldCount);
  EXPECT_EQ(status_of("a.b 1 2 3"), LineStatus::kFieldCount);
  // "metric value timestamp" with a space inside the name is four fields.
  EXPECT_EQ(status_of("my metric 1 2"), LineStatus::kFieldCount);
  auto r = parse_line("a.b 1", kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "expected 3 fields (path value timestamp), got 2: \"a.b 1\"");
}

TEST(GraphiteLine, ValueAcceptsWhatPythonFloatAccepts) {
  EXPECT_EQ(value_of("1"), 1);
  EXPECT_EQ(value_of("-2.5"), -2.5);
  EXPECT_EQ(value_of("+2"), 2);
  EXPECT_EQ(value_of(".5"), 0.5);
  EXPECT_EQ(value_of("5."), 5);
  EXPECT_EQ(value_of("1e3"), 1000);
  EXPECT_EQ(value_of("1E+03"), 1000);
  EXPECT_EQ(value_of("-1.5e-2"), -0.015);
  EXPECT_EQ(value_of("007"), 7);
  EXPECT_EQ(value_of("1_000.2_5"), 1000.25);  // PEP 515 underscores
  EXPECT_EQ(value_of("inf"), INFINITY);
  EXPECT_EQ(value_of("-Infinity"), -INFINITY);
  EXPECT_EQ(value_of("+INF"), INFINITY);
  EXPECT_TRUE(std::isnan(value_of("nan")));
  EXPECT_TRUE(std::isnan(value_of("-NaN")));
  // Out of range: Python gives inf / 0, not an error.
  EXPECT_EQ(value_of("1e400"), INFINITY);
  EXPECT_EQ(value_of("-1e400"), -INFINITY);
  EXPECT_EQ(value_of("1e-400"), 0.0);
  EXPECT_EQ(value_of("0.000000000000000000000000000000000000000000000000001e-300"), 0.0);
  EXPECT_EQ(value_of(std::string(400, '9')), INFINITY);
}

TEST(GraphiteLine, ValueRefusesWhatPythonFloatRefuses) {
  double v;
  for (const char* bad : {"", "+", "-", ".", "e5", "1e", "1e+", "0x10", "1,5", "abc", "nan(1)", "infin", "--1",
                          "+-1", "-+1", "1__0", "_1", "1_", "1_.5", "1._5", "1_e5", "1e_5", "1.5.5", "1 "})
    EXPECT_FALSE(parse_carbon_float(bad, v)) << bad;
  EXPECT_EQ(status_of("a.b abc 1"), LineStatus::kBadValue);
  EXPECT_EQ(parse_line("a.b 12,5 1", kNow).error().message, "value \"12,5\" is not a number: \"a.b 12,5 1\"");
}

TEST(GraphiteLine, NaNValuesAreDroppedNotBad) {
  // carbon MetricReceiver.metricReceived: `if datapoint[1] != datapoint[1]: return`
  // -- silently, after the line parsed.
  EXPECT_EQ(status_of("a.b nan 1"), LineStatus::kNaN);
  EXPECT_EQ(status_of("a.b NaN -1"), LineStatus::kNaN);
  // The NaN filter runs before int(timestamp), so an infinite timestamp does
  // not make a NaN line bad...
  EXPECT_EQ(status_of("a.b nan inf"), LineStatus::kNaN);
  // ...but a timestamp float() refuses does (it is inside carbon's try).
  EXPECT_EQ(status_of("a.b nan soon"), LineStatus::kBadTimestamp);

  LineParser p;
  Sink s;
  p.feed("a 1 1\nb nan 2\nc 3 3\n", kNow, s.on_point(), s.on_bad());
  EXPECT_EQ(s.points.size(), 2u);
  EXPECT_TRUE(s.bad.empty());
  EXPECT_EQ(p.counters().nan_dropped(), 1u);
  EXPECT_EQ(p.counters().bad(), 0u);
  EXPECT_FALSE(parse_line("b nan 2", kNow));
}

TEST(GraphiteLine, InfiniteValuesAreKept) {
  EXPECT_EQ(point_of("a inf 1").value, INFINITY);
  EXPECT_EQ(point_of("a -inf 1").value, -INFINITY);
}

TEST(GraphiteLine, TimestampIsFloatSecondsTruncated) {
  EXPECT_EQ(point_of("a 1 1700000000.9").time_s, 1700000000);
  EXPECT_EQ(point_of("a 1 1.7e9").time_s, 1700000000);
  EXPECT_EQ(point_of("a 1 0").time_s, 0);
  EXPECT_EQ(point_of("a 1 -0.5").time_s, 0);   // int(-0.5) == 0: not "now"
  EXPECT_EQ(point_of("a 1 -5").time_s, -5);    // kept; retention decides
  EXPECT_EQ(point_of("a 1 +17").time_s, 17);
}

TEST(GraphiteLine, MinusOneMeansNow) {
  // carbon issue #54: `if int(datapoint[0]) == -1: datapoint = (time.time(), ...)`
  EXPECT_EQ(point_of("a 1 -1").time_s, kNow);
  EXPECT_EQ(point_of("a 1 -1.0").time_s, kNow);
  EXPECT_EQ(point_of("a 1 -1.9").time_s, kNow);  // int(-1.9) == -1
  EXPECT_EQ(point_of("a 1 -2").time_s, -2);
}

TEST(GraphiteLine, BadTimestamps) {
  EXPECT_EQ(status_of("a 1 N"), LineStatus::kBadTimestamp);  // logstash's "N" is not carbon's
  EXPECT_EQ(status_of("a 1 nan"), LineStatus::kBadTimestamp);
  EXPECT_EQ(status_of("a 1 -inf"), LineStatus::kBadTimestamp);
  EXPECT_EQ(status_of("a 1 1e19"), LineStatus::kBadTimestamp);
  EXPECT_EQ(status_of("a 1 2024-01-01"), LineStatus::kBadTimestamp);
  EXPECT_EQ(parse_line("a 1 inf", kNow).error().message, "timestamp \"inf\" is not finite: \"a 1 inf\"");
  EXPECT_EQ(parse_line("a 1 1e19", kNow).error().message, "timestamp \"1e19\" is out of range: \"a 1 1e19\"");
  EXPECT_EQ(point_of("a 1 9223372036854775000").time_s, 9223372036854774784);  // float precision, as Python
}

TEST(GraphiteLine, NamesWithEmptyNodesAreBad) {
  EXPECT_EQ(status_of("a..b 1 2"), LineStatus::kBadName);
  EXPECT_EQ(status_of(".a.b 1 2"), LineStatus::kBadName);
  EXPECT_EQ(status_of("a.b. 1 2"), LineStatus::kBadName);
  EXPECT_EQ(status_of(". 1 2"), LineStatus::kBadName);
  EXPECT_EQ(*metric_name_error("a..b"),
            "metric path \"a..b\" has an empty node at byte 2 (nodes are separated by single dots)");
  EXPECT_EQ(*metric_name_error("a."), "metric path \"a.\" has an empty node at byte 2 (nodes are separated by single dots)");
  EXPECT_EQ(*metric_name_error(""), "metric path is empty");
}

TEST(GraphiteLine, NameCharacters) {
  // Printable ASCII other than ';' is kept, glob characters and '/' too, as
  // carbon keeps them.
  for (const char* ok : {"a-b_c.D9", "a:b", "stats.timers.GET_/users.p99", "x*y", "a[1]", "{a}", "p%20q", "k=v"})
    EXPECT_FALSE(metric_name_error(ok)) << ok;
  EXPECT_EQ(point_of("caf\xc3\xa9.latency 1 2").name, "caf\xc3\xa9.latency");  // UTF-8
  EXPECT_FALSE(metric_name_error("\xe6\x97\xa5\xe6\x9c\xac.\xf0\x9f\x98\x80"));

  EXPECT_EQ(status_of(std::string("a\0b 1 2", 7)), LineStatus::kBadName);
  EXPECT_EQ(status_of("a\x01" "b 1 2"), LineStatus::kBadName);
  EXPECT_EQ(status_of("a\x7f 1 2"), LineStatus::kBadName);
  EXPECT_EQ(status_of("a\xff 1 2"), LineStatus::kBadName);          // not UTF-8
  EXPECT_EQ(status_of("a\xc0\xaf 1 2"), LineStatus::kBadName);      // overlong '/'
  EXPECT_EQ(status_of("a\xed\xa0\x80 1 2"), LineStatus::kBadName);  // surrogate
  EXPECT_EQ(status_of("a\xc2\x80 1 2"), LineStatus::kBadName);      // C1 control
  EXPECT_EQ(status_of("a\xc2\xa0" "b 1 2"), LineStatus::kBadName);  // NBSP: Python would split there
  EXPECT_EQ(*metric_name_error("a\xc2\xa0" "b"), "metric path \"a\\xc2\\xa0b\" contains Unicode whitespace at byte 1");
  EXPECT_EQ(*metric_name_error("a\xff"), "metric path \"a\\xff\" is not valid UTF-8 at byte 1");
}

TEST(GraphiteLine, TaggedSeriesAreRefusedWithAReason) {
  EXPECT_EQ(status_of("cpu;host=a 1 2"), LineStatus::kBadName);
  EXPECT_EQ(*metric_name_error("cpu;host=a"),
            "metric path \"cpu;host=a\" contains ';' at byte 3: tagged series (name;tag=value) are not supported");
}

TEST(GraphiteLine, BlankLinesAreIgnored) {
  LineParser p;
  Sink s;
  p.feed("\n  \r\n\t\na 1 2\n\n", kNow, s.on_point(), s.on_bad());
  EXPECT_EQ(s.points, (std::vector<Got>{{"a", 1, 2}}));
  EXPECT_TRUE(s.bad.empty());
  EXPECT_EQ(p.counters().blank(), 4u);
  EXPECT_EQ(p.counters().lines, 5u);
  EXPECT_EQ(parse_line("  ", kNow).error().message, "empty line");
}

TEST(GraphiteLine, BadLinesAreReportedWithLineNumbersAndTheStreamGoesOn) {
  Sink s = feed_all("a 1 2\nfoo 1\nb 2 3\r\nc x 4\nd 4 5\n");
  EXPECT_EQ(s.points, (std::vector<Got>{{"a", 1, 2}, {"b", 2, 3}, {"d", 4, 5}}));
  ASSERT_EQ(s.bad.size(), 2u);
  EXPECT_EQ(s.bad[0], (Bad{LineStatus::kFieldCount, 2,
                           "line 2: expected 3 fields (path value timestamp), got 2: \"foo 1\""}));
  EXPECT_EQ(s.bad[1], (Bad{LineStatus::kBadValue, 4, "line 4: value \"x\" is not a number: \"c x 4\""}));
}

TEST(GraphiteLine, MessagesEscapeAndCutTheLine) {
  Sink s = feed_all(std::string("bad\x01name \"1\" 2\n") + std::string(300, 'x') + "\n");
  ASSERT_EQ(s.bad.size(), 2u);
  EXPECT_EQ(s.bad[0].message,
            "line 1: value \"\\\"1\\\"\" is not a number: \"bad\\x01name \\\"1\\\" 2\"");
  EXPECT_EQ(s.bad[1].message,
            "line 2: expected 3 fields (path value timestamp), got 1: \"" + std::string(200, 'x') + "\"...");
}

TEST(GraphiteLine, StreamSplitAnywhereGivesTheSameResult) {
  std::string data =
      "a.b 1 100\r\nc.d 2.5 -1\n\nbad line\nnan.v nan 5\ne 1e3 1.5\n" + std::string(40, 'z') + " 1 2\nlast 7 8";
  Sink whole = feed_all(data, 32);
  ASSERT_EQ(whole.points.size(), 4u);
  ASSERT_EQ(whole.bad.size(), 2u);  // "bad line" and the 44-byte line
  EXPECT_EQ(whole.bad[1].reason, LineStatus::kTooLong);
  EXPECT_EQ(whole.points.back(), (Got{"last", 7, 8}));  // finish() takes the unterminated last line

  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    LineParser p(32);
    Sink s;
    size_t at = 0;
    while (at < data.size()) {
      size_t n = round == 0 ? 1 : std::min<size_t>(data.size() - at, 1 + rng() % 12);
      p.feed(std::string_view(data).substr(at, n), kNow, s.on_point(), s.on_bad());
      at += n;
    }
    p.finish(kNow, s.on_point(), s.on_bad());
    ASSERT_EQ(s.points, whole.points) << round;
    ASSERT_EQ(s.bad, whole.bad) << round;
    EXPECT_EQ(p.counters().lines, 8u);
  }
}

TEST(GraphiteLine, WholeLinesAreNotCopied) {
  std::string data = "a.b 1 2\n";
  const char* name_at = nullptr;
  LineParser p;
  p.feed(data, kNow, [&](const Point& pt) { name_at = pt.name.data(); }, [](const BadLine&) {});
  EXPECT_EQ(name_at, data.data());
}

TEST(GraphiteLine, LineAtTheLimitIsAcceptedOneByteMoreIsTooLong) {
  // Twisted LineOnlyReceiver: `if len(line) > self.MAX_LENGTH` (16384), the
  // '\n' not counted, a '\r' counted.
  std::string tail = " 1 2";
  std::string name(LineParser::kDefaultMaxLine - tail.size(), 'n');
  Sink ok = feed_all(name + tail + "\n");
  EXPECT_EQ(ok.points.size(), 1u);
  EXPECT_TRUE(ok.bad.empty());
  Sink cr = feed_all(name + tail + "\r\n");
  ASSERT_EQ(cr.bad.size(), 1u);
  EXPECT_EQ(cr.bad[0].reason, LineStatus::kTooLong);
  EXPECT_EQ(cr.bad[0].message.substr(0, 60), "line 1: longer than 16384 bytes (skipped up to the next newl");
}

TEST(GraphiteLine, TooLongLineIsSkippedWithoutBufferingAndReportedOnce) {
  LineParser p(64);
  Sink s;
  p.feed("a 1 2\n", kNow, s.on_point(), s.on_bad());
  std::string junk(1000, 'j');
  for (int i = 0; i < 100; ++i) {
    p.feed(junk, kNow, s.on_point(), s.on_bad());
    EXPECT_TRUE(p.has_partial());
  }
  p.feed(junk + "\nb 3 4\n", kNow, s.on_point(), s.on_bad());
  EXPECT_EQ(s.points, (std::vector<Got>{{"a", 1, 2}, {"b", 3, 4}}));
  ASSERT_EQ(s.bad.size(), 1u);
  EXPECT_EQ(s.bad[0].reason, LineStatus::kTooLong);
  EXPECT_EQ(s.bad[0].line_no, 2u);
  EXPECT_EQ(p.counters().lines, 3u);
  EXPECT_EQ(p.counters().by_status[size_t(LineStatus::kTooLong)], 1u);
  EXPECT_FALSE(p.has_partial());
}

TEST(GraphiteLine, TooLongLineEndingTheStream) {
  LineParser p(8);
  Sink s;
  p.feed("0123456789", kNow, s.on_point(), s.on_bad());
  p.finish(kNow, s.on_point(), s.on_bad());
  ASSERT_EQ(s.bad.size(), 1u);
  EXPECT_EQ(p.counters().lines, 1u);
  EXPECT_FALSE(p.has_partial());
}

TEST(GraphiteLine, DatagramsHoldSeveralLinesNumberedOnTheirOwn) {
  // carbon MetricDatagramReceiver: data.splitlines(), each line as on TCP.
  LineParser p;
  Sink s;
  p.feed_datagram("a 1 10\nb 2 20\r\nc 3 30", kNow, s.on_point(), s.on_bad());
  p.feed_datagram("oops\nd 4 -1\n", kNow, s.on_point(), s.on_bad());
  EXPECT_EQ(s.points, (std::vector<Got>{{"a", 1, 10}, {"b", 2, 20}, {"c", 3, 30}, {"d", 4, kNow}}));
  EXPECT_FALSE(p.has_partial());
  ASSERT_EQ(s.bad.size(), 1u);
  EXPECT_EQ(s.bad[0].line_no, 1u);
  EXPECT_EQ(p.counters().lines, 5u);
}

TEST(GraphiteLine, CountersAddUp) {
  LineParser p(16);
  Sink s;
  p.feed("a 1 1\nb nan 1\n\nc\nd x 1\ne 1 x\nf..g 1 1\n" + std::string(20, 'l') + "\n", kNow, s.on_point(),
         s.on_bad());
  const LineCounters& c = p.counters();
  EXPECT_EQ(c.lines, 8u);
  EXPECT_EQ(c.points, 1u);
  EXPECT_EQ(c.nan_dropped(), 1u);
  EXPECT_EQ(c.blank(), 1u);
  EXPECT_EQ(c.bad(), 5u);
  for (auto st : {LineStatus::kFieldCount, LineStatus::kBadValue, LineStatus::kBadTimestamp, LineStatus::kBadName,
                  LineStatus::kTooLong})
    EXPECT_EQ(c.by_status[size_t(st)], 1u) << line_status_name(st);
  EXPECT_EQ(s.bad.size(), 5u);
}

TEST(RateLimitedLog, LetsABurstThroughThenCountsTheRest) {
  RateLimitedLog log(10'000, 2);
  EXPECT_TRUE(log.admit(1000).emit);
  EXPECT_TRUE(log.admit(1001).emit);
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(log.admit(2000 + i).emit);
  EXPECT_EQ(log.pending_suppressed(), 7u);
  // Next window: the first line says how many were suppressed before it.
  auto d = log.admit(11'000);
  EXPECT_TRUE(d.emit);
  EXPECT_EQ(d.suppressed, 7u);
  EXPECT_EQ(log.admit(11'001).suppressed, 0u);
  EXPECT_FALSE(log.admit(11'002).emit);
  EXPECT_EQ(log.take_suppressed(), 1u);
  EXPECT_EQ(log.take_suppressed(), 0u);
}

TEST(RateLimitedLog, AClockSteppingBackStartsANewWindow) {
  RateLimitedLog log(10'000, 1);
  EXPECT_TRUE(log.admit(50'000).emit);
  EXPECT_FALSE(log.admit(50'001).emit);
  auto d = log.admit(40'000);
  EXPECT_TRUE(d.emit);
  EXPECT_EQ(d.suppressed, 1u);
}
