// Graphite globs: graphite-web's rules (finders/standard.py splits on '.',
// finders/__init__.py expand_braces, Python fnmatch per node), the compiled
// fast paths, errors naming their byte, the completer rewrite, and a
// differential check against a brute-force reference matcher.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "metrics/glob.h"

using namespace stele::metrics;

namespace {

GlobPattern glob(std::string_view p) {
  auto g = GlobPattern::compile(p);
  EXPECT_TRUE(g) << p << ": " << (g ? "" : g.error().message);
  return g ? std::move(*g) : *GlobPattern::compile("never.compiled.here");
}

bool m(std::string_view pattern, std::string_view name) { return glob(pattern).matches(name); }

std::string error_of(std::string_view p) {
  auto g = GlobPattern::compile(p);
  return g ? "(compiled)" : g.error().message;
}

}  // namespace

TEST(Glob, LiteralPathsMatchThemselvesOnly) {
  EXPECT_TRUE(m("stele.node.h1.cpu.user", "stele.node.h1.cpu.user"));
  EXPECT_FALSE(m("stele.node.h1.cpu.user", "stele.node.h1.cpu.usr"));
  EXPECT_FALSE(m("stele.node.h1.cpu.user", "stele.node.h1.cpu"));
  EXPECT_FALSE(m("stele.node.h1.cpu", "stele.node.h1.cpu.user"));
  EXPECT_FALSE(m("a.b", "A.b"));  // case-sensitive, as fnmatch on POSIX
  auto g = glob("a.b.c");
  EXPECT_TRUE(g.is_literal());
  EXPECT_EQ(g.literal_path(), "a.b.c");
  EXPECT_EQ(g.nodes(), 3u);
}

TEST(Glob, StarStaysWithinOneNode) {
  EXPECT_TRUE(m("a.*", "a.b"));
  EXPECT_FALSE(m("a.*", "a.b.c"));  // one node per pattern node
  EXPECT_TRUE(m("a.*.c", "a.anything-at_all.c"));
  EXPECT_TRUE(m("cpu*", "cpu"));  // '*' may be empty
  EXPECT_TRUE(m("cpu*", "cpu_user"));
  EXPECT_TRUE(m("*user", "cpu_user"));
  EXPECT_TRUE(m("c*u*r", "cpu_user"));
  EXPECT_FALSE(m("c*u*x", "cpu_user"));
  EXPECT_TRUE(m("**", "x"));  // "**" is "*" here (no multi-level globstar)
  EXPECT_FALSE(m("**", "x.y"));
  // The seed's query (design.md "Names"): stele.task.*.web-*.*.memory.*
  auto g = glob("stele.task.*.web-*.*.memory.*");
  EXPECT_TRUE(g.matches("stele.task.h1.web-r3.0.memory.rss"));
  EXPECT_FALSE(g.matches("stele.task.h1.api-r3.0.memory.rss"));
  EXPECT_FALSE(g.matches("stele.task.h1.web-r3.0.cpu.user"));
}

TEST(Glob, QuestionMarkIsOneCharacter) {
  EXPECT_TRUE(m("web0?", "web01"));
  EXPECT_FALSE(m("web0?", "web0"));
  EXPECT_FALSE(m("web0?", "web012"));
  // Characters are code points, as Python matches str: 'é' is one.
  EXPECT_TRUE(m("caf?", "caf\xc3\xa9"));
  EXPECT_FALSE(m("caf??", "caf\xc3\xa9"));
  EXPECT_TRUE(m("?", "\xf0\x9f\x98\x80"));
}

