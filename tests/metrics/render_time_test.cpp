// from/until parsing against graphite-web 1.1.8's attime.py. Every expected
// number below is what parseATTime(value, tz, now) returned under
// graphite-web 1.1.8 (Debian's graphite-web 1.1.8-2, pytz 2022.7.1), with
// now = 1700000000 (Tuesday 2023-11-14 22:13:20 UTC) unless a test says
// otherwise.
#include "metrics/render_time.h"

#include <stdlib.h>
#include <time.h>

#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace stele::metrics {
namespace {

constexpr int64_t kNow = 1700000000;

int64_t at(std::string_view v, int64_t now = kNow, TimeZone tz = TimeZone::kUtc) {
  auto r = parse_at_time(v, now, tz);
  EXPECT_TRUE(r.has_value()) << v << ": " << (r ? "" : r.error().message);
  return r.value_or(-1);
}

std::string error_of(std::string_view v) {
  auto r = parse_at_time(v, kNow, TimeZone::kUtc);
  if (r) return "parsed as " + std::to_string(*r);
  EXPECT_EQ(r.error().code, 400) << v;
  return r.error().message;
}

TEST(RenderTime, RelativeOffsetsInEveryUnit) {
  EXPECT_EQ(at("now"), kNow);
  EXPECT_EQ(at("-1h"), 1699996400);
  EXPECT_EQ(at("-10min"), 1699999400);
  EXPECT_EQ(at("+5min"), 1700000300);
  EXPECT_EQ(at("-30s"), 1699999970);
  EXPECT_EQ(at("-1d"), 1699913600);
  EXPECT_EQ(at("-1w"), 1699395200);
  EXPECT_EQ(at("-2weeks"), 1698790400);
  EXPECT_EQ(at("-1mon"), 1697408000);  // 30 days
  EXPECT_EQ(at("-1y"), 1668464000);    // 365 days
  EXPECT_EQ(at("-1h30min"), 1699994600);
  EXPECT_EQ(at("now+1h"), 1700003600);
  EXPECT_EQ(at("yesterday-1h"), 1699830000);
  EXPECT_EQ(at("midnight-1d"), 1699833600);
}

TEST(RenderTime, UnitsMatchByPrefixAsGraphiteDoes) {
  EXPECT_EQ(at("-1hours"), 1699996400);
  EXPECT_EQ(at("-1hours_ago"), 1699996400);  // '_' dropped, "hoursago" starts with h
  EXPECT_EQ(at("-5seconds"), kNow - 5);
  EXPECT_EQ(at("-5sec"), kNow - 5);
  EXPECT_EQ(at("-2minutes"), kNow - 120);
  EXPECT_EQ(at("-2months"), kNow - 60 * 86400);
  EXPECT_EQ(at("-1years"), 1668464000);
}

TEST(RenderTime, NormalisesCaseSpacesUnderscoresAndCommas) {
  EXPECT_EQ(at("NOW-1H"), 1699996400);
  EXPECT_EQ(at(" -1h \n"), 1699996400);
  EXPECT_EQ(at("-1,000s"), kNow - 1000);
  EXPECT_EQ(at("now-"), kNow);  // an empty offset is zero
  EXPECT_EQ(at("-"), kNow);
  EXPECT_EQ(at(""), kNow);
}

TEST(RenderTime, EpochSeconds) {
  EXPECT_EQ(at("1700000000"), 1700000000);
  EXPECT_EQ(at("0"), 0);
  EXPECT_EQ(at("253402300799"), 253402300799);  // 9999-12-31T23:59:59Z
  // Eight digits are YYYYMMDD only when they look like a date.
  EXPECT_EQ(at("19000101"), 19000101);
  EXPECT_EQ(at("20151301"), 20151301);
  EXPECT_EQ(at("20150308"), 1425772800);
}

TEST(RenderTime, AbsoluteDates) {
  EXPECT_EQ(at("20150308"), 1425772800);
  EXPECT_EQ(at("12:00_20150308"), 1425816000);
  EXPECT_EQ(at("04:00_20110501"), 1304222400);
  EXPECT_EQ(at("01/02/70"), 86400);
  EXPECT_EQ(at("1/2/05"), 1104624000);  // two-digit years below 70 are 20xx
  EXPECT_EQ(at("12/31/1999"), 946598400);
  EXPECT_EQ(at("jan5"), 1672876800);  // this year
  EXPECT_EQ(at("march 15"), 1678838400);
  EXPECT_EQ(at("dec31"), 1703980800);
}

TEST(RenderTime, TimesOfDayAndDayNames) {
  EXPECT_EQ(at("midnight"), 1699920000);
  EXPECT_EQ(at("today"), 1699920000);
  EXPECT_EQ(at("noon"), 1699963200);
  EXPECT_EQ(at("teatime"), 1699977600);
  EXPECT_EQ(at("yesterday"), 1699833600);
  EXPECT_EQ(at("tomorrow"), 1700006400);
  EXPECT_EQ(at("noon yesterday"), 1699876800);
  EXPECT_EQ(at("9:30am"), 1699954200);
  EXPECT_EQ(at("11:45pm"), 1700005500);
  EXPECT_EQ(at("9am"), 1699952400);
  EXPECT_EQ(at("5pm"), 1699981200);
  // graphite's quirks, kept: 12pm is midnight, 12am is noon, 13am is 13:00.
  EXPECT_EQ(at("12pm"), 1699920000);
  EXPECT_EQ(at("12am"), 1699963200);
  EXPECT_EQ(at("13am"), 1699966800);
  // Weekdays: the most recent one, today included (now is a Tuesday).
  EXPECT_EQ(at("tuesday"), 1699920000);
  EXPECT_EQ(at("monday"), 1699833600);
  EXPECT_EQ(at("sunday"), 1699747200);
  EXPECT_EQ(at("wed"), 1699920000 - 6 * 86400);
}

TEST(RenderTime, BadValuesAre400sNamingTheValue) {
  EXPECT_EQ(error_of("-1m"), "invalid time '-1m': invalid offset unit 'm'");
  EXPECT_EQ(error_of("-1"), "invalid time '-1': invalid offset unit ''");
  EXPECT_EQ(error_of("-h"), "invalid time '-h': invalid offset 'h': a number must come first");
  EXPECT_EQ(error_of("-1h-30min"), "invalid time '-1h-30min': invalid offset '-30min': a number must come first");
  EXPECT_EQ(error_of("5min"), "invalid time '5min': unknown day reference");
  EXPECT_EQ(error_of("garbage"), "invalid time 'garbage': unknown day reference");
  EXPECT_EQ(error_of("20150230"), "invalid time '20150230': day is out of range for month");
  EXPECT_EQ(error_of("20150300"), "invalid time '20150300': day is out of range for month");
  EXPECT_EQ(error_of("24:00"), "invalid time '24:00': hour must be in 0..23");
  EXPECT_EQ(error_of("12:60"), "invalid time '12:60': minute must be in 0..59");
  EXPECT_EQ(error_of("feb30"), "invalid time 'feb30': day is out of range for month");
  EXPECT_EQ(error_of("may"), "invalid time 'may': day of month required after month name");
  EXPECT_EQ(error_of("1:"), "invalid time '1:': invalid time of day");
  EXPECT_EQ(error_of("253402300800"), "invalid time '253402300800': timestamp out of range");
  EXPECT_EQ(error_of("99999999999999999999999"), "invalid time '99999999999999999999999': timestamp out of range");
  EXPECT_EQ(error_of("-1000000000d"), "invalid time '-1000000000d': offset is out of range");
  EXPECT_EQ(error_of("+9000y"), "invalid time '+9000y': date is out of range");
}

TEST(RenderTime, IntervalsAreCaseSensitiveAndUnsigned) {
  // parseTimeOffset as functions use it for intervals ("1h", "-7d").
  EXPECT_EQ(parse_time_offset("1h").value(), 3600);
  EXPECT_EQ(parse_time_offset("+1h").value(), 3600);
  EXPECT_EQ(parse_time_offset("-7d").value(), -7 * 86400);
  EXPECT_EQ(parse_time_offset("10min").value(), 600);
  EXPECT_EQ(parse_time_offset("1h30min").value(), 5400);
  EXPECT_EQ(parse_time_offset("").value(), 0);
  EXPECT_FALSE(parse_time_offset("1H"));   // no lower-casing here
  EXPECT_FALSE(parse_time_offset(" 1h"));  // nor trimming
  EXPECT_FALSE(parse_time_offset("1"));
  EXPECT_FALSE(parse_time_offset("h"));
  EXPECT_EQ(parse_time_offset("1x").error().message, "invalid offset unit 'x'");
}

TEST(RenderTime, RangeDefaultsSwapsAndRefusesEmpty) {
  auto r = parse_time_range(std::nullopt, std::nullopt, kNow, TimeZone::kUtc);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from, kNow - 86400);  // from defaults to -1d
  EXPECT_EQ(r->until, kNow);         // until to now

