#include "cli/fields.h"

#include <cmath>
#include <cstdlib>

#include "common/clock.h"

namespace stele::cli {

const Json& field(const Json& j, const char* key) {
  static const Json null_json;
  if (!j.is_object()) return null_json;
  auto it = j.find(key);
  return it == j.end() ? null_json : *it;
}

const Json& array_or_empty(const Json& j) {
  static const Json empty = Json::array();
  return j.is_array() ? j : empty;
}

std::string field_str(const Json& j, const char* key) {
  const Json& v = field(j, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return Json(v).dump();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return "";
}

std::optional<double> field_num(const Json& j, const char* key) {
  const Json& v = field(j, key);
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(d)) return std::nullopt;
  return d;
}

int64_t field_int(const Json& j, const char* key, int64_t def) {
  auto n = field_num(j, key);
  return n ? static_cast<int64_t>(*n) : def;
}

bool field_bool(const Json& j, const char* key, bool def) {
  const Json& v = field(j, key);
  return v.is_boolean() ? v.get<bool>() : def;
}

std::optional<int64_t> field_time_ms(const Json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    const Json& v = field(j, k);
    if (v.is_number()) return static_cast<int64_t>(v.get<double>());
    if (v.is_string()) {
      int64_t ms = parse_iso8601(v.get<std::string>());
      if (ms >= 0) return ms;
    }
  }
  return std::nullopt;
}

}  // namespace stele::cli