TEST(Glob, CharacterClassesFollowFnmatch) {
  EXPECT_TRUE(m("web[0-9]", "web7"));
  EXPECT_FALSE(m("web[0-9]", "webx"));
  EXPECT_TRUE(m("[abc]x", "bx"));
  EXPECT_TRUE(m("[!abc]x", "dx"));
  EXPECT_FALSE(m("[!abc]x", "ax"));
  EXPECT_TRUE(m("[^a]", "^"));   // fnmatch: only '!' negates
  EXPECT_FALSE(m("[^a]", "b"));
  EXPECT_TRUE(m("[]]", "]"));    // ']' first is literal
  EXPECT_TRUE(m("[!]]", "x"));
  EXPECT_FALSE(m("[!]]", "]"));
  EXPECT_TRUE(m("[a-]", "-"));   // '-' last is literal
  EXPECT_TRUE(m("[-a]", "-"));   // '-' first too
  EXPECT_TRUE(m("[a-cx-z]", "y"));
  EXPECT_FALSE(m("[a-cx-z]", "d"));
  EXPECT_TRUE(m("[\\]]", "]"));  // escaped in a class
  EXPECT_TRUE(m("[\xc3\xa0-\xc3\xbf]", "\xc3\xa9"));  // a range of code points
  EXPECT_TRUE(m("[!a]", "\xc3\xa9"));  // one code point, not one byte
  EXPECT_FALSE(m("[!a]", "\xc3\xa9x"));
}

TEST(Glob, BracesAreAlternatives) {
  EXPECT_TRUE(m("a.{b,c}.d", "a.b.d"));
  EXPECT_TRUE(m("a.{b,c}.d", "a.c.d"));
  EXPECT_FALSE(m("a.{b,c}.d", "a.bc.d"));
  EXPECT_TRUE(m("web-{1,2}*", "web-2-old"));
  EXPECT_FALSE(m("web-{1,2}*", "web-3"));
  EXPECT_TRUE(m("{cpu,mem*}.x", "memory.x"));
  EXPECT_TRUE(m("x{,y}", "x"));  // empty alternative
  EXPECT_TRUE(m("x{,y}", "xy"));
  EXPECT_TRUE(m("{a}", "a"));    // expand_braces: no ',' -> braces removed
  EXPECT_TRUE(m("a{}b", "ab"));
  // Nested, as expand_braces expands the innermost-last first.
  auto g = glob("{a,b{c,d}}");
  for (const char* yes : {"a", "bc", "bd"}) EXPECT_TRUE(g.node_matches(0, yes)) << yes;
  for (const char* no : {"b", "bcd", "ab"}) EXPECT_FALSE(g.node_matches(0, no)) << no;
  // Wildcards and classes inside alternatives, and several braces per node.
  EXPECT_TRUE(m("{web,api}-[0-9]{,-canary}", "api-3-canary"));
  EXPECT_FALSE(m("{web,api}-[0-9]{,-canary}", "api-3-stable"));
}

TEST(Glob, FiniteAlternativesAreLiteralSets) {
  auto g = glob("stele.{node,task}.web-{2,1,1}.cpu*");
  EXPECT_EQ(g.node_literals(0), (std::vector<std::string>{"stele"}));
  EXPECT_TRUE(g.is_literal_node(0));
  EXPECT_EQ(g.node_literals(1), (std::vector<std::string>{"node", "task"}));
  EXPECT_FALSE(g.is_literal_node(1));
  EXPECT_EQ(g.node_literals(2), (std::vector<std::string>{"web-1", "web-2"}));  // sorted, distinct
  EXPECT_TRUE(g.node_literals(3).empty());
  EXPECT_FALSE(g.is_literal());
  EXPECT_TRUE(g.matches("stele.task.web-2.cpu_user"));
  // Too many alternatives for a set: still matched, by the program.
  auto big = glob("{0,1,2,3,4,5,6,7,8,9}{0,1,2,3,4,5,6,7,8,9}");
  EXPECT_TRUE(big.node_literals(0).empty());
  EXPECT_TRUE(big.node_matches(0, "42"));
  EXPECT_FALSE(big.node_matches(0, "4"));
  EXPECT_TRUE(glob("{a}.b\\*").is_literal());
  EXPECT_EQ(glob("{a}.b\\*").literal_path(), "a.b*");
}

