// Retention semantics against carbon and whisper. Cases marked "carbon
// test_util.py" / "whisper test_whisper.py" are those projects' own test
// cases (TestParseRetentionDef, test_validate_archive_list, test_duplicate,
// test_even_precision_division, test_timespan_coverage,
// test_number_of_points); fetch expectations were computed by running
// whisper.py's file_fetch/__archive_fetch arithmetic (whisper 1.1.x) with
// now = 1700000000 on the archives 10s:6h,1m:7d,10m:1y.
#include "metrics/retention.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace stele::metrics {
namespace {

constexpr int64_t kNow = 1700000000;

Archive def(std::string_view text) {
  auto r = parse_retention_def(text);
  EXPECT_TRUE(r.has_value()) << text << ": " << (r ? "" : r.error().message);
  return r.value_or(Archive{});
}

// The error for `text`, checking its code.
std::string def_error(std::string_view text, int code = 400) {
  auto r = parse_retention_def(text);
  if (r) return "parsed as " + format_retentions({*r});
  EXPECT_EQ(r.error().code, code) << text;
  return r.error().message;
}

std::string retentions_error(std::string_view text, int code = 422) {
  auto r = parse_retentions(text);
  if (r) return "parsed as " + format_retentions(*r);
  EXPECT_EQ(r.error().code, code) << text;
  return r.error().message;
}

std::string archives_error(std::vector<Archive> archives) {
  auto r = validate_archives(std::move(archives));
  if (r) return "valid: " + format_retentions(*r);
  EXPECT_EQ(r.error().code, 422);
  return r.error().message;
}

const std::vector<Archive>& stele_default() { return default_schema().archives; }

// ---- parseRetentionDef ----

TEST(Retention, CarbonValidRetentions) {  // carbon test_util.py test_valid_retentions
  EXPECT_EQ(def("60:10"), (Archive{60, 10}));
  EXPECT_EQ(def("10:60"), (Archive{10, 60}));
  EXPECT_EQ(def("10s:10h"), (Archive{10, 3600}));
}

TEST(Retention, CarbonInvalidRetentions) {  // carbon test_util.py test_invalid_retentions
  EXPECT_NE(def_error("10x:10").find("invalid unit 'x'"), std::string::npos) << def_error("10x:10");
  EXPECT_NE(def_error("60:10x").find("invalid unit 'x'"), std::string::npos);
  EXPECT_NE(def_error("10").find("invalid retention definition '10'"), std::string::npos);
  EXPECT_NE(def_error("10X:10").find("invalid precision specification '10X'"), std::string::npos);
  EXPECT_NE(def_error("10:10$").find("invalid retention specification '10$'"), std::string::npos);
}

TEST(Retention, UnitsArePrefixesOfTheirNames) {
  EXPECT_EQ(def("1m:7d"), (Archive{60, 10080}));  // m is minutes (first prefix match), not months
  EXPECT_EQ(def("1min:1week"), (Archive{60, 10080}));
  EXPECT_EQ(def("1minutes:2hours"), (Archive{60, 120}));
  EXPECT_EQ(def("10m:1y"), (Archive{600, 52560}));  // a year is 365 days
  EXPECT_EQ(def("1h:1w"), (Archive{3600, 168}));
  EXPECT_EQ(def("  10s:6h \t"), (Archive{10, 2160}));  // strip()
  EXPECT_EQ(def("010:05"), (Archive{10, 5}));          // int("010")
  EXPECT_NE(def_error("1mo:1y").find("invalid unit 'mo'"), std::string::npos);
  EXPECT_NE(def_error("1mins:1d").find("invalid unit 'mins'"), std::string::npos);  // not a prefix
  EXPECT_NE(def_error("1S:1d").find("precision"), std::string::npos);   // [a-z]+ only
  EXPECT_NE(def_error("10 s:1d").find("precision"), std::string::npos);  // no inner spaces
  EXPECT_NE(def_error("-10:1d").find("precision"), std::string::npos);
  EXPECT_NE(def_error("1.5:1d").find("precision"), std::string::npos);
  EXPECT_NE(def_error(":1d").find("precision"), std::string::npos);
  EXPECT_NE(def_error("10s:").find("retention specification"), std::string::npos);
}

TEST(Retention, DurationsRoundDownToWholePoints) {
  EXPECT_EQ(def("7s:1m"), (Archive{7, 8}));  // 60 // 7
  EXPECT_EQ(def("1h:90m"), (Archive{3600, 1}));
}

TEST(Retention, SteleRejectsWhatWhisperCannotStore) {
  EXPECT_NE(def_error("1h:30m", 422).find("keeps no points"), std::string::npos);
  EXPECT_NE(def_error("0:10", 422).find("at least 1 second"), std::string::npos);
  EXPECT_NE(def_error("0s:1d", 422).find("at least 1 second"), std::string::npos);
  EXPECT_NE(def_error("4294967296:1", 422).find("4294967295"), std::string::npos);
  EXPECT_NE(def_error("1s:200y", 422).find("4294967295"), std::string::npos);
  EXPECT_NE(def_error("99999999999999999999999:1", 422).find("4294967295"), std::string::npos);
  EXPECT_EQ(def("1s:4294967295"), (Archive{1, 4294967295LL}));
}

// ---- validateArchiveList ----

TEST(Retention, SteleDefaultIsValid) {
  auto r = parse_retentions("10s:6h,1m:7d,10m:1y");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, (std::vector<Archive>{{10, 2160}, {60, 10080}, {600, 52560}}));
  EXPECT_EQ(r->back().retention_s(), 365 * 86400);
  EXPECT_EQ(format_retentions(*r), "10s:2160,60s:10080,600s:52560");
  EXPECT_EQ(stele_default(), *r);
}

