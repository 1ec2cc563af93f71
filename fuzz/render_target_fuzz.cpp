// Fuzz target for the render-target parser and bind(), fed straight from
// /render's `target` parameter: it never crashes, errors are 400s that name a
// position inside the target, every node's position is inside the target,
// and a parsed target's canonical text (to_string) parses again to an
// equivalent tree that prints the same. The same bytes also go through the
// from/until parser, which must not crash and must stay in datetime's range.
// fuzz-sources: src/metrics/render_target.cpp src/metrics/render_functions.cpp src/metrics/render_time.cpp
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "metrics/render_functions.h"
#include "metrics/render_target.h"
#include "metrics/render_time.h"

using namespace stele::metrics;

namespace {

[[noreturn]] void violated(const char* what, std::string_view in) {
  std::fprintf(stderr, "render_target_fuzz: %s\ninput: %.*s\n", what, int(in.size()), in.data());
  std::abort();
}

void check_error(const stele::Error& e, std::string_view in) {
  if (e.code != 400 || e.message.empty()) violated("an error that is not a 400 with a message", in);
  if (e.message.starts_with("position ")) {
    const unsigned long pos = std::strtoul(e.message.c_str() + 9, nullptr, 10);
    if (pos < 1 || pos > in.size() + 1) violated("an error position outside the target", in);
  }
}

void check_tree(const Expr& e, std::string_view in) {
  if (e.root >= e.nodes.size()) violated("no root", in);
  for (const Node& n : e.nodes) {
    if (n.pos < 1 || n.pos > in.size()) violated("a node position outside the target", in);
    if (n.text.offset + n.text.size > e.text.size() || n.key.offset + n.key.size > e.text.size())
      violated("a text slice outside the arena", in);
    if (n.kind == NodeKind::kCall && n.first + n.count > e.children.size()) violated("arguments out of range", in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto parsed = parse_target(in);
  if (!parsed) {
    check_error(parsed.error(), in);
  } else {
    check_tree(*parsed, in);
    auto bound = bind(*parsed);
    if (!bound) {
      check_error(bound.error(), in);
    } else if (bound->calls.size() != parsed->nodes.size()) {
      violated("binding not indexed like the nodes", in);
    }

    const std::string text = to_string(*parsed);
    auto again = parse_target(text);
    if (!again) violated(("canonical text does not parse: " + text + ": " + again.error().message).c_str(), in);
    if (!equivalent(*parsed, *again)) violated(("canonical text parses differently: " + text).c_str(), in);
    if (to_string(*again) != text) violated(("canonical text is not stable: " + text).c_str(), in);
    if (bool(bind(*again)) != bool(bound)) violated("bind differs on the canonical text", in);
  }

  if (size <= 64) {
    for (TimeZone tz : {TimeZone::kUtc, TimeZone::kLocal}) {
      auto t = parse_at_time(in, 1700000000, tz);
      if (!t) {
        check_error(t.error(), in);
      } else if (*t < -62135596800 - 86400 || *t > 253402300799 + 86400) {
        violated("a time outside years 1-9999", in);
      }
    }
    if (auto o = parse_time_offset(in); !o) check_error(o.error(), in);
  }
  return 0;
}
