// Target parser (graphite-web 1.1.8 grammar_unsafe.py), canonical printer
// and equivalence. The function table and bind() are in render_functions.cpp.
//
// The parser is recursive descent that backtracks only where pyparsing does:
// a call that fails is retried as a path ("f(1 2)" -> the path "f", which
// then fails on '('), a keyword argument that fails is retried as a
// positional one ("f(x, a=)" has the path "a="), a piped call that fails
// ends the pipe. Failures record what was expected at the furthest position
// reached; that is the error reported.
#include "metrics/render_target.h"

#include <locale.h>
#include <stdlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>

namespace stele::metrics {
namespace {

constexpr std::string_view kSymbols = "(){},.'\"\\|";  // grammar_unsafe.py `symbols`

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ident_start(char c) { return is_alpha(c) || c == '_'; }
bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }
bool is_keyword_char(char c) { return is_ident(c) || c == '$'; }  // pyparsing Keyword.DEFAULT_KEYWORD_CHARS
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// printables minus symbols (UTF8_METRICS = False).
bool is_path_char(char c) { return c > ' ' && c < 127 && kSymbols.find(c) == std::string_view::npos; }
bool is_escapable(char c) { return c != 0 && (kSymbols.find(c) != std::string_view::npos || c == '='); }

constexpr std::string_view kKeywords[] = {"true", "false", "none", "inf"};

// Length of a caseless keyword at the start of `s` (pyparsing CaselessKeyword:
// not followed by a keyword character), else 0.
size_t keyword_at(std::string_view s, std::string_view* which = nullptr) {
  for (std::string_view kw : kKeywords) {
    if (s.size() < kw.size()) continue;
    bool same = true;
    for (size_t i = 0; i < kw.size() && same; ++i) same = (s[i] | 0x20) == kw[i];
    if (!same || (s.size() > kw.size() && is_keyword_char(s[kw.size()]))) continue;
    if (which) *which = kw;
    return kw.size();
  }
  return 0;
}

// Length of the longest -?\d+(\.\d+)?([eE]-?\d+)? at the start of `s`; 0 if none.
size_t number_at(std::string_view s, bool* integer = nullptr) {
  size_t i = s.starts_with('-') ? 1 : 0, digits = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == digits) return 0;
  bool whole = true;
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
    whole = false, i += 2;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] | 0x20) == 'e') {
    size_t j = i + 1 + (i + 1 < s.size() && s[i + 1] == '-');
    if (j < s.size() && is_digit(s[j])) {
      whole = false, i = j;
      while (i < s.size() && is_digit(s[i])) ++i;
    }
  }
  if (integer) *integer = whole;
  return i;
}

// strtod in the C locale: correctly rounded, overflow to +-inf, like Python's float().
double c_strtod(std::string_view s) {
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t(0));
  std::string z(s);
  return strtod_l(z.c_str(), nullptr, c_locale);
}