TEST(Retention, AtLeastOneArchive) {  // whisper test_validate_archive_list (blank config)
  EXPECT_NE(archives_error({}).find("at least one archive"), std::string::npos);
  EXPECT_NE(retentions_error("").find("at least one archive"), std::string::npos);
  EXPECT_NE(retentions_error("  ").find("at least one archive"), std::string::npos);
  // A trailing comma is an empty definition (carbon: "Invalid retention definition ''").
  EXPECT_NE(retentions_error("10s:6h,", 400).find("invalid retention definition ''"), std::string::npos);
}

TEST(Retention, NoTwoArchivesWithTheSamePrecision) {  // whisper test_duplicate
  EXPECT_EQ(archives_error({{1, 60}, {60, 60}}), "valid: 1s:60,60s:60");
  std::string e = archives_error({{1, 60}, {60, 60}, {1, 60}});
  EXPECT_NE(e.find("same precision (1s:60 and 1s:60)"), std::string::npos) << e;
  e = retentions_error("10s:6h,1m:7d,10s:1d");
  EXPECT_NE(e.find("retentions '10s:6h,1m:7d,10s:1d'"), std::string::npos) << e;
  EXPECT_NE(e.find("same precision"), std::string::npos) << e;
}

TEST(Retention, FinerPrecisionDividesCoarser) {  // whisper test_even_precision_division
  EXPECT_EQ(archives_error({{60, 60}, {6, 60}}), "valid: 6s:60,60s:60");  // sorted, like whisper
  std::string e = archives_error({{60, 60}, {7, 60}});
  EXPECT_NE(e.find("precision 7s does not evenly divide 60s"), std::string::npos) << e;
  EXPECT_NE(retentions_error("10s:6h,15s:7d").find("does not evenly divide"), std::string::npos);
}

TEST(Retention, CoarserArchivesCoverMoreTime) {  // whisper test_timespan_coverage
  std::string e = archives_error({{1, 60}, {10, 1}});
  EXPECT_NE(e.find("retains 10s, not more than the finer one's 60s"), std::string::npos) << e;
  // Equal retention is not enough: whisper requires strictly more.
  EXPECT_NE(retentions_error("1s:1m,1m:1").find("cover longer time"), std::string::npos);
  EXPECT_NE(retentions_error("1m:7d,10m:1d").find("cover longer time"), std::string::npos);
}

TEST(Retention, EnoughPointsToConsolidate) {  // whisper test_number_of_points
  std::string e = archives_error({{1, 4}, {5, 2}});
  EXPECT_NE(e.find("archive 1s:4 has only 4 points but each point of 5s:2 consolidates 5"), std::string::npos)
      << e;
  EXPECT_EQ(archives_error({{1, 5}, {5, 2}}), "valid: 1s:5,5s:2");
}

TEST(Retention, UnsortedInputIsSortedFinestFirst) {
  auto r = parse_retentions("10m:1y, 10s:6h ,1m:7d");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, stele_default());
}

// ---- aggregation ----

std::vector<std::optional<double>> vals(std::initializer_list<std::optional<double>> v) { return v; }