TEST(Glob, BackslashMakesTheNextCharacterLiteral) {
  EXPECT_TRUE(m("a\\*b", "a*b"));
  EXPECT_FALSE(m("a\\*b", "axb"));
  EXPECT_TRUE(m("\\{a,b\\}", "{a,b}"));
  EXPECT_TRUE(m("{a\\,b,c}", "a,b"));
  EXPECT_TRUE(m("x\\?", "x?"));
  EXPECT_TRUE(m("ab\\", "ab"));  // escapes nothing: dropped
  EXPECT_TRUE(m("a\\.b", "a.b"));  // '.' always separates nodes
  EXPECT_EQ(glob("a\\.b").nodes(), 2u);
}

TEST(Glob, StrayClosersAreLiteral) {
  EXPECT_TRUE(m("a}b", "a}b"));
  EXPECT_TRUE(m("a]b", "a]b"));
  EXPECT_TRUE(m("a,b", "a,b"));  // ',' outside braces is a character
}

TEST(Glob, MalformedPatternsNameTheByte) {
  EXPECT_EQ(error_of(""), "empty pattern");
  EXPECT_EQ(error_of("a..b"), "empty node at byte 2 of pattern");
  EXPECT_EQ(error_of(".a"), "empty node at byte 0 of pattern");
  EXPECT_EQ(error_of("a."), "empty node at byte 2 of pattern");
  EXPECT_EQ(error_of("a.web[0-9"), "'[' at byte 5 is not closed in its node");
  EXPECT_EQ(error_of("a.[ab.c]"), "'[' at byte 2 is not closed in its node");
  EXPECT_EQ(error_of("a.{b,c"), "'{' at byte 2 is not closed in its node (braces cannot span a '.')");
  EXPECT_EQ(error_of("a.{b.c,d}"), "'{' at byte 2 is not closed in its node (braces cannot span a '.')");
  EXPECT_EQ(error_of("x.{a,{b,c}"), "'{' at byte 2 is not closed in its node (braces cannot span a '.')");
  EXPECT_EQ(error_of("a.[z-a]"), "empty range 'z-a' at byte 3");
  std::string deep = std::string(17, '{') + std::string(17, '}');
  EXPECT_EQ(error_of(deep), "braces nested deeper than 16 at byte 16");
  EXPECT_TRUE(GlobPattern::compile(std::string(16, '{') + "x" + std::string(16, '}')));
}

TEST(Glob, NodeMatchesPrunesLevelByLevel) {
  auto g = glob("stele.task.*.web-*");
  EXPECT_EQ(g.nodes(), 4u);
  EXPECT_TRUE(g.node_matches(0, "stele"));
  EXPECT_FALSE(g.node_matches(1, "node"));
  EXPECT_TRUE(g.node_matches(2, "any-host"));
  EXPECT_TRUE(g.node_matches(3, "web-r1"));
  EXPECT_FALSE(g.node_matches(3, "api-r1"));
  EXPECT_TRUE(g.is_literal_node(1));
  EXPECT_FALSE(g.is_literal_node(2));
}

TEST(Glob, NoBacktrackingBlowUp) {
  // A backtracking matcher takes exponential time here; the NFA does not.
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "*a";
  pattern += "b";
  auto g = glob(pattern);
  EXPECT_FALSE(g.node_matches(0, std::string(200, 'a')));
  EXPECT_TRUE(g.node_matches(0, std::string(200, 'a') + "b"));
  // Longer than the fixed scratch (128 instructions): same answers.
  std::string longp;
  for (int i = 0; i < 100; ++i) longp += "{x,a}*";
  auto lg = glob(longp);
  EXPECT_TRUE(lg.node_matches(0, std::string(100, 'a')));
  EXPECT_FALSE(lg.node_matches(0, std::string(99, 'a')));
}