std::string describe_at(std::string_view in, size_t at) {
  if (at >= in.size()) return "end of target";
  const unsigned char c = in[at];
  if (c > ' ' && c < 127) return "'" + std::string(1, char(c)) + "'";
  if (c == ' ') return "' '";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
  return buf;
}

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  Result<Expr> run() {
    if (in_.size() > kMaxTargetBytes)
      return fail("target longer than " + std::to_string(kMaxTargetBytes) + " bytes", 400);
    skip_ws();
    if (pos_ == in_.size()) return fail("empty target", 400);
    uint32_t root;
    const size_t start = pos_;
    if (!parse_expression(root)) {
      expect(start, "a metric path or function call");
      return error();
    }
    skip_ws();
    if (pos_ != in_.size()) {
      expect(pos_, "end of target");
      return error();
    }
    e_.root = root;
    return std::move(e_);
  }

 private:
  struct Mark {
    size_t pos, nodes, children, text;
  };
  Mark mark() const { return {pos_, e_.nodes.size(), e_.children.size(), e_.text.size()}; }
  void restore(const Mark& m) {
    pos_ = m.pos;
    e_.nodes.resize(m.nodes), depth_of_.resize(m.nodes);
    e_.children.resize(m.children), e_.text.resize(m.text);
  }

  char peek() const { return pos_ < in_.size() ? in_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < in_.size() && is_ws(in_[pos_])) ++pos_;
  }

  void expect(size_t at, std::string_view what) {
    if (at < fail_at_) return;
    if (at > fail_at_ || expected_.empty()) fail_at_ = at, expected_.clear();
    if (std::find(expected_.begin(), expected_.end(), what) == expected_.end()) expected_.emplace_back(what);
  }
  tl::unexpected<Error> error() const {
    if (fatal_) return fail(*fatal_);
    std::string m = "position " + std::to_string(fail_at_ + 1) + ": expected ";
    for (size_t i = 0; i < expected_.size(); ++i) m += (i ? " or " : "") + expected_[i];
    return fail(m + ", found " + describe_at(in_, fail_at_), 400);
  }
  bool fatal(size_t at, std::string why) {
    if (!fatal_) fatal_ = Error{"position " + std::to_string(at + 1) + ": " + why, {}, 400};
    return false;
  }

  TextRef put(std::string_view s) {
    TextRef r{uint32_t(e_.text.size()), uint32_t(s.size())};
    e_.text.append(s);
    return r;
  }
  uint32_t add(NodeKind kind, size_t at) {
    Node n;
    n.kind = kind;
    n.pos = uint32_t(at + 1);
    e_.nodes.push_back(n);
    depth_of_.push_back(0);
    return uint32_t(e_.nodes.size() - 1);
  }

  // expression := (call | path) ('|' call)*
  bool parse_expression(uint32_t& out) {
    if (!parse_call(kNoNode, out)) {
      if (fatal_ || !parse_path(out)) return false;
    }
    for (;;) {
      const Mark m = mark();
      skip_ws();
      if (peek() != '|') {
        restore(m);
        return true;
      }
      ++pos_;
      skip_ws();
      uint32_t call;
      if (!parse_call(out, call)) {
        if (fatal_) return false;
        expect(pos_, "a function call after '|'");
        restore(m);
        return true;
      }
      out = call;
    }
  }

  // call := name '(' [args] ')'; `piped` (if any) becomes the first argument.
  bool parse_call(uint32_t piped, uint32_t& out) {
    const Mark m = mark();
    size_t n = 0;
    while (pos_ + n < in_.size() && (n ? is_ident(in_[pos_ + n]) : is_ident_start(in_[pos_ + n]))) ++n;
    if (n == 0) return false;
    const size_t start = pos_;
    pos_ += n;
    skip_ws();
    if (peek() != '(') {
      expect(pos_, "'('");
      restore(m);
      return false;
    }
    if (++depth_ > kMaxTargetDepth) return fatal(pos_, "calls nested deeper than " + std::to_string(kMaxTargetDepth));
    ++pos_;
    std::vector<uint32_t> args;
    if (piped != kNoNode) args.push_back(piped);
    const bool ok = parse_args(args);
    --depth_;
    if (!ok) {
      restore(m);
      return false;
    }
    uint16_t depth = 0;
    for (uint32_t a : args) depth = std::max<uint16_t>(depth, depth_of_[a]);
    if (depth + 1 > kMaxTargetDepth) return fatal(start, "calls nested deeper than " + std::to_string(kMaxTargetDepth));
    out = add(NodeKind::kCall, start);
    depth_of_[out] = uint16_t(depth + 1);
    Node& call = e_.nodes[out];
    call.text = put(in_.substr(start, n));
    call.first = uint32_t(e_.children.size());
    call.count = uint32_t(args.size());
    e_.children.insert(e_.children.end(), args.begin(), args.end());
    return true;
  }

  // After '(': [arg (',' arg)* (',' kwarg)*] ')'. A keyword argument needs a
  // positional one before it, as in graphite's grammar.
  bool parse_args(std::vector<uint32_t>& args) {
    skip_ws();
    if (peek() == ')') return ++pos_, true;
    bool keywords = false, first = true;
    for (;;) {
      const size_t item = pos_;
      uint32_t a;
      if (parse_kwarg(a)) {
        if (first) {
          expect(item, "a positional argument before keyword arguments");
          return false;
        }
        keywords = true;
      } else if (fatal_) {
        return false;
      } else if (keywords) {
        expect(item, "a keyword argument (name=value)");
        return false;
      } else if (!parse_arg(a)) {
        expect(item, "an argument");
        return false;
      }
      args.push_back(a);
      first = false;
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
        continue;
      }
      if (peek() == ')') return ++pos_, true;
      expect(pos_, "')'");
      expect(pos_, "','");
      return false;
    }
  }

  // kwarg := name '=' arg
  bool parse_kwarg(uint32_t& out) {
    const Mark m = mark();
    size_t n = 0;
    while (pos_ + n < in_.size() && (n ? is_ident(in_[pos_ + n]) : is_ident_start(in_[pos_ + n]))) ++n;
    if (n == 0) return false;
    const size_t key_at = pos_;
    pos_ += n;
    skip_ws();
    if (peek() != '=') return restore(m), false;
    ++pos_;
    skip_ws();
    const size_t value_at = pos_;
    if (!parse_arg(out)) {
      if (!fatal_) expect(value_at, "an argument");
      restore(m);
      return false;
    }
    TextRef key = put(in_.substr(key_at, n));
    e_.nodes[out].key = key;
    e_.nodes[out].key_pos = uint32_t(key_at + 1);
    return true;
  }

  // arg := keyword | number | string | expression (pyparsing's order).
  bool parse_arg(uint32_t& out) {
    const std::string_view rest = in_.substr(pos_);
    std::string_view kw;
    if (size_t n = keyword_at(rest, &kw)) {
      out = add(kw == "none" ? NodeKind::kNone : kw == "inf" ? NodeKind::kNumber : NodeKind::kBool, pos_);
      Node& node = e_.nodes[out];
      node.boolean = kw == "true";
      if (kw == "inf") node.number = INFINITY;
      pos_ += n;
      return true;
    }
    bool integer = false;
    if (size_t n = number_at(rest, &integer); n && number_followed_ok(pos_ + n)) {
      out = add(NodeKind::kNumber, pos_);
      Node& node = e_.nodes[out];
      node.number = c_strtod(rest.substr(0, n));
      if (integer && node.number == 0) node.number = 0;      // int("-0") is 0
      node.integer = integer && std::isfinite(node.number);  // an int too big for a double is inf
      pos_ += n;
      return true;
    }
    if (peek() == '\'' || peek() == '"') return parse_string(out);
    return parse_expression(out);
  }

  // pyparsing: number + FollowedBy(",") ^ FollowedBy(")") (whitespace skipped).
  bool number_followed_ok(size_t at) const {
    while (at < in_.size() && is_ws(in_[at])) ++at;
    return at < in_.size() && (in_[at] == ',' || in_[at] == ')');
  }

  // pyparsing quotedString: Regex(q(?:[^q\n\r\\]|qq|\\(?:[^x]|x[0-9a-fA-F]+))*) + q.
  bool parse_string(uint32_t& out) {
    const char q = peek();
    size_t p = pos_ + 1;
    while (p < in_.size()) {
      const char c = in_[p];
      if (c != q && c != '\n' && c != '\r' && c != '\\') {
        ++p;
      } else if (c == q && p + 1 < in_.size() && in_[p + 1] == q) {
        p += 2;
      } else if (c == '\\' && p + 1 < in_.size() && in_[p + 1] != 'x') {
        p += 2;
      } else if (c == '\\' && p + 2 < in_.size() && in_[p + 1] == 'x' && is_hex(in_[p + 2])) {
        p += 3;
        while (p < in_.size() && is_hex(in_[p])) ++p;
      } else {
        break;
      }
    }
    if (p >= in_.size() || in_[p] != q) {
      expect(p, "a closing quote");
      return false;
    }
    out = add(NodeKind::kString, pos_);
    e_.nodes[out].quote = q;
    const std::string_view raw = in_.substr(pos_ + 1, p - pos_ - 1);
    e_.nodes[out].text = raw.find('\t') == std::string_view::npos ? put(raw) : put(expand_tabs(pos_ + 1, p));
    pos_ = p + 1;
    return true;
  }

  // pyparsing's parseString() first runs str.expandtabs() on the whole
  // target; only a string's value can show it. Columns count code points
  // (UTF-8 continuation bytes add none) from the last CR or LF. The column
  // reached is remembered, so many strings cost one pass over the target.
  static size_t advance_column(size_t col, char c) {
    if (c == '\t') return col + 8 - col % 8;
    if (c == '\n' || c == '\r') return 0;
    return (c & 0xC0) == 0x80 ? col : col + 1;
  }
  std::string expand_tabs(size_t begin, size_t end) {
    if (begin < column_at_) column_at_ = 0, column_ = 0;
    for (; column_at_ < begin; ++column_at_) column_ = advance_column(column_, in_[column_at_]);
    std::string out;
    for (size_t i = begin; i < end; ++i) {
      const size_t next = advance_column(column_, in_[i]);
      if (in_[i] == '\t') {
        out.append(next - column_, ' ');
      } else {
        out += in_[i];
      }
      column_ = next;
    }
    column_at_ = end;
    return out;
  }

  // path := element ('.' element)*
  bool parse_path(uint32_t& out) {
    const size_t start = pos_;
    size_t p = element_end(pos_);
    if (p == pos_) return false;
    while (p < in_.size() && in_[p] == '.') {
      size_t q = element_end(p + 1);
      if (q == p + 1) {
        expect(p + 1, "a path node after '.'");
        break;
      }
      p = q;
    }
    out = add(NodeKind::kPath, start);
    e_.nodes[out].text = put(in_.substr(start, p - start));
    pos_ = p;
    return true;
  }

  // element := (chars | '{' chars (',' chars)* '}')+; returns where it ends.
  size_t element_end(size_t p) {
    for (;;) {
      size_t q = chars_end(p);
      if (q == p && p < in_.size() && in_[p] == '{') q = enum_end(p);
      if (q == p) return p;
      p = q;
    }
  }

  size_t enum_end(size_t open) {
    size_t p = open + 1;
    for (;;) {
      size_t q = chars_end(p);
      if (q == p) {
        expect(p, "a name inside '{}'");
        return open;
      }
      p = q;
      if (p < in_.size() && in_[p] == '}') return p + 1;
      if (p >= in_.size() || in_[p] != ',') {
        expect(p, "','");
        expect(p, "'}'");
        return open;
      }
      ++p;
    }
  }

  // chars := (path char | '\' escapable)+
  size_t chars_end(size_t p) {
    for (;;) {
      if (p < in_.size() && is_path_char(in_[p])) {
        ++p;
      } else if (p + 1 < in_.size() && in_[p] == '\\' && is_escapable(in_[p + 1])) {
        p += 2;
      } else {
        if (p < in_.size() && in_[p] == '\\') expect(p + 1, "one of (){},.'\"\\|= after '\\'");
        return p;
      }
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  Expr e_;
  std::vector<uint16_t> depth_of_;  // nesting depth of each node's subtree
  int depth_ = 0;
  size_t column_at_ = 0, column_ = 0;  // expand_tabs(): the column at in_[column_at_]
  size_t fail_at_ = 0;
  std::vector<std::string> expected_;
  std::optional<Error> fatal_;
};

// --- printer ---

bool full_number(std::string_view s) { return !s.empty() && number_at(s) == s.size(); }

// Shortest text that reads back as the same double, laid out as Python's
// repr() does (fixed for exponents -4..15, else d.ddde-XX), but with no '+'
// in the exponent and always a '.' or 'e', since the grammar has no "1e+5"
// and "1" would be an integer.
std::string format_number(const Node& n) {
  if (std::isinf(n.number)) return n.number > 0 ? "inf" : "-1e999";
  char buf[400];
  if (n.integer) {
    std::snprintf(buf, sizeof buf, "%.0f", n.number);
    return buf;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, n.number, std::chars_format::scientific);
  const std::string_view sci(buf, r.ptr - buf);  // [-]d[.ddd]e[+-]XX
  const size_t e = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string digits;
  for (char c : sci.substr(negative, e - negative))
    if (c != '.') digits += c;
  int exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exp);
  std::string out = negative ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(size_t(-exp - 1), '0') + digits;
    } else {
      if (digits.size() <= size_t(exp)) digits.append(size_t(exp) + 1 - digits.size(), '0');
      out += digits.substr(0, size_t(exp) + 1) + ".";
      out += digits.size() > size_t(exp) + 1 ? digits.substr(size_t(exp) + 1) : "0";
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  std::snprintf(buf, sizeof buf, "e%s%02d", exp < 0 ? "-" : "", exp < 0 ? -exp : exp);
  return out + buf;
}

