#include "common/json.h"

namespace stele {

Result<Json> parse_json(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions only to get the position for the message.
    try {
      (void)Json::parse(text);
    } catch (const Json::parse_error& e) {
      return fail(std::string("invalid JSON: ") + e.what(), 400);
    }
    return fail("invalid JSON", 400);
  }
  return j;
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
