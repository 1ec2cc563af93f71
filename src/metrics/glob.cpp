#include "metrics/glob.h"

#include <algorithm>
#include <array>
#include <optional>

namespace stele::metrics {

namespace {

constexpr int kMaxDepth = 16;
constexpr uint32_t kRawByte = 0x110000;  // + byte: a byte that is not valid UTF-8

// Decodes the character at s[i]: a valid UTF-8 sequence is its code point, any
// other byte is kRawByte + byte on its own. Returns the length used.
size_t decode(std::string_view s, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t n;
  uint32_t v, min;
  if (c >= 0xc2 && c <= 0xdf) n = 2, v = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) n = 3, v = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, v = c & 0x07, min = 0x10000;
  else n = 0, v = 0, min = 0;
  bool ok = n > 0 && i + n <= s.size();
  for (size_t k = 1; ok && k < n; ++k) {
    ok = (b(i + k) & 0xc0) == 0x80;
    v = v << 6 | (b(i + k) & 0x3f);
  }
  if (ok && v >= min && v <= 0x10ffff && !(v >= 0xd800 && v <= 0xdfff)) {
    cp = v;
    return n;
  }
  cp = kRawByte + c;
  return 1;
}

void append_char(std::string& out, uint32_t cp) {
  if (cp >= kRawByte) out += char(cp - kRawByte);
  else if (cp < 0x80) out += char(cp);
  else if (cp < 0x800) out += char(0xc0 | cp >> 6), out += char(0x80 | (cp & 0x3f));
  else if (cp < 0x10000)
    out += char(0xe0 | cp >> 12), out += char(0x80 | (cp >> 6 & 0x3f)), out += char(0x80 | (cp & 0x3f));
  else
    out += char(0xf0 | cp >> 18), out += char(0x80 | (cp >> 12 & 0x3f)), out += char(0x80 | (cp >> 6 & 0x3f)),
        out += char(0x80 | (cp & 0x3f));
}

// Parse tree of one node.
struct Item {
  enum Kind : uint8_t { kChar, kAny, kStar, kClass, kAlt } kind;
  uint32_t value = 0;                  // kChar: code point; kClass: class index
  std::vector<std::vector<Item>> alts = {};  // kAlt
};
using Seq = std::vector<Item>;

class NodeParser {
 public:
  NodeParser(std::string_view node, size_t base, std::vector<GlobPattern::CharClass>& classes)
      : s_(node), base_(base), classes_(classes) {}

  Result<Seq> parse() {
    Seq seq = sequence(0);
    if (!error_.empty()) return fail(error_, 400);
    return seq;
  }

 private:
  // Items up to the end of the node or, inside braces (depth > 0), up to the
  // ',' or '}' that ends this alternative.
  Seq sequence(int depth) {
    Seq seq;
    while (pos_ < s_.size() && error_.empty()) {
      char c = s_[pos_];
      if (depth > 0 && (c == ',' || c == '}')) break;
      if (c == '*') {
        ++pos_;
        if (seq.empty() || seq.back().kind != Item::kStar) seq.push_back(Item{Item::kStar});
      } else if (c == '?') {
        ++pos_;
        seq.push_back(Item{Item::kAny});
      } else if (c == '[') {
        seq.push_back(char_class());
      } else if (c == '{') {
        seq.push_back(braces(depth + 1));
      } else if (c == '\\' && pos_ + 1 == s_.size()) {
        ++pos_;  // escapes nothing: dropped, as graphite-web drops every '\'
      } else {
        seq.push_back(Item{Item::kChar, literal()});
      }
    }
    return seq;
  }

  // One literal character at pos_, after an optional '\'.
  uint32_t literal() {
    if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
    uint32_t cp;
    pos_ += decode(s_, pos_, cp);
    return cp;
  }

  Item braces(int depth) {
    size_t open = pos_++;
    Item alt{Item::kAlt};
    if (depth > kMaxDepth) {
      error_ = "braces nested deeper than " + std::to_string(kMaxDepth) + " at byte " + std::to_string(base_ + open);
      return alt;
    }
    while (error_.empty()) {
      alt.alts.push_back(sequence(depth));
      if (!error_.empty()) break;
      if (pos_ >= s_.size()) {
        error_ = "'{' at byte " + std::to_string(base_ + open) + " is not closed in its node (braces cannot span a '.')";
        break;
      }
      if (s_[pos_++] == '}') break;  // else ',': next alternative
    }
    return alt;
  }