  r = parse_time_range("now", "-2h", kNow, TimeZone::kUtc);  // given backwards
  ASSERT_TRUE(r);
  EXPECT_EQ(r->from, kNow - 7200);
  EXPECT_EQ(r->until, kNow);

  r = parse_time_range("-1h", "-1h", kNow, TimeZone::kUtc);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 400);
  EXPECT_EQ(r.error().message, "from and until give an empty time range");

  r = parse_time_range("-1x", std::nullopt, kNow, TimeZone::kUtc);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "from: invalid time '-1x': invalid offset unit 'x'");
  r = parse_time_range(std::nullopt, "soon", kNow, TimeZone::kUtc);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "until: invalid time 'soon': unknown day reference");
}

// The process zone, as TZ names it. A POSIX rule string (US Eastern rules)
// needs no zoneinfo files; graphite-web's figures are for America/New_York.
class LocalZoneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* tz = getenv("TZ")) saved_ = tz;
    setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
    tzset();
  }
  void TearDown() override {
    if (saved_) {
      setenv("TZ", saved_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  std::optional<std::string> saved_;
};

TEST_F(LocalZoneTest, WallClockNamesUseTheProcessZone) {
  constexpr auto kLocal = TimeZone::kLocal;
  EXPECT_EQ(at("12:00_20240310", kNow, kLocal), 1710086400);  // noon EDT
  EXPECT_EQ(at("20240701", kNow, kLocal), 1719806400);        // midnight EDT
  EXPECT_EQ(at("-1d", kNow, kLocal), 1699913600);             // offsets are absolute seconds
  EXPECT_EQ(at("1700000000", kNow, kLocal), 1700000000);
  EXPECT_EQ(at("midnight", 1710054000, kLocal), 1710046800);  // 2024-03-10, the day DST starts
}

TEST_F(LocalZoneTest, SkippedAndRepeatedTimesTakeStandardTime) {
  constexpr auto kLocal = TimeZone::kLocal;
  // 2024-03-10: 02:00-03:00 does not exist; pytz localize(is_dst=False)
  // reads 2:30 as EST, which is 3:30 EDT.
  EXPECT_EQ(at("2:30am", 1710054000, kLocal), 1710055800);
  EXPECT_EQ(at("3:30am", 1710054000, kLocal), 1710055800);
  EXPECT_EQ(at("1:30am", 1710054000, kLocal), 1710052200);
  // 2023-11-05: 01:00-02:00 happens twice; the EST one is taken.
  EXPECT_EQ(at("1:30am", 1699164000, kLocal), 1699165800);
  EXPECT_EQ(at("midnight", 1699164000, kLocal), 1699156800);
  EXPECT_EQ(at("noon", 1699164000, kLocal), 1699203600);
}

}  // namespace
}  // namespace stele::metrics
