// Graphite metric-path globs, as /render targets and /metrics/find queries
// use them, pure. graphite-web (webapp/graphite/finders/standard.py) splits
// the pattern on '.' and matches each node against one level of the metric
// tree with Python's fnmatch after brace expansion (finders/__init__.py
// expand_braces); GlobPattern compiles the same rules once, node by node:
//
//   *        any run of characters within one node (never a '.'); "**" is
//            the same as "*" (graphite-web's multi-level "**" is not
//            supported)
//   ?        exactly one character
//   [abc] [a-z] [!a-z]   one character in / not in the set (fnmatch: '!'
//            negates, '^' is literal, a ']' first in the set and a '-'
//            first or last are literal)
//   {a,b,c}  any of the alternatives, each itself a pattern (wildcards,
//            classes and nested braces allowed, empty alternatives too:
//            "x{,y}" is "x" or "xy"; "{a}" is "a")
//   \c       c literally (so "\{", "\*", "\,")
//
// Characters are Unicode code points of UTF-8 text (as Python matches str);
// a byte that is not valid UTF-8 is one character of its own. Matching is
// case-sensitive (fnmatch on POSIX) and always covers the whole node.
//
// Differences from graphite-web, all on malformed input, which it matches
// literally or in odd ways: an unclosed '[' or '{', an empty node ("a..b"),
// an empty pattern, a reversed range ("[z-a]") and braces nested deeper than
// 16 are errors naming the byte offset (0-based); '.' always ends a node, so
// braces and classes cannot span nodes; a '\' with nothing after it in its
// node is ignored (graphite-web removes every backslash before matching).
// A stray ']' or '}' is literal, as there.
//
// Thread-safety: a compiled GlobPattern is immutable; any number of threads
// may match against it at once. matches() does not allocate unless a node's
// compiled program is longer than 128 instructions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stele::metrics {

class GlobPattern {
 public:
  // Most literal names a node's braces may expand to before the node is
  // matched by its program instead of by string comparison.
  static constexpr size_t kMaxLiterals = 64;

  static Result<GlobPattern> compile(std::string_view pattern);

  // The whole dotted name: as many nodes as the pattern, each matching.
  bool matches(std::string_view name) const;

  size_t nodes() const { return nodes_.size(); }
  // Node i (0-based, i < nodes()) against one node of a name (no dots), so a
  // tree walk can prune level by level.
  bool node_matches(size_t i, std::string_view node) const;
  // Node i matches exactly one string (no wildcards, no alternatives left
  // after expansion): node_literals(i)[0].
  bool is_literal_node(size_t i) const { return nodes_[i].literals.size() == 1; }
  // Node i matches exactly these strings (sorted, distinct) when it has no
  // wildcards and expands to at most kMaxLiterals ("cpu", "{cpu,mem}",
  // "web-{1,2}"); empty otherwise. A tree walk can look these up directly.
  const std::vector<std::string>& node_literals(size_t i) const { return nodes_[i].literals; }
  // Every node is literal: the pattern names one path, literal_path().
  bool is_literal() const;
  std::string literal_path() const;

  const std::string& text() const { return text_; }

  // One compiled instruction (Thompson NFA over code points).
  struct Inst {
    enum Op : uint8_t { kChar, kAny, kClass, kSplit, kJmp, kMatch } op;
    uint32_t a = 0;  // kChar: code point; kClass: class index; kSplit/kJmp: target
    uint32_t b = 0;  // kSplit: second target
  };
  struct CharClass {
    uint64_t ascii[2] = {0, 0};
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // beyond ASCII, inclusive
    bool negate = false;
    bool contains(uint32_t cp) const;
  };

 private:
  struct Node {
    enum Kind : uint8_t { kLiteral, kAnything, kProgram } kind = kProgram;
    std::vector<std::string> literals;
    std::vector<Inst> prog;
    std::vector<CharClass> classes;
  };
  static bool run(const Node& n, std::string_view s);

  std::string text_;
  std::vector<Node> nodes_;
};

// graphite-web's find_view with format=completer (metrics/views.py): "a..b"
// becomes "a*.b", a '*' is appended unless the query ends with one, and with
// automatic_variants a node holding ',' but no '{' becomes "{...}".
std::string completer_query(std::string_view query, bool automatic_variants);

}  // namespace stele::metrics