  Item char_class() {
    size_t open = pos_++;
    GlobPattern::CharClass cc;
    if (pos_ < s_.size() && s_[pos_] == '!') cc.negate = true, ++pos_;
    bool first = true;
    while (true) {
      if (pos_ >= s_.size()) {
        error_ = "'[' at byte " + std::to_string(base_ + open) + " is not closed in its node";
        break;
      }
      if (s_[pos_] == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      size_t at = pos_;
      uint32_t lo = literal(), hi = lo;
      if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
        ++pos_;
        hi = literal();
        if (hi < lo) {
          error_ = "empty range '" + std::string(s_.substr(at, pos_ - at)) + "' at byte " + std::to_string(base_ + at);
          break;
        }
      }
      add_range(cc, lo, hi);
    }
    classes_.push_back(std::move(cc));
    return Item{Item::kClass, uint32_t(classes_.size() - 1)};
  }

  static void add_range(GlobPattern::CharClass& cc, uint32_t lo, uint32_t hi) {
    for (uint32_t c = lo; c <= hi && c < 0x80; ++c) cc.ascii[c >> 6] |= uint64_t(1) << (c & 63);
    if (hi >= 0x80) cc.ranges.emplace_back(std::max<uint32_t>(lo, 0x80), hi);
  }

  std::string_view s_;
  size_t base_;
  std::vector<GlobPattern::CharClass>& classes_;
  size_t pos_ = 0;
  std::string error_;
};

using Inst = GlobPattern::Inst;

void emit(const Seq& seq, std::vector<Inst>& prog) {
  for (const Item& it : seq) {
    switch (it.kind) {
      case Item::kChar: prog.push_back({Inst::kChar, it.value}); break;
      case Item::kAny: prog.push_back({Inst::kAny}); break;
      case Item::kClass: prog.push_back({Inst::kClass, it.value}); break;
      case Item::kStar: {
        uint32_t l = uint32_t(prog.size());
        prog.push_back({Inst::kSplit, l + 1, l + 3});
        prog.push_back({Inst::kAny});
        prog.push_back({Inst::kJmp, l});
        break;
      }
      case Item::kAlt: {
        std::vector<size_t> jumps;
        for (size_t j = 0; j < it.alts.size(); ++j) {
          bool last = j + 1 == it.alts.size();
          size_t split = prog.size();
          if (!last) prog.push_back({Inst::kSplit, uint32_t(split + 1), 0});
          emit(it.alts[j], prog);
          if (!last) {
            jumps.push_back(prog.size());
            prog.push_back({Inst::kJmp, 0});
            prog[split].b = uint32_t(prog.size());
          }
        }
        for (size_t j : jumps) prog[j].a = uint32_t(prog.size());
        break;
      }
    }
  }
}

// The finite set of strings `seq` matches, when it has no wildcards and at
// most `cap` of them.
std::optional<std::vector<std::string>> expand(const Seq& seq, size_t cap) {
  std::vector<std::string> out{std::string()};
  for (const Item& it : seq) {
    if (it.kind == Item::kChar) {
      for (std::string& s : out) append_char(s, it.value);
      continue;
    }
    if (it.kind != Item::kAlt) return std::nullopt;
    std::vector<std::string> tails;
    for (const Seq& a : it.alts) {
      auto t = expand(a, cap);
      if (!t) return std::nullopt;
      tails.insert(tails.end(), t->begin(), t->end());
      if (tails.size() > cap) return std::nullopt;
    }
    if (out.size() * tails.size() > cap) return std::nullopt;
    std::vector<std::string> next;
    for (const std::string& h : out)
      for (const std::string& t : tails) next.push_back(h + t);
    out = std::move(next);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Scratch state for one run(): fixed arrays for small programs.
template <size_t N>
struct Scratch {
  std::array<uint32_t, N> mark{}, cur, next, stack;
};

}  // namespace

bool GlobPattern::CharClass::contains(uint32_t cp) const {
  bool in;
  if (cp < 0x80) {
    in = ascii[cp >> 6] >> (cp & 63) & 1;
  } else {
    in = false;
    for (auto [lo, hi] : ranges)
      if (cp >= lo && cp <= hi) in = true;
  }
  return in != negate;
}

Result<GlobPattern> GlobPattern::compile(std::string_view pattern) {
  if (pattern.empty()) return fail("empty pattern", 400);
  GlobPattern g;
  g.text_ = std::string(pattern);
  size_t start = 0;
  while (true) {
    size_t dot = pattern.find('.', start);
    std::string_view text = pattern.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (text.empty()) return fail("empty node at byte " + std::to_string(start) + " of pattern", 400);
    Node node;
    auto seq = NodeParser(text, start, node.classes).parse();
    if (!seq) return fail(seq.error());
    if (seq->size() == 1 && (*seq)[0].kind == Item::kStar) {
      node.kind = Node::kAnything;
    } else if (auto lits = expand(*seq, kMaxLiterals)) {
      node.kind = Node::kLiteral;
      node.literals = std::move(*lits);
      node.classes.clear();
    } else {
      emit(*seq, node.prog);
      node.prog.push_back({Inst::kMatch});
    }
    g.nodes_.push_back(std::move(node));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return g;
}

bool GlobPattern::node_matches(size_t i, std::string_view node) const {
  const Node& n = nodes_[i];
  switch (n.kind) {
    case Node::kAnything: return true;
    case Node::kLiteral:
      if (n.literals.size() == 1) return n.literals[0] == node;
      return std::binary_search(n.literals.begin(), n.literals.end(), node);
    case Node::kProgram: return run(n, node);
  }
  return false;
}

bool GlobPattern::matches(std::string_view name) const {
  size_t i = 0, start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    if (i >= nodes_.size()) return false;
    std::string_view node = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!node_matches(i++, node)) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return i == nodes_.size();
}

bool GlobPattern::is_literal() const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (!is_literal_node(i)) return false;
  return true;
}

std::string GlobPattern::literal_path() const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (i) out += '.';
    if (is_literal_node(i)) out += nodes_[i].literals[0];
  }
  return out;
}

