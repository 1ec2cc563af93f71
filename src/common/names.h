// Names from design.md "Names": app names, host names, task ids, entities,
// metric path nodes. Pure functions, thread-safe.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stele {

// "/shop/web" -> "shop_web": leading '/' dropped, '/' and '.' -> '_'.
std::string app_name(std::string_view app_id);
// "host.example.com" -> "host_example_com".
std::string host_name(std::string_view hostname);
// Log tag of an app's records: "stele.<app name>.<stream>" (stdout, stderr,
// pipeline, access).
std::string log_tag(std::string_view app_id, std::string_view stream);
// Any character outside [A-Za-z0-9_-] -> '_' (one metric path node).
std::string metric_node(std::string_view s);
// "<app name>-r<release>.<seq>.<n>"
std::string task_id(std::string_view app_id, int64_t release, int seq, int launch);
// "<app name>-r<release>-<seq>"
std::string task_entity(std::string_view app_id, int64_t release, int seq);
// Canonical Marathon app id: ensures a leading '/', no trailing '/'.
std::string canonical_app_id(std::string_view id);

struct TaskIdParts {
  std::string app_name;
  int64_t release = 0;
  int seq = 0;
  int launch = 0;
};
std::optional<TaskIdParts> parse_task_id(std::string_view id);

}  // namespace stele