TEST(Retention, AggregationNames) {
  for (auto name : {"average", "sum", "min", "max", "last", "avg_zero", "absmax", "absmin"}) {
    auto a = parse_aggregation(name);
    ASSERT_TRUE(a.has_value()) << name;
    EXPECT_STREQ(aggregation_name(*a), name);
  }
  auto bad = parse_aggregation("avg");  // carbon-aggregator's alias, not a whisper method
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, 400);
  EXPECT_NE(bad.error().message.find("'avg'"), std::string::npos);
  EXPECT_FALSE(parse_aggregation("Average").has_value());
}

TEST(Retention, AggregateLikeWhisper) {  // whisper.py aggregate()
  auto v = vals({1.0, std::nullopt, 5.0, 3.0});
  EXPECT_EQ(aggregate(Aggregation::average, v, 0.5), 3.0);
  EXPECT_EQ(aggregate(Aggregation::sum, v, 0.5), 9.0);
  EXPECT_EQ(aggregate(Aggregation::min, v, 0.5), 1.0);
  EXPECT_EQ(aggregate(Aggregation::max, v, 0.5), 5.0);
  EXPECT_EQ(aggregate(Aggregation::last, v, 0.5), 3.0);
  EXPECT_EQ(aggregate(Aggregation::last, vals({2.0, 7.0, std::nullopt}), 0), 7.0);  // last *known*
  EXPECT_EQ(aggregate(Aggregation::avg_zero, v, 0.5), 9.0 / 4);  // unknown counts as 0
  EXPECT_EQ(aggregate(Aggregation::absmax, vals({-5.0, 3.0}), 0), -5.0);
  EXPECT_EQ(aggregate(Aggregation::absmin, vals({-1.0, 1.0, 2.0}), 0), -1.0);  // first on ties
}

TEST(Retention, XFilesFactorIsTheKnownFraction) {
  auto v = vals({1.0, 2.0, 3.0, std::nullopt});  // 3 of 4 known
  EXPECT_EQ(aggregate(Aggregation::average, v, 0.75), 2.0);  // >= stores
  EXPECT_EQ(aggregate(Aggregation::average, v, 0.76), std::nullopt);
  EXPECT_EQ(aggregate(Aggregation::average, v, 1.0), std::nullopt);
  EXPECT_EQ(aggregate(Aggregation::sum, v, 0.0), 6.0);
  // 3/10 with xff 0.3: Python's 3.0/10.0 == 0.3, so it is stored.
  std::vector<std::optional<double>> ten(10);
  ten[0] = 1, ten[4] = 1, ten[9] = 1;
  EXPECT_EQ(aggregate(Aggregation::sum, ten, 0.3), 3.0);
}

TEST(Retention, NothingKnownStoresNothing) {
  EXPECT_EQ(aggregate(Aggregation::sum, vals({std::nullopt, std::nullopt}), 0.0), std::nullopt);
  EXPECT_EQ(aggregate(Aggregation::avg_zero, vals({std::nullopt}), 0.0), std::nullopt);
  EXPECT_EQ(aggregate(Aggregation::average, {}, 0.0), std::nullopt);
}

TEST(Retention, NonFiniteValuesAreOrdinary) {
  auto r = aggregate(Aggregation::sum, vals({1.0, INFINITY}), 0.5);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(std::isinf(*r));
}

// ---- schemas ----

StorageSchema schema(std::string name, std::string_view pattern, std::string_view retentions,
                     Aggregation agg = Aggregation::average, double xff = 0.5) {
  auto s = make_schema(std::move(name), pattern, parse_retentions(retentions).value(), agg, xff);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
  return std::move(s.value());
}

TEST(Retention, FirstMatchWinsInDeclarationOrder) {  // carbon loadStorageSchemas + writer
  Schemas schemas;
  schemas.add(schema("carbon", "^carbon\\.", "60:90d"));
  schemas.add(schema("counts", "\\.count$", "10s:1d,1m:30d", Aggregation::sum, 0));
  schemas.add(schema("all", ".*", "1m:1d"));
  EXPECT_EQ(schemas.match("carbon.agents.a.count").name, "carbon");
  EXPECT_EQ(schemas.match("web.requests.count").name, "counts");
  EXPECT_EQ(schemas.match("web.requests.count").agg, Aggregation::sum);
  EXPECT_EQ(schemas.match("web.latency").name, "all");
  // re.search: the pattern may match anywhere in the name.
  EXPECT_EQ(schemas.match("x.carbon.y").name, "all");
  Schemas only_counts;
  only_counts.add(schema("counts", "count", "1m:1d"));
  EXPECT_EQ(only_counts.match("a.counter.b").name, "counts");
}