// Pike-style simulation without captures: the set of live instructions
// advances one character at a time, so time is O(|s| * |prog|) whatever the
// pattern (no backtracking blow-up).
bool GlobPattern::run(const Node& n, std::string_view s) {
  const size_t size = n.prog.size();
  Scratch<128> small;
  std::vector<uint32_t> big;
  uint32_t *mark, *cur, *next, *stack;
  if (size <= 128) {
    mark = small.mark.data(), cur = small.cur.data(), next = small.next.data(), stack = small.stack.data();
  } else {
    big.assign(size * 4, 0);
    mark = big.data(), cur = mark + size, next = cur + size, stack = next + size;
  }
  uint32_t gen = 1;
  size_t ncur = 0, nnext = 0;
  // Adds pc and everything reachable from it through jumps and splits.
  auto add = [&](uint32_t* list, size_t& count, uint32_t pc) {
    if (mark[pc] == gen) return;
    mark[pc] = gen;
    size_t top = 0;
    stack[top++] = pc;
    while (top > 0) {
      uint32_t p = stack[--top];
      const Inst& in = n.prog[p];
      if (in.op == Inst::kJmp || in.op == Inst::kSplit) {
        if (in.op == Inst::kSplit && mark[in.b] != gen) mark[in.b] = gen, stack[top++] = in.b;
        if (mark[in.a] != gen) mark[in.a] = gen, stack[top++] = in.a;
      } else {
        list[count++] = p;
      }
    }
  };
  add(cur, ncur, 0);
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    i += decode(s, i, cp);
    ++gen;
    nnext = 0;
    for (size_t k = 0; k < ncur; ++k) {
      const Inst& in = n.prog[cur[k]];
      bool step = (in.op == Inst::kChar && in.a == cp) || in.op == Inst::kAny ||
                  (in.op == Inst::kClass && n.classes[in.a].contains(cp));
      if (step) add(next, nnext, cur[k] + 1);
    }
    std::swap(cur, next);
    ncur = nnext;
    if (ncur == 0) return false;
  }
  for (size_t k = 0; k < ncur; ++k)
    if (n.prog[cur[k]].op == Inst::kMatch) return true;
  return false;
}

std::string completer_query(std::string_view query, bool automatic_variants) {
  std::string q;
  for (size_t i = 0; i < query.size();) {
    if (query.compare(i, 2, "..") == 0) q += "*.", i += 2;
    else q += query[i++];
  }
  if (q.empty() || q.back() != '*') q += '*';
  if (!automatic_variants) return q;
  std::string out;
  size_t start = 0;
  while (true) {
    size_t dot = q.find('.', start);
    std::string part = q.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.find(',') != std::string::npos && part.find('{') == std::string::npos) part = "{" + part + "}";
    out += part;
    if (dot == std::string::npos) break;
    out += '.';
    start = dot + 1;
  }
  return out;
}

}  // namespace stele::metrics
