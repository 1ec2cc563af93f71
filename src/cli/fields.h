// Lenient reads of fields in the server's JSON answers. The client prints
// what it is given: a missing or mistyped field reads as empty/zero/nullopt
// instead of throwing, so a newer or older server never crashes `stele`.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "common/json.h"

namespace stele::cli {

// String field; numbers are printed ("release": 3 -> "3"); else "".
std::string field_str(const Json& j, const char* key);
// Numeric field (a numeric string is accepted too); else nullopt.
std::optional<double> field_num(const Json& j, const char* key);
int64_t field_int(const Json& j, const char* key, int64_t def = 0);
bool field_bool(const Json& j, const char* key, bool def = false);
// The first present key of `keys` that holds a time: milliseconds since the
// epoch as a number, or an ISO-8601 string. nullopt when none does.
std::optional<int64_t> field_time_ms(const Json& j, std::initializer_list<const char*> keys);
// Object/array member or a null Json.
const Json& field(const Json& j, const char* key);
// `j` when it is an array, else an empty array (for range-for over lists).
const Json& array_or_empty(const Json& j);

}  // namespace stele::cli
