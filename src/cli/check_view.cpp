#include "cli/check_view.h"

#include "cli/fields.h"

namespace stele::cli {

namespace {

std::string first_line(const std::string& s, size_t max) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > max) line = line.substr(0, max - 3) + "...";
  return line;
}

std::string joined(const Json& list, const char* sep = ",") {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& v : list) out += (out.empty() ? "" : sep) + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

}  // namespace

std::string status_word(int64_t status) {
  static const char* words[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
  return status >= 0 && status <= 3 ? words[status] : std::to_string(status);
}

Table check_states_table(const Json& states, int64_t now_ms) {
  Table t({"ENTITY", "CHECK", "STATUS", "STATE", "OCC", "AGE", "OUTPUT"});
  if (!states.is_array()) return t;
  for (const auto& s : states) {
    const Json& c = field(s, "check");
    std::string state = field_str(s, "state");
    if (s.value("silenced", false)) state += ", silenced";
    int64_t executed = field_int(c, "executed");
    t.add_row({field_str(s, "entity"), field_str(c, "name"), status_word(field_int(c, "status", 3)), state,
               std::to_string(field_int(s, "occurrences")), format_since(executed > 0 ? executed * 1000 : 0, now_ms),
               first_line(field_str(c, "output"), 70)});
  }
  return t;
}

Table checks_table(const Json& checks) {
  Table t({"NAME", "RUNS-ON", "INTERVAL", "TIMEOUT", "HANDLERS", "COMMAND"});
  if (!checks.is_array()) return t;
  for (const auto& c : checks) {
    std::string where = c.contains("proxy") && c["proxy"].is_string()
                            ? "tasks of " + c["proxy"].get<std::string>()
                            : joined(field(c, "subscriptions")) + (c.value("round_robin", false) ? " (round robin)" : "");
    t.add_row({field_str(c, "name"), where, field_str(c, "interval") + "s", field_str(c, "timeout") + "s",
               joined(field(c, "handlers")), first_line(field_str(c, "command"), 60)});
  }
  return t;
}

Table handlers_table(const Json& handlers) {
  Table t({"NAME", "TYPE", "TARGET", "FILTERS"});
  if (!handlers.is_array()) return t;
  for (const auto& h : handlers) {
    std::string type = field_str(h, "type");
    t.add_row({field_str(h, "name"), type, first_line(field_str(h, type == "http" ? "url" : "command"), 60),
               joined(field(h, "filters"), "; ")});
  }
  return t;
}

Table silences_table(const Json& silences, int64_t now_ms) {
  Table t({"ID", "EXPIRES", "REASON", "CREATOR"});
  if (!silences.is_array()) return t;
  for (const auto& s : silences) {
    std::string expires = "never";
    if (s.contains("expiresAt") && s["expiresAt"].is_number())
      expires = "in " + format_age(s["expiresAt"].get<int64_t>() * 1000 - now_ms);
    if (s.value("expire_on_resolve", false)) expires += expires == "never" ? " (until resolved)" : ", or when resolved";
    t.add_row({field_str(s, "id"), expires, first_line(field_str(s, "reason"), 50), field_str(s, "creator")});
  }
  return t;
}

}  // namespace stele::cli
