#include "cli/table.h"

#include <gtest/gtest.h>

namespace stele::cli {
namespace {

TEST(Table, AlignsColumnsToTheWidestCellWithAHeader) {
  Table t({"ID", "STATE", "HOST"});
  t.add_row({"web-r2.0.1", "running", "host1"});
  t.add_row({"db-r1.0.1", "staging", "h2"});
  EXPECT_EQ(t.render(),
            "ID           STATE     HOST\n"
            "web-r2.0.1   running   host1\n"
            "db-r1.0.1    staging   h2\n");
}

TEST(Table, HeaderWiderThanCellsSetsTheWidth) {
  Table t({"INSTANCES", "X"});
  t.add_row({"3", "a"});
  EXPECT_EQ(t.render(), "INSTANCES   X\n3           a\n");
}

TEST(Table, NoTrailingBlanksWhenTheLastCellIsShortOrEmpty) {
  Table t({"A", "STEP"});
  t.add_row({"x", ""});
  t.add_row({"y", "1/3 new healthy"});
  EXPECT_EQ(t.render(), "A   STEP\nx\ny   1/3 new healthy\n");
}

TEST(Table, ShortRowsArePaddedAndLongRowsCut) {
  Table t({"A", "B"});
  t.add_row({"1"});
  t.add_row({"2", "b", "extra"});
  EXPECT_EQ(t.render(), "A   B\n1\n2   b\n");
  EXPECT_EQ(t.rows(), 2u);
}

TEST(Table, EmptyTableRendersItsHeader) {
  Table t({"ID", "APP"});
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.render(), "ID   APP\n");
}

TEST(Table, NewlinesInCellsDoNotBreakRows) {
  Table t({"A", "B"});
  t.add_row({"x", "line1\nline2\ttab"});
  EXPECT_EQ(t.render(), "A   B\nx   line1 line2 tab\n");
}

TEST(Table, MultibyteCellsAlignByCharacters) {
  Table t({"A", "B"});
  t.add_row({"r2→r3", "x"});
  t.add_row({"r1", "y"});
  EXPECT_EQ(t.render(), "A       B\nr2→r3   x\nr1      y\n");
}

TEST(RenderFields, AlignsValuesAndSkipsEmptyOnes) {
  EXPECT_EQ(render_fields({{"ID", "/shop/web"}, {"Waiting", ""}, {"Health checks", "HTTP / every 1s"}}),
            "ID:             /shop/web\n"
            "Health checks:  HTTP / every 1s\n");
}

TEST(DisplayWidth, CountsCodePoints) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("→"), 1u);
  EXPECT_EQ(display_width(""), 0u);
}

TEST(FormatAge, UsesAtMostTwoUnits) {
  EXPECT_EQ(format_age(0), "0s");
  EXPECT_EQ(format_age(999), "0s");
  EXPECT_EQ(format_age(45'000), "45s");
  EXPECT_EQ(format_age(60'000), "1m0s");
  EXPECT_EQ(format_age(192'000), "3m12s");
  EXPECT_EQ(format_age(3'599'000), "59m59s");
  EXPECT_EQ(format_age(3'600'000), "1h0m");
  EXPECT_EQ(format_age(2 * 3'600'000 + 5 * 60'000 + 7'000), "2h5m");
  EXPECT_EQ(format_age(3 * 86'400'000LL + 4 * 3'600'000LL + 1), "3d4h");
  EXPECT_EQ(format_age(400 * 86'400'000LL), "400d0h");
}

TEST(FormatAge, ClockSkewReadsZero) { EXPECT_EQ(format_age(-5'000), "0s"); }

TEST(FormatSince, UnknownTimesShowADash) {
  EXPECT_EQ(format_since(std::nullopt, 1'000'000), "-");
  EXPECT_EQ(format_since(0, 1'000'000), "-");
  EXPECT_EQ(format_since(1'000'000 - 192'000, 1'000'000), "3m12s");
}

TEST(FormatNumber, ShortestFormWithTwoDecimalsAtMost) {
  EXPECT_EQ(format_number(4), "4");
  EXPECT_EQ(format_number(0.5), "0.5");
  EXPECT_EQ(format_number(1.257), "1.26");
  EXPECT_EQ(format_number(0), "0");
  EXPECT_EQ(format_number(-0.001), "0");
  EXPECT_EQ(format_number(100), "100");
}

TEST(FormatMem, MegabytesToHumanUnits) {
  EXPECT_EQ(format_mem(0), "0M");
  EXPECT_EQ(format_mem(128), "128M");
  EXPECT_EQ(format_mem(127.6), "128M");
  EXPECT_EQ(format_mem(1024), "1.0G");
  EXPECT_EQ(format_mem(7823), "7.6G");
  EXPECT_EQ(format_mem(1536 * 1024), "1.5T");
}

TEST(FormatBytes, BinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0B");
  EXPECT_EQ(format_bytes(1023), "1023B");
  EXPECT_EQ(format_bytes(1536), "1.5K");
  EXPECT_EQ(format_bytes(200 * 1024), "200K");
  EXPECT_EQ(format_bytes(3.25 * 1024 * 1024), "3.2M");
  EXPECT_EQ(format_bytes(40.0 * 1024 * 1024 * 1024), "40G");
  EXPECT_EQ(format_bytes(-1), "-");
}

TEST(FormatDurationMs, TenthsUnderTenSecondsThenAges) {
  EXPECT_EQ(format_duration_ms(0), "0.0s");
  EXPECT_EQ(format_duration_ms(430), "0.4s");
  EXPECT_EQ(format_duration_ms(9'949), "9.9s");
  EXPECT_EQ(format_duration_ms(12'500), "12s");
  EXPECT_EQ(format_duration_ms(192'000), "3m12s");
  EXPECT_EQ(format_duration_ms(-5), "0.0s");
}

TEST(ShortDigest, ShortensLongHexIds) {
  EXPECT_EQ(short_digest("sha256:0123456789abcdef0123456789abcdef"), "0123456789ab");
  EXPECT_EQ(short_digest("0123456789abcdef0123"), "0123456789ab");
  EXPECT_EQ(short_digest(""), "-");
  EXPECT_EQ(short_digest("busybox:1.36"), "busybox:1.36");
}

}  // namespace
}  // namespace stele::cli