// Prints each call nested, f(g(x)), unless that would read differently: a
// path "1" or "true", or a call named "inf", written as an argument is a
// literal, so such a node (which only a pipe can produce) is written as a
// pipe's head again: 1|g(). Whether a node can be written in argument
// position is memoised, keeping printing linear in the size of the tree.
class Printer {
 public:
  explicit Printer(const Expr& e) : e_(e), arg_ok_(e.nodes.size(), -1) {}

  void print(uint32_t i, bool root, std::string& out) const {
    const Node& n = e_.node(i);
    switch (n.kind) {
      case NodeKind::kPath: {
        std::string_view raw = e_.text_of(n);
        // "a=b" as an argument would be a keyword argument: escape its '='.
        size_t id = 0;
        while (id < raw.size() && (id ? is_ident(raw[id]) : is_ident_start(raw[id]))) ++id;
        if (!root && id > 0 && id < raw.size() && raw[id] == '=') {
          out.append(raw.substr(0, id)).append("\\").append(raw.substr(id));
        } else {
          out.append(raw);
        }
        return;
      }
      case NodeKind::kCall: return call(n, root, out);
      case NodeKind::kNumber: out += format_number(n); return;
      case NodeKind::kString: out.append(1, n.quote).append(e_.text_of(n)).append(1, n.quote); return;
      case NodeKind::kBool: out += n.boolean ? "true" : "false"; return;
      case NodeKind::kNone: out += "None"; return;
    }
  }

