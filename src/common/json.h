// JSON helpers over nlohmann::json (the project's JSON type).
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace stele {

using Json = nlohmann::json;

inline constexpr int kMaxJsonDepth = 64;

// Parses text; on failure the error names the byte offset. Documents nested
// deeper than kMaxJsonDepth are refused.
Result<Json> parse_json(std::string_view text);

// Error -> {"message": ..., "details": [{"path", "errors"}]}.
Json error_json(const Error& e);

}  // namespace stele
