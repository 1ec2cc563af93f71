// Render targets: the `target` parameter of /render parsed into an AST exactly
// as graphite-web 1.1.8 parses it (webapp/graphite/render/grammar_unsafe.py,
// a pyparsing grammar, with parseAll), printed back canonically and compared.
// The table of render functions and bind(), which checks a parsed target's
// calls against it, are in render_functions.h. Evaluation is a later step.
//
// Grammar (whitespace = space, tab, CR, LF, allowed between tokens, not
// inside a path, number or string):
//   target     := expression EOF
//   expression := (call | path) ('|' call)*          pipes: x|f(a) is f(x, a)
//   call       := name '(' [args] ')'                 name = [A-Za-z_][A-Za-z0-9_]*
//   args       := arg (',' arg)* (',' kwarg)*  |  nothing
//   kwarg      := name '=' arg                         only after a positional arg
//   arg        := true | false | None | inf            caseless keywords
//               | number                               only when ',' or ')' follows
//               | 'string' | "string"
//               | expression
//   number     := -?\d+ (.\d+)? ([eE]-?\d+)?           "1e+5", ".5", "1." are paths
//   string     := raw text between the quotes, kept as written (graphite does
//                 not unescape): no raw CR/LF; \ followed by any character but
//                 'x', or \x and hex digits; a doubled quote stays doubled;
//                 a tab becomes spaces to the next multiple of 8 columns
//                 (pyparsing expands tabs in the whole target first)
//   path       := element ('.' element)*
//   element    := (chars | '{' chars (',' chars)* '}')+
//   chars      := (printable ASCII but ( ) { } , . ' " \ | ; or '\' followed
//                 by one of those or '=')+
// So a path may hold * ? [a-z] - : # = $ and the like; `{a,b}` alternatives
// hold no '.' and no empty alternative. Non-ASCII bytes are not path
// characters (graphite's default UTF8_METRICS = False). Where graphite-web
// parses a prefix and silently drops the rest ("a.b)" renders a.b), Stele
// answers 400: the whole target must parse.
//
// Not supported: template(...) and seriesByTag(...) parse as ordinary calls
// and bind() (render_functions.h) refuses them as unknown functions.
//
// Errors are Result errors with code 400 naming the 1-based byte position:
// "position 14: expected ')' or ',', found 'c'". Positions count bytes of the
// target as given (after URL decoding). Limits: kMaxTargetBytes, and
// kMaxTargetDepth calls nested (a pipe nests too: x|f()|g() is g(f(x))).
// Every bound is checked as it is parsed; parsing is linear in the target.
//
// Everything here is pure and thread-safe; an Expr is a plain value.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stele::metrics {

enum class NodeKind : uint8_t { kPath, kCall, kNumber, kString, kBool, kNone };

inline constexpr uint32_t kNoNode = std::numeric_limits<uint32_t>::max();
inline constexpr size_t kMaxTargetBytes = 1 << 20;
inline constexpr int kMaxTargetDepth = 100;  // nested calls

// [offset, offset + size) of Expr::text.
struct TextRef {
  uint32_t offset = 0, size = 0;
};

struct Node {
  NodeKind kind = NodeKind::kPath;
  bool integer = false;  // kNumber: written as an integer (graphite makes it an int)
  bool boolean = false;  // kBool
  char quote = 0;        // kString: the quote it was written with
  uint32_t pos = 0;      // 1-based byte position in the target
  // kPath: the pattern as written, escapes included (path_pattern() removes
  // them); kString: the text between the quotes as written, which is
  // graphite's value; kCall: the function name.
  TextRef text;
  TextRef key;                    // a keyword argument's name, else empty
  uint32_t key_pos = 0;           // its position
  uint32_t first = 0, count = 0;  // kCall: arguments are Expr::children[first, first + count)
  double number = 0;              // kNumber (an integer too; "inf" and overflow are infinite)
};

// One parsed target: nodes in one vector, each call's arguments as a run of
// node indices in `children` (positional first, then keyword arguments in
// the order written), names and texts in one string.
struct Expr {
  std::vector<Node> nodes;
  std::vector<uint32_t> children;
  std::string text;
  uint32_t root = kNoNode;

  const Node& node(uint32_t i) const { return nodes[i]; }
  std::string_view view(TextRef r) const { return std::string_view(text).substr(r.offset, r.size); }
  std::string_view text_of(const Node& n) const { return view(n.text); }
  std::string_view key_of(const Node& n) const { return view(n.key); }
  bool is_keyword(const Node& n) const { return n.key.size > 0; }
  std::span<const uint32_t> args(const Node& call) const {
    return std::span<const uint32_t>(children).subspan(call.first, call.count);
  }
};

// Parses one target. An empty or all-whitespace target is an error (graphite
// skips such targets; callers should too).
Result<Expr> parse_target(std::string_view target);

// The glob graphite hands its finder for a path as written: each escaping
// backslash dropped ("a\(b" -> "a(b").
std::string path_pattern(std::string_view raw);

// Canonical text of a parsed target: no whitespace, ',' between arguments,
// numbers in shortest round-trip form, keywords as true/false/None/inf,
// strings with their own quotes, pipes only where nested calls cannot say
// it (a path like "1" or "true" piped into a call). parse_target() of it
// gives an equivalent() Expr.
std::string to_string(const Expr& e);

// Same tree, same function names, keyword names, literals and path patterns
// (path_pattern); positions and escapes that do not change a pattern are
// ignored.
bool equivalent(const Expr& a, const Expr& b);

}  // namespace stele::metrics
