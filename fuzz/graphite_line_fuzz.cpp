// Fuzz target for the Graphite plaintext parser, fed straight off
// --graphite-listen (TCP and UDP), and for the glob compiler /render and
// /metrics/find run on user patterns. It never crashes or leaks; the points
// and bad lines do not depend on how the bytes were split into reads (nor on
// stream vs datagram); every point has a valid, whitespace-free name, a
// non-NaN value, and reads back the same from its own text; the counters
// add up. The first line is also compiled as a glob: matches() agrees with
// node_matches() node by node on every name seen, literal sets match their
// members, and every point's name, escaped, compiles to a literal pattern
// that matches it.
// fuzz-sources: src/metrics/graphite_line.cpp src/metrics/glob.cpp
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/glob.h"
#include "metrics/graphite_line.h"

using stele::metrics::BadLine;
using stele::metrics::GlobPattern;
using stele::metrics::LineParser;
using stele::metrics::LineStatus;
using stele::metrics::Point;

namespace {

constexpr int64_t kNow = 1'700'000'000;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "graphite_line_fuzz: %s\n", what);
  std::abort();
}

struct Outcome {
  std::vector<std::string> names;
  std::vector<double> values;
  std::vector<int64_t> times;
  std::vector<std::string> bad;  // "reason line_no message"
  bool operator==(const Outcome& o) const {
    if (names != o.names || times != o.times || bad != o.bad || values.size() != o.values.size()) return false;
    return std::memcmp(values.data(), o.values.data(), values.size() * sizeof(double)) == 0;
  }
};

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

void check_point(const Point& p) {
  if (p.name.empty()) violated("empty name");
  for (char c : p.name)
    if (is_space(c)) violated("whitespace in a name");
  if (p.name.find("..") != std::string_view::npos || p.name.front() == '.' || p.name.back() == '.')
    violated("empty node in a name");
  if (stele::metrics::metric_name_error(p.name)) violated("emitted name fails metric_name_error");
  if (std::isnan(p.value)) violated("NaN value emitted");
  // Its own text reads back the same (a time of -1 would mean "now").
  if (p.time_s != -1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.17g %lld", p.value, static_cast<long long>(p.time_s));
    std::string line = std::string(p.name) + buf;
    Point q;
    if (stele::metrics::scan_line(line, kNow, q) != LineStatus::kPoint) violated("a point's text does not parse");
    if (q.name != p.name || q.time_s != p.time_s || std::memcmp(&q.value, &p.value, sizeof(double)) != 0)
      violated("a point's text reads back differently");
  }
}

struct Collector {
  Outcome out;
  bool check = false;
  auto on_point() {
    return [this](const Point& p) {
      if (check) check_point(p);
      out.names.emplace_back(p.name);
      out.values.push_back(p.value);
      out.times.push_back(p.time_s);
    };
  }
  auto on_bad() {
    return [this](const BadLine& b) {
      if (!stele::metrics::is_bad(b.reason)) violated("on_bad with a good status");
      if (b.line_no == 0) violated("line numbers start at 1");
      std::string msg = b.message();
      if (msg.rfind("line ", 0) != 0) violated("bad-line message does not name the line");
      out.bad.push_back(std::to_string(int(b.reason)) + " " + std::to_string(b.line_no) + " " + msg);
    };
  }
};

void check_counters(const LineParser& p, const Outcome& o) {
  const auto& c = p.counters();
  uint64_t sum = 0;
  for (size_t i = 0; i < stele::metrics::kLineStatusCount; ++i) sum += c.by_status[i];
  if (sum != c.lines) violated("by_status does not add up to lines");
  if (c.points != o.names.size() || c.points != c.by_status[0]) violated("points counter is off");
  if (c.bad() != o.bad.size()) violated("bad counter is off");
}

std::string escaped(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (std::strchr("*?[]{}\\,", c) && c != '\0') out += '\\';
    out += c;
  }
  return out;
}

void check_glob(std::string_view pattern, const Outcome& o, std::string_view in) {
  auto g = GlobPattern::compile(pattern);
  (void)GlobPattern::compile(stele::metrics::completer_query(pattern, true));
  if (g) {
    size_t dots = 0;
    for (char c : pattern) dots += c == '.';
    if (g->nodes() != dots + 1) violated("node count differs from the pattern's dots");
    for (size_t i = 0; i < g->nodes(); ++i)
      for (const std::string& lit : g->node_literals(i))
        if (!g->node_matches(i, lit)) violated("a node does not match its own literal");
    if (g->is_literal() && !g->matches(g->literal_path())) violated("a literal pattern does not match its path");
    // Candidate names: every point, and the first field of every line.
    std::vector<std::string_view> names(o.names.begin(), o.names.end());
    for (size_t at = 0; at < in.size() && names.size() < 64;) {
      size_t nl = in.find('\n', at);
      std::string_view line = in.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
      names.push_back(line.substr(0, std::min<size_t>(line.find(' '), 128)));
      if (nl == std::string_view::npos) break;
      at = nl + 1;
    }
    for (std::string_view name : names) {
      size_t i = 0, start = 0;
      bool all = true;
      while (true) {
        size_t dot = name.find('.', start);
        std::string_view node = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        all = all && i < g->nodes() && g->node_matches(i, node);
        ++i;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
      }
      if (g->matches(name) != (all && i == g->nodes())) violated("matches() disagrees with node_matches()");
    }
  } else if (g.error().message.empty()) {
    violated("glob error without a message");
  }
  for (const std::string& name : o.names) {
    auto lit = GlobPattern::compile(escaped(name));
    if (!lit) violated("an escaped point name does not compile");
    if (!lit->is_literal() || lit->literal_path() != name || !lit->matches(name))
      violated("an escaped point name is not a literal pattern matching it");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint32_t seed = 2166136261u;
  for (uint8_t b : in.substr(0, 16)) seed = (seed ^ b) * 16777619u;
  // Small limits reach the too-long paths with small inputs.
  size_t max_line = (seed & 3) == 0 ? LineParser::kDefaultMaxLine : 8 + seed % 64;

  Collector whole;
  whole.check = true;
  {
    LineParser p(max_line);
    p.feed(in, kNow, whole.on_point(), whole.on_bad());
    p.finish(kNow, whole.on_point(), whole.on_bad());
    check_counters(p, whole.out);
    if (p.has_partial()) violated("state left after finish()");
  }

  Collector split;
  {
    LineParser p(max_line);
    size_t at = 0;
    while (at < in.size()) {
      seed = seed * 1103515245u + 12345u;
      size_t n = std::min<size_t>(in.size() - at, 1 + (seed >> 16) % 32);
      p.feed(in.substr(at, n), kNow, split.on_point(), split.on_bad());
      at += n;
    }
    p.finish(kNow, split.on_point(), split.on_bad());
  }
  if (!(whole.out == split.out)) violated("outcome depends on how the input was split");

  Collector datagram;
  {
    LineParser p(max_line);
    p.feed_datagram(in, kNow, datagram.on_point(), datagram.on_bad());
    if (p.has_partial()) violated("state left after a datagram");
  }
  if (!(whole.out == datagram.out)) violated("a datagram parses differently from a stream");

  check_glob(in.substr(0, std::min<size_t>(in.find('\n'), 512)), whole.out, in);
  return 0;
}