 private:
  // Can node i be written at the root (root), as an argument, or as a
  // pipe's head (head) there?
  bool ok(uint32_t i, bool root, bool head) const {
    const Node& n = e_.node(i);
    switch (n.kind) {
      case NodeKind::kPath:
        if (root) return true;
        return keyword_at(e_.text_of(n)) == 0 && (head || !full_number(e_.text_of(n)));
      case NodeKind::kCall:
        if (root) return nested_ok(n, true) || pipe_ok(n, true);
        if (arg_ok_[i] < 0) arg_ok_[i] = nested_ok(n, false) || pipe_ok(n, false);
        return arg_ok_[i] != 0;
      default: return !head;
    }
  }

  bool nested_ok(const Node& call, bool root) const {
    if (!root && keyword_at(e_.text_of(call)) != 0) return false;
    auto args = e_.args(call);
    if (!args.empty() && e_.is_keyword(e_.node(args[0]))) return false;  // keywords need a positional first
    for (uint32_t a : args)
      if (!ok(a, false, false)) return false;
    return true;
  }

  bool pipe_ok(const Node& call, bool root) const {
    auto args = e_.args(call);
    if (args.empty() || e_.is_keyword(e_.node(args[0]))) return false;
    if (args.size() > 1 && e_.is_keyword(e_.node(args[1]))) return false;
    if (!ok(args[0], root, true)) return false;
    for (size_t k = 1; k < args.size(); ++k)
      if (!ok(args[k], false, false)) return false;
    return true;
  }