TEST(Retention, UnmatchedMetricsGetSteleDefault) {
  Schemas schemas;
  schemas.add(schema("carbon", "^carbon\\.", "60:90d"));
  const StorageSchema& s = schemas.match("servers.web1.cpu");
  EXPECT_EQ(s.name, "default");
  EXPECT_EQ(s.archives, stele_default());
  EXPECT_EQ(s.agg, Aggregation::average);
  EXPECT_EQ(s.x_files_factor, 0.5);
  EXPECT_EQ(Schemas().match("").name, "default");
}

TEST(Retention, MakeSchemaRejectsBadInput) {
  auto bad_re = make_schema("x", "(unclosed", stele_default());
  ASSERT_FALSE(bad_re.has_value());
  EXPECT_EQ(bad_re.error().code, 400);
  EXPECT_NE(bad_re.error().message.find("'(unclosed'"), std::string::npos);
  auto bad_xff = make_schema("x", ".*", stele_default(), Aggregation::average, 1.5);
  ASSERT_FALSE(bad_xff.has_value());
  EXPECT_EQ(bad_xff.error().code, 422);
  EXPECT_FALSE(make_schema("x", ".*", stele_default(), Aggregation::average, NAN).has_value());
  EXPECT_FALSE(make_schema("x", ".*", {{60, 60}, {7, 60}}).has_value());
}

// carbon's conf/storage-schemas.conf.example and storage-aggregation.conf.example.
constexpr std::string_view kCarbonSchemas = R"(# Schema definitions for Whisper files. Entries are scanned in order,
# and first match wins.
[carbon]
pattern = ^carbon\.
retentions = 60:90d

[default_1min_for_1day]
pattern = .*
retentions = 60s:1d
)";

constexpr std::string_view kCarbonAggregation = R"([min]
pattern = \.min$
xFilesFactor = 0.1
aggregationMethod = min

[max]
pattern = \.max$
xFilesFactor = 0.1
aggregationMethod = max

[sum]
pattern = \.count$
xFilesFactor = 0
aggregationMethod = sum

[default_average]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
)";

TEST(Retention, CarbonExampleConfigs) {
  auto r = parse_carbon_schemas(kCarbonSchemas, kCarbonAggregation);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const StorageSchema& a = r->match("carbon.agents.host.metricsReceived.count");
  EXPECT_EQ(a.archives, (std::vector<Archive>{{60, 129600}}));
  EXPECT_EQ(a.agg, Aggregation::sum);
  EXPECT_EQ(a.x_files_factor, 0.0);
  const StorageSchema& b = r->match("servers.web1.latency.min");
  EXPECT_EQ(b.archives, (std::vector<Archive>{{60, 1440}}));
  EXPECT_EQ(b.agg, Aggregation::min);
  EXPECT_EQ(b.x_files_factor, 0.1);
  EXPECT_EQ(r->match("servers.web1.latency.max").agg, Aggregation::max);
  EXPECT_EQ(r->match("servers.web1.latency").agg, Aggregation::average);
}

TEST(Retention, CarbonFilesAreMatchedIndependently) {
  // The aggregation file's first match applies even when it is a different
  // pattern than the schema file's; a section without a key means whisper's
  // default, not the next section.
  auto r = parse_carbon_schemas("[a]\npattern = ^a\\.\nretentions = 1m:1d\n",
                                "[counts]\npattern = count\naggregationMethod = sum\n"
                                "[rest]\npattern = .*\nxFilesFactor = 0.9\naggregationMethod = max\n");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->match("a.count").agg, Aggregation::sum);
  EXPECT_EQ(r->match("a.count").x_files_factor, 0.5);
  EXPECT_EQ(r->match("a.other").agg, Aggregation::max);
  EXPECT_EQ(r->match("a.other").x_files_factor, 0.9);
  // No schema section matches: Stele's default retentions, aggregation from the file.
  const StorageSchema& d = r->match("b.count");
  EXPECT_EQ(d.archives, stele_default());
  EXPECT_EQ(d.agg, Aggregation::sum);
  // No aggregation file at all: whisper's average / 0.5.
  auto only = parse_carbon_schemas("[a]\npattern = .*\nretentions = 1m:1d\n");
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->match("x").agg, Aggregation::average);
  EXPECT_EQ(only->match("x").archives, (std::vector<Archive>{{60, 1440}}));
}

