#include "common/json.h"

namespace stele {

namespace {
// Deepest array/object nesting, strings skipped. nlohmann copies and prints
// recursively, so absurd nesting from the network is refused up front.
int max_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}
}  // namespace

Result<Json> parse_json(std::string_view text) {
  if (max_depth(text) > kMaxJsonDepth)
    return fail("invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", 400);
  // nlohmann throws out_of_range for numbers like 1E999 even with
  // allow_exceptions=false, so catch every parse exception here (an edge).
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return fail(std::string("invalid JSON: ") + e.what(), 400);
  }
}

Json error_json(const Error& e) {
  Json j = {{"message", e.message}};
  if (!e.details.empty()) {
    Json d = Json::array();
    for (const auto& f : e.details) d.push_back({{"path", f.path}, {"errors", f.errors}});
    j["details"] = d;
  }
  return j;
}

}  // namespace stele