TEST(Glob, CompleterQueryIsGraphiteWebs) {
  // metrics/views.py find_view, format=completer.
  EXPECT_EQ(completer_query("stele.node", false), "stele.node*");
  EXPECT_EQ(completer_query("stele.", false), "stele.*");
  EXPECT_EQ(completer_query("stele.*", false), "stele.*");
  EXPECT_EQ(completer_query("a..b", false), "a*.b*");
  EXPECT_EQ(completer_query("a...b", false), "a*..b*");  // str.replace is left to right, no overlap
  EXPECT_EQ(completer_query("", false), "*");
  EXPECT_EQ(completer_query("a.b,c.d", true), "a.{b,c}.d*");
  EXPECT_EQ(completer_query("a.{b,c}.d", true), "a.{b,c}.d*");
  EXPECT_EQ(completer_query("a.b,c.d", false), "a.b,c.d*");
  EXPECT_TRUE(glob(completer_query("stele.no", false)).matches("stele.node"));
}

// --- differential check against a brute-force reference -------------------

namespace {

// graphite-web's way, on a tiny alphabet: expand braces textually
// (expand_braces), then fnmatch each expansion with a recursive matcher.
// Patterns here use only a, b, *, ?, [ab], [!a], {..,..} -- all ASCII.
void expand_ref(const std::string& p, std::vector<std::string>& out) {
  // Find the first '{' whose alternatives hold no other '{' (innermost).
  size_t open = std::string::npos;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '{') open = i;
    if (p[i] == '}' && open != std::string::npos) {
      std::string inner = p.substr(open + 1, i - open - 1);
      size_t start = 0;
      while (true) {
        size_t comma = inner.find(',', start);
        std::string alt = inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        expand_ref(p.substr(0, open) + alt + p.substr(i + 1), out);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      return;
    }
  }
  out.push_back(p);
}

bool fnmatch_ref(const char* p, const char* s) {
  if (!*p) return !*s;
  if (*p == '*') return fnmatch_ref(p + 1, s) || (*s && fnmatch_ref(p, s + 1));
  if (!*s) return false;
  if (*p == '?') return fnmatch_ref(p + 1, s + 1);
  if (*p == '[') {
    bool neg = p[1] == '!';
    const char* q = p + 1 + neg;
    bool in = false;
    for (; *q != ']'; ++q) in |= *q == *s;
    return in != neg && fnmatch_ref(q + 1, s + 1);
  }
  return *p == *s && fnmatch_ref(p + 1, s + 1);
}

std::string random_pattern(std::mt19937& rng, int depth) {
  static const char* atoms[] = {"a", "b", "*", "?", "[ab]", "[!a]", "a", "b"};
  std::string out;
  int n = 1 + rng() % 4;
  for (int i = 0; i < n; ++i) {
    if (depth < 2 && rng() % 5 == 0) {
      out += '{';
      int k = 1 + rng() % 3;
      for (int j = 0; j < k; ++j) out += (j ? "," : "") + random_pattern(rng, depth + 1);
      out += '}';
    } else {
      out += atoms[rng() % 8];
    }
  }
  return out;
}

}  // namespace

TEST(Glob, AgreesWithBraceExpansionPlusFnmatch) {
  std::mt19937 rng(2003);
  std::vector<std::string> names;
  for (int len = 0; len <= 5; ++len)
    for (int bits = 0; bits < (1 << len); ++bits) {
      std::string s;
      for (int i = 0; i < len; ++i) s += (bits >> i & 1) ? 'b' : 'a';
      names.push_back(s);
    }
  for (int round = 0; round < 400; ++round) {
    std::string p = random_pattern(rng, 0);
    auto g = GlobPattern::compile(p);
    ASSERT_TRUE(g) << p;
    std::vector<std::string> variants;
    expand_ref(p, variants);
    for (const std::string& n : names) {
      bool want = false;
      for (const std::string& v : variants) want |= fnmatch_ref(v.c_str(), n.c_str());
      ASSERT_EQ(g->node_matches(0, n), want) << "pattern " << p << " name '" << n << "'";
    }
  }
}