TEST(Retention, SchemaSectionMayCarryItsOwnAggregation) {  // [Stele]
  auto r = parse_carbon_schemas(
      "[counts]\npattern = \\.count$\nretentions = 10s:1d\naggregationMethod = sum\n"
      "[rest]\npattern = .*\nretentions = 1m:1d\n",
      "[all]\npattern = .*\naggregationMethod = max\n");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->match("x.count").agg, Aggregation::sum);
  EXPECT_EQ(r->match("x.count").x_files_factor, 0.5);
  EXPECT_EQ(r->match("x.gauge").agg, Aggregation::max);
}

TEST(Retention, ConfigSyntaxDetails) {
  // ':' separator, case-insensitive keys, ';' comments, CR LF, padding.
  auto r = parse_carbon_schemas("; comment\r\n[A]\r\nPattern: ^a\r\n  \r\nRETENTIONS = 10s:6h, 1m:7d\r\n");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->match("abc").name, "A");
  EXPECT_EQ(r->match("abc").archives.size(), 2u);
}

std::string config_error(std::string_view schemas, std::string_view aggregation = {}) {
  auto r = parse_carbon_schemas(schemas, aggregation);
  return r ? "parsed" : r.error().message;
}

TEST(Retention, ConfigErrorsNameTheLine) {
  EXPECT_EQ(config_error("[a]\npattern = .*\nretentions = 10x:1d\n").rfind(
                "storage-schemas.conf line 3: in [a]: retention '10x:1d': invalid unit 'x'", 0),
            0u)
      << config_error("[a]\npattern = .*\nretentions = 10x:1d\n");
  EXPECT_NE(config_error("[a]\npattern = .*\nretentions = 1m:7d,10m:1d\n").find("line 3: in [a]: retentions"),
            std::string::npos);
  EXPECT_EQ(config_error("\n[a]\npattern = .*\n"), "storage-schemas.conf line 2: section [a] has no retentions");
  EXPECT_EQ(config_error("[a]\nretentions = 1m:1d\n"), "storage-schemas.conf line 1: section [a] has no pattern");
  EXPECT_NE(config_error("[a]\npattern = (\nretentions = 1m:1d\n").find("line 2: in [a]: invalid pattern '('"),
            std::string::npos);
  EXPECT_EQ(config_error("pattern = .*\n"), "storage-schemas.conf line 1: key outside any [section]: 'pattern = .*'");
  EXPECT_NE(config_error("[a]\npattern=.*\nretentions=1m:1d\n[a]\n").find("line 4: duplicate section [a]"),
            std::string::npos);
  EXPECT_NE(config_error("[a]\npattern=.*\npattern=x\n").find("line 3: in [a]: duplicate key 'pattern'"),
            std::string::npos);
  EXPECT_NE(config_error("[a]\npatern=.*\n").find("line 2: in [a]: unknown key 'patern'"), std::string::npos);
  EXPECT_NE(config_error("[a]\njust words\n").find("line 2: in [a]: expected key = value"), std::string::npos);
  EXPECT_NE(config_error("[a\n").find("line 1: malformed section header"), std::string::npos);
}