  void call(const Node& n, bool root, std::string& out) const {
    auto args = e_.args(n);
    size_t from = 0;
    if (!nested_ok(n, root) && pipe_ok(n, root)) {
      print(args[0], root, out);
      out += '|';
      from = 1;
    }
    out.append(e_.text_of(n)) += '(';
    for (size_t k = from; k < args.size(); ++k) {
      if (k > from) out += ',';
      const Node& a = e_.node(args[k]);
      if (e_.is_keyword(a)) out.append(e_.key_of(a)) += '=';
      print(args[k], false, out);
    }
    out += ')';
  }

  const Expr& e_;
  mutable std::vector<int8_t> arg_ok_;  // -1 not yet known
};

bool same_node(const Expr& a, uint32_t i, const Expr& b, uint32_t j) {
  const Node &x = a.node(i), &y = b.node(j);
  if (x.kind != y.kind || a.key_of(x) != b.key_of(y)) return false;
  switch (x.kind) {
    case NodeKind::kPath: return path_pattern(a.text_of(x)) == path_pattern(b.text_of(y));
    case NodeKind::kCall: {
      if (a.text_of(x) != b.text_of(y) || x.count != y.count) return false;
      auto xs = a.args(x), ys = b.args(y);
      for (size_t k = 0; k < xs.size(); ++k)
        if (!same_node(a, xs[k], b, ys[k])) return false;
      return true;
    }
    case NodeKind::kNumber:
      return x.integer == y.integer && x.number == y.number && std::signbit(x.number) == std::signbit(y.number);
    case NodeKind::kString: return x.quote == y.quote && a.text_of(x) == b.text_of(y);
    case NodeKind::kBool: return x.boolean == y.boolean;
    case NodeKind::kNone: return true;
  }
  return false;
}

}  // namespace

Result<Expr> parse_target(std::string_view target) { return Parser(target).run(); }

std::string path_pattern(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    out += raw[i];
  }
  return out;
}

std::string to_string(const Expr& e) {
  std::string out;
  if (e.root != kNoNode) Printer(e).print(e.root, true, out);
  return out;
}

bool equivalent(const Expr& a, const Expr& b) {
  if (a.root == kNoNode || b.root == kNoNode) return a.root == b.root;
  return same_node(a, a.root, b, b.root);
}

}  // namespace stele::metrics
