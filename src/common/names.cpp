#include "common/names.h"

#include <charconv>

namespace stele {

std::string log_tag(std::string_view app_id, std::string_view stream) {
  return "stele." + app_name(app_id) + "." + std::string(stream);
}

std::string app_name(std::string_view app_id) {
  if (!app_id.empty() && app_id.front() == '/') app_id.remove_prefix(1);
  std::string out(app_id);
  for (char& c : out)
    if (c == '/' || c == '.') c = '_';
  return out;
}

std::string host_name(std::string_view hostname) {
  std::string out(hostname);
  for (char& c : out)
    if (c == '.') c = '_';
  return out;
}

std::string metric_node(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

std::string task_id(std::string_view app_id, int64_t release, int seq, int launch) {
  return app_name(app_id) + "-r" + std::to_string(release) + "." + std::to_string(seq) + "." +
         std::to_string(launch);
}

std::string task_entity(std::string_view app_id, int64_t release, int seq) {
  return app_name(app_id) + "-r" + std::to_string(release) + "-" + std::to_string(seq);
}

std::string canonical_app_id(std::string_view id) {
  while (!id.empty() && id.back() == '/') id.remove_suffix(1);
  std::string out;
  if (id.empty() || id.front() != '/') out = "/";
  out += id;
  return out;
}

std::optional<TaskIdParts> parse_task_id(std::string_view id) {
  // Parse from the right: "<name>-r<rel>.<seq>.<n>"; the name may contain "-r".
  auto last = id.rfind('.');
  if (last == std::string_view::npos) return std::nullopt;
  auto mid = id.rfind('.', last - 1);
  if (mid == std::string_view::npos || mid == 0) return std::nullopt;
  auto r = id.rfind("-r", mid);
  if (r == std::string_view::npos) return std::nullopt;
  TaskIdParts p;
  p.app_name = std::string(id.substr(0, r));
  auto num = [](std::string_view s, auto& v) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
  };
  if (!num(id.substr(r + 2, mid - r - 2), p.release)) return std::nullopt;
  if (!num(id.substr(mid + 1, last - mid - 1), p.seq)) return std::nullopt;
  if (!num(id.substr(last + 1), p.launch)) return std::nullopt;
  return p;
}

}  // namespace stele