TEST(Retention, AggregationConfigErrorsNameTheLine) {
  std::string_view ok = "[a]\npattern = .*\nretentions = 1m:1d\n";
  EXPECT_EQ(config_error(ok, "[s]\npattern = x\naggregationMethod = median\n")
                .rfind("storage-aggregation.conf line 3: in [s]: unknown aggregation method 'median'", 0),
            0u);
  EXPECT_EQ(config_error(ok, "[s]\npattern = x\nxFilesFactor = 1.5\n"),
            "storage-aggregation.conf line 3: in [s]: xFilesFactor '1.5' is outside [0, 1]");
  EXPECT_EQ(config_error(ok, "[s]\npattern = x\nxFilesFactor = half\n"),
            "storage-aggregation.conf line 3: in [s]: xFilesFactor 'half' is not a number");
  EXPECT_EQ(config_error(ok, "[s]\nxFilesFactor = 0\n"), "storage-aggregation.conf line 1: section [s] has no pattern");
  EXPECT_NE(config_error(ok, "[s]\npattern = [\n").find("line 2: in [s]: invalid pattern"), std::string::npos);
  auto r = parse_carbon_schemas(ok, "[s]\npattern = x\nxFilesFactor = 2\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, 422);
}

// ---- reads ----

TEST(Retention, ChooseFinestArchiveCoveringFrom) {  // whisper file_fetch: retention >= now - from
  const auto& a = stele_default();
  EXPECT_EQ(choose_archive(a, kNow, kNow - 3600), 0u);
  EXPECT_EQ(choose_archive(a, kNow, kNow - 6 * 3600), 0u);  // exactly 6h: still the 10s archive
  EXPECT_EQ(choose_archive(a, kNow, kNow - 6 * 3600 - 1), 1u);
  EXPECT_EQ(choose_archive(a, kNow, kNow - 7 * 86400), 1u);
  EXPECT_EQ(choose_archive(a, kNow, kNow - 7 * 86400 - 1), 2u);
  EXPECT_EQ(choose_archive(a, kNow, kNow + 100), 0u);              // from in the future
  EXPECT_EQ(choose_archive(a, kNow, kNow - 2 * 365 * 86400), 2u);  // older than every retention
}

TEST(Retention, AlignLikeArchiveFetch) {  // whisper __archive_fetch
  Archive minute{60, 1440};
  // A point stamped exactly `from` is excluded: both ends move one step on.
  EXPECT_EQ(align(minute, 120, 300), (FetchWindow{180, 360, 60}));
  EXPECT_EQ(align(minute, 121, 359), (FetchWindow{180, 360, 60}));
  EXPECT_EQ(align(minute, 120, 300).points(), 3);
  // Zero-length range: always one point.
  EXPECT_EQ(align(minute, 125, 125), (FetchWindow{180, 240, 60}));
  EXPECT_EQ(align(minute, 125, 170), (FetchWindow{180, 240, 60}));
  // Python's floor modulo before the epoch.
  EXPECT_EQ(align(minute, -30, -1), (FetchWindow{0, 60, 60}));
  EXPECT_EQ(align(minute, -60, 0), (FetchWindow{0, 60, 60}));
}

std::optional<FetchPlan> plan(int64_t from, int64_t until) {
  auto r = plan_fetch(stele_default(), kNow, from, until);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r.value_or(std::nullopt);
}

TEST(Retention, PlanFetchMatchesWhisper) {  // whisper file_fetch, values from whisper.py
  EXPECT_EQ(plan(kNow - 3600, kNow), (FetchPlan{0, {1699996410, 1700000010, 10}}));
  EXPECT_EQ(plan(kNow - 3600, kNow)->window.points(), 360);
  // Older than 7d: the 10m archive even though the range is one day wide.
  EXPECT_EQ(plan(kNow - 8 * 86400, kNow - 7 * 86400 - 100), (FetchPlan{2, {1699309200, 1699395600, 600}}));
  // from == until.
  EXPECT_EQ(plan(kNow - 21600, kNow - 21600), (FetchPlan{0, {1699978410, 1699978420, 10}}));
  // until in the future is clamped to now.
  EXPECT_EQ(plan(kNow - 21601, kNow + 500), (FetchPlan{1, {1699978440, 1700000040, 60}}));
}

TEST(Retention, PlanFetchClampsToMaxRetention) {
  // Partly older than a year: from is clamped to now - 1y, coarsest archive.
  EXPECT_EQ(plan(kNow - 2 * 31536000, kNow), (FetchPlan{2, {1668464400, 1700000400, 600}}));
  EXPECT_EQ(plan(kNow - 2 * 31536000, kNow)->window.points(), 52560);
  EXPECT_EQ(plan(kNow - 31536000 - 5000, kNow - 31536000 + 1), (FetchPlan{2, {1668464400, 1668465000, 600}}));
}

TEST(Retention, PlanFetchWithNoData) {
  EXPECT_EQ(plan(kNow + 1, kNow + 10), std::nullopt);              // wholly in the future
  EXPECT_EQ(plan(kNow - 40000000, kNow - 31536001), std::nullopt);  // wholly older than the coarsest retention
  EXPECT_NE(plan(kNow, kNow), std::nullopt);                        // now itself is in range
}

TEST(Retention, PlanFetchRejectsUntilBeforeFrom) {
  auto r = plan_fetch(stele_default(), kNow, kNow - 10, kNow - 20);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, 400);
  EXPECT_EQ(r.error().message, "invalid time interval: from time 1699999990 is after until time 1699999980");
}

}  // namespace
}  // namespace stele::metrics
