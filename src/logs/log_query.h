// Record-level query helpers: look up string fields in a record's msgpack
// bytes without decoding it, decode a record to JSON, and a compiled filter.
// Pure and thread-safe (a RecordFilter is immutable after compile()).
#pragma once
#include <optional>
#include <regex>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace stele::logs {

struct LogQuery;

// Value of the string field `key` of a msgpack map; nullopt when the bytes
// are not a map, the key is absent or its value is not a string.
std::optional<std::string_view> msgpack_string_field(std::string_view map, std::string_view key);

// The one place a stored record becomes JSON (swap in the codec's decoder
// here). Malformed bytes give {"_undecodable": <byte count>}.
Json record_to_json(std::string_view msgpack);

// Filters of a LogQuery that look inside the record (task, stream, grep, regex).
class RecordFilter {
 public:
  static Result<RecordFilter> compile(const LogQuery& q);
  bool matches(std::string_view record) const;
  bool trivial() const { return !task_ && !stream_ && !grep_ && !regex_; }

 private:
  bool text_matches(std::string_view record) const;
  std::optional<std::string> task_, stream_, grep_;
  std::optional<std::regex> regex_;
};

}  // namespace stele::logs
