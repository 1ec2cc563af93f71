// Marathon app definitions: parsing and validation (every bad field is
// reported, not just the first), partial updates, and rendering back to
// Marathon's JSON. Nothing here throws: nlohmann accessors are only used
// after their type has been checked.
#include "common/spec.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <regex>
#include <set>
#include <string_view>

#include "common/names.h"

namespace stele {
namespace {

// ---- error collection --------------------------------------------------

// Every bad field of one document, in the order found; a path named twice
// gets one FieldError with all its reasons.
class Errors {
 public:
  void add(const std::string& path, std::string msg) {
    for (auto& d : details_) {
      if (d.path == path) {
        d.errors.push_back(std::move(msg));
        return;
      }
    }
    details_.push_back(FieldError{path, {std::move(msg)}});
  }
  bool empty() const { return details_.empty(); }
  Error take() { return Error{"Object is not valid", std::move(details_), 422}; }

 private:
  std::vector<FieldError> details_;
};

// JSON pointer of `key` under `base` (RFC 6901: '~' -> "~0", '/' -> "~1").
std::string key_path(const std::string& base, std::string_view key) {
  std::string out = base + "/";
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::string index_path(const std::string& base, size_t i) { return base + "/" + std::to_string(i); }

// Bounds for messages: 1 rather than 1.0, 0.5 as is.
std::string show(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return Json(v).dump();
}

// ---- typed access to one JSON object ------------------------------------

// Reads the fields of one JSON object, recording wrong types under the
// field's path. Absent and null fields read as "not given": Marathon's own
// GET answers carry nulls for unset fields.
class Fields {
 public:
  Fields(const Json& obj, std::string path, Errors& errors)
      : obj_(obj), path_(std::move(path)), errors_(errors) {}

  const Json* get(std::string_view key) const {
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string path(std::string_view key) const { return key_path(path_, key); }
  void error(std::string_view key, std::string msg) { errors_.add(path(key), std::move(msg)); }
  Errors& errors() { return errors_; }

  std::optional<double> number(std::string_view key) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) return wrong(key, "expected a number");
    double d = v->get<double>();
    if (!std::isfinite(d)) return wrong(key, "expected a finite number");
    return d;
  }

  // Integral numbers, including 3.0 (as Marathon's reader accepts them);
  // values beyond int64 saturate so that range checks reject them.
  std::optional<int64_t> integer(std::string_view key) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
    }
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (std::isfinite(d) && std::floor(d) == d) {
        if (d >= 9.2e18) return INT64_MAX;
        if (d <= -9.2e18) return INT64_MIN;
        return static_cast<int64_t>(d);
      }
    }
    return wrong(key, "expected an integer");
  }

  std::optional<std::string> string(std::string_view key) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) return wrong(key, "expected a string");
    return v->get_ref<const std::string&>();
  }

  std::optional<bool> boolean(std::string_view key) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return wrong(key, "expected a boolean");
    return v->get<bool>();
  }

  // The field when it is of the wanted kind (object or array), else null.
  const Json* object(std::string_view key) { return kind(key, &Json::is_object, "expected an object"); }
  const Json* array(std::string_view key) { return kind(key, &Json::is_array, "expected an array"); }

 private:
  std::nullopt_t wrong(std::string_view key, std::string msg) {
    error(key, std::move(msg));
    return std::nullopt;
  }
  const Json* kind(std::string_view key, bool (Json::*is)() const noexcept, const char* msg) {
    const Json* v = get(key);
    if (v && !(v->*is)()) {
      error(key, msg);
      return nullptr;
    }
    return v;
  }

  const Json& obj_;
  std::string path_;
  Errors& errors_;
};

// Range rules for numeric fields; the message names the bound.
struct Range {
  double lo;
  bool lo_open = false;  // lo itself is out of range
  double hi = INFINITY;

  bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }
  std::string message() const {
    if (std::isfinite(hi)) return "must be between " + show(lo) + " and " + show(hi);
    return lo_open ? "must be greater than " + show(lo) : "must be at least " + show(lo);
  }
};

void read_number(Fields& f, std::string_view key, double& out, Range range) {
  auto v = f.number(key);
  if (!v) return;
  if (range.contains(*v))
    out = *v;
  else
    f.error(key, range.message());
}

void read_int(Fields& f, std::string_view key, int& out, int64_t lo, int64_t hi = INT_MAX) {
  auto v = f.integer(key);
  if (!v) return;
  if (*v >= lo && *v <= hi)
    out = static_cast<int>(*v);
  else if (hi == INT_MAX)
    f.error(key, "must be at least " + std::to_string(lo));
  else
    f.error(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
}

void read_bool(Fields& f, std::string_view key, bool& out) {
  if (auto v = f.boolean(key)) out = *v;
}

// An object of string values (env, labels). For env, names are checked and
// Marathon's secret references ({"secret": "name"}) are refused.
void read_string_map(Fields& f, std::string_view key, std::map<std::string, std::string>& out,
                     bool env) {
  const Json* obj = f.object(key);
  if (!obj) return;
  std::string base = f.path(key);
  for (const auto& [name, value] : obj->items()) {
    std::string path = key_path(base, name);
    if (env && (name.empty() || name.find_first_of(std::string("=\0", 2)) != std::string::npos))
      f.errors().add(path, "variable names must be non-empty, without '=' or NUL");
    if (value.is_string())
      out[name] = value.get_ref<const std::string&>();
    else if (env && value.is_object() && value.contains("secret"))
      f.errors().add(path, "secrets are not supported");
    else
      f.errors().add(path, "expected a string");
  }
}

// ---- id -----------------------------------------------------------------

// One label of a segment: [a-z0-9] or [a-z0-9][a-z0-9-]*[a-z0-9].
bool valid_label(std::string_view l) {
  if (l.empty() || l.front() == '-' || l.back() == '-') return false;
  for (char c : l)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// Why a canonical id is not a valid absolute Marathon path, or "" if it is.
std::string id_problem(std::string_view id) {
  if (id == "/") return "must name an app, e.g. /shop/web";
  std::string_view rest = id.substr(1);
  while (true) {
    auto slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    if (seg.empty()) return "must not contain empty path segments";
    if (seg == "." || seg == "..") return "relative path segments (. and ..) are not allowed";
    std::string_view labels = seg;
    while (true) {
      auto dot = labels.find('.');
      if (!valid_label(labels.substr(0, dot)))
        return "path segment '" + std::string(seg) +
               "' must be lowercase letters, digits, '-' and '.', each part starting and ending "
               "with a letter or digit";
      if (dot == std::string_view::npos) break;
      labels.remove_prefix(dot + 1);
    }
    if (slash == std::string_view::npos) return "";
    rest.remove_prefix(slash + 1);
  }
}

void parse_id(Fields& f, const std::optional<std::string>& id_override, AppSpec& s) {
  auto body = f.string("id");
  if (!body && !id_override) {
    if (!f.get("id")) f.error("id", "is required");
    return;
  }
  std::string id = canonical_app_id(id_override ? *id_override : *body);
  if (body && id_override && canonical_app_id(*body) != id) {
    f.error("id", "id " + canonical_app_id(*body) + " does not match the URL's " + id);
    return;
  }
  if (auto problem = id_problem(id); !problem.empty()) {
    f.error("id", problem);
    return;
  }
  s.id = id;
}

// ---- what to run ----------------------------------------------------------

void parse_args(Fields& f, AppSpec& s) {
  const Json* args = f.array("args");
  if (!args) return;
  for (size_t i = 0; i < args->size(); ++i) {
    const Json& a = (*args)[i];
    if (a.is_string())
      s.args.push_back(a.get_ref<const std::string&>());
    else
      f.errors().add(index_path(f.path("args"), i), "expected a string");
  }
}

// cmd, args, or neither when a container (parse_container) is given.
void parse_command(Fields& f, AppSpec& s) {
  if (auto cmd = f.string("cmd")) {
    if (cmd->empty())
      f.error("cmd", "must not be empty");
    else
      s.cmd = *cmd;
  }
  parse_args(f, s);
  // An empty args array counts as absent: Marathon's answers carry "args": [].
  const Json* args = f.get("args");
  bool has_cmd = f.get("cmd") != nullptr;
  bool has_args = args && !(args->is_array() && args->empty());
  if (has_cmd && has_args)
    f.error("cmd", "give either cmd or args, not both");
  else if (!has_cmd && !has_args && !f.get("container"))
    f.error("cmd", "one of cmd or args is required");
}

void parse_resources(Fields& f, AppSpec& s) {
  read_number(f, "cpus", s.cpus, Range{0, true});
  read_number(f, "mem", s.mem, Range{0, true});
  read_number(f, "disk", s.disk, Range{0});
  read_int(f, "instances", s.instances, 0);
}

// ---- constraints ----------------------------------------------------------

bool positive_integer(std::string_view v) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && end == v.data() + v.size() && n > 0;
}

bool compiles_as_regex(const std::string& pattern) {
  try {
    std::regex re(pattern);
    return true;
  } catch (...) {  // std::regex_error, or std::bad_alloc on huge repetitions
    return false;
  }
}

// Longest LIKE/UNLIKE pattern: std::regex compiles and matches recursively,
// so an unbounded pattern from the API could exhaust the stack.
constexpr size_t kMaxPatternLength = 512;
// Largest estimated automaton: std::regex expands counted repetition into
// states and only stops at 100,000 of them, after tens of milliseconds, so
// "(a{1000}){1000}" in every constraint would make one request cost seconds.
constexpr uint64_t kMaxPatternStates = 10000;

uint64_t saturating_mul(uint64_t a, uint64_t b) {
  return (b != 0 && a > UINT64_MAX / b) ? UINT64_MAX : a * b;
}
uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// The repetition bound of "{n}", "{n,}" or "{n,m}" at p[i] (m if given,
// else n), with i moved onto the closing brace; nullopt if it is not one.
std::optional<uint64_t> brace_bound(std::string_view p, size_t& i) {
  size_t close = p.find('}', i);
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view body = p.substr(i + 1, close - i - 1);
  std::string_view last = body.substr(body.find(',') == std::string_view::npos ? 0 : body.find(',') + 1);
  if (last.empty()) last = body.substr(0, body.find(','));
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(last.data(), last.data() + last.size(), n);
  if (last.empty() || (ec != std::errc() && ec != std::errc::result_out_of_range)) return std::nullopt;
  if (ec == std::errc::result_out_of_range) n = UINT64_MAX;
  i = close;
  return n;
}

// Rough size of the automaton std::regex builds for `p`: one state per atom,
// a counted repetition multiplying the atom or group before it.
uint64_t estimated_states(std::string_view p) {
  std::vector<uint64_t> groups{0};  // size so far of each open group
  uint64_t last = 0;                // size of the atom just read
  auto atom = [&](uint64_t n) {
    last = n;
    groups.back() = saturating_add(groups.back(), n);
  };
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      ++i;
      atom(1);
    } else if (c == '[') {
      size_t close = p.find(']', i + 2);
      i = close == std::string_view::npos ? p.size() : close;
      atom(1);
    } else if (c == '(') {
      groups.push_back(0);
      last = 0;  // a repetition right after '(' repeats nothing of the outer group
    } else if (c == ')' && groups.size() > 1) {
      uint64_t inner = groups.back();
      groups.pop_back();
      atom(saturating_add(inner, 1));
    } else if (c == '{') {
      if (auto n = brace_bound(p, i)) {
        uint64_t repeated = saturating_mul(last, *n);
        groups.back() = saturating_add(groups.back() - last, repeated);
        last = repeated;
      }
    } else {
      atom(1);
    }
  }
  uint64_t total = 0;
  for (uint64_t g : groups) total = saturating_add(total, g);
  return total;
}

// Checks op and value of one constraint; `op_path`/`value_path` name where
// they came from, `value_path` is the constraint itself when no value was given.
void check_constraint(Constraint& c, bool has_value, const std::string& op_path,
                      const std::string& value_path, Errors& e) {
  if (c.op == "IS") c.op = "CLUSTER";  // Marathon's IS: same attribute value, as CLUSTER
  static const std::set<std::string, std::less<>> ops = {"UNIQUE", "CLUSTER", "GROUP_BY",
                                                         "LIKE",   "UNLIKE",  "MAX_PER"};
  if (!ops.count(c.op)) {
    e.add(op_path, "unknown operator '" + c.op +
                       "'; expected UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER or IS");
    return;
  }
  has_value = has_value && !c.value.empty();
  if (c.op == "UNIQUE") {
    if (has_value) e.add(value_path, "UNIQUE takes no value");
  } else if (c.op == "GROUP_BY") {
    if (has_value && !positive_integer(c.value))
      e.add(value_path, "GROUP_BY's value must be a positive integer");
  } else if (!has_value) {
    e.add(value_path, c.op + " requires a value");
  } else if (c.op == "MAX_PER") {
    if (!positive_integer(c.value)) e.add(value_path, "MAX_PER's value must be a positive integer");
  } else if (c.op == "LIKE" || c.op == "UNLIKE") {
    if (c.value.size() > kMaxPatternLength)
      e.add(value_path, "pattern longer than " + std::to_string(kMaxPatternLength) + " characters");
    else if (estimated_states(c.value) > kMaxPatternStates)
      e.add(value_path, "pattern is too complex (counted repetitions too large)");
    else if (!compiles_as_regex(c.value))
      e.add(value_path, "is not a valid regular expression");
  }
}

// A constraint's string part; integers are accepted for the value ("2" or 2).
bool constraint_string(const Json& v, bool allow_integer, std::string& out) {
  if (v.is_string()) {
    out = v.get_ref<const std::string&>();
    return true;
  }
  if (allow_integer && v.is_number_integer()) {
    out = v.dump();
    return true;
  }
  return false;
}

// One constraint: [field, op(, value)] or {"fieldName", "operator", "value"}.
std::optional<Constraint> parse_constraint(const Json& j, const std::string& path, Errors& e) {
  static const char* const object_keys[] = {"fieldName", "operator", "value"};
  std::string paths[3];
  const Json* parts[3] = {nullptr, nullptr, nullptr};
  if (j.is_array() && (j.size() == 2 || j.size() == 3)) {
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_null()) parts[i] = &j[i];
      paths[i] = index_path(path, i);
    }
  } else if (j.is_object()) {
    for (size_t i = 0; i < 3; ++i) {
      auto it = j.find(object_keys[i]);
      if (it != j.end() && !it->is_null()) parts[i] = &*it;
      paths[i] = key_path(path, object_keys[i]);
    }
  } else {
    e.add(path, "expected [field, operator] or [field, operator, value]");
    return std::nullopt;
  }
  Constraint c;
  std::string* outs[3] = {&c.field, &c.op, &c.value};
  const char* problems[3] = {};
  for (size_t i = 0; i < 3; ++i) {
    if (!parts[i]) {
      if (i < 2) problems[i] = "is required";
    } else if (!constraint_string(*parts[i], i == 2, *outs[i])) {
      problems[i] = "expected a string";
    }
  }
  if (!problems[0] && c.field.empty()) problems[0] = "must not be empty";
  bool ok = true;
  for (size_t i = 0; i < 3; ++i) {
    if (problems[i]) {
      e.add(paths[i], problems[i]);
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  check_constraint(c, parts[2] != nullptr, paths[1], parts[2] ? paths[2] : path, e);
  return c;
}

void parse_constraints(Fields& f, AppSpec& s) {
  const Json* list = f.array("constraints");
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    if (auto c = parse_constraint((*list)[i], index_path(f.path("constraints"), i), f.errors()))
      s.constraints.push_back(std::move(*c));
  }
}

// ---- ports ----------------------------------------------------------------

bool valid_port_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

std::optional<std::string> port_protocol(std::string_view p) {
  if (p == "tcp" || p == "udp" || p == "udp,tcp") return std::string(p);
  if (p == "tcp,udp") return "udp,tcp";
  return std::nullopt;
}

PortDefinition parse_port_definition(const Json& j, const std::string& path, Errors& e) {
  PortDefinition p;
  if (!j.is_object()) {
    e.add(path, "expected an object");
    return p;
  }
  Fields f(j, path, e);
  read_int(f, "port", p.port, 0, 65535);
  if (auto proto = f.string("protocol")) {
    if (auto norm = port_protocol(*proto))
      p.protocol = *norm;
    else
      f.error("protocol", "must be tcp, udp or udp,tcp");
  }
  if (auto name = f.string("name")) {
    if (valid_port_name(*name) || name->empty())
      p.name = *name;
    else
      f.error("name", "must be lowercase letters, digits and '-'");
  }
  read_string_map(f, "labels", p.labels, false);
  return p;
}

// Fixed ports must be unique; names too. Errors go on each later duplicate.
void check_port_uniqueness(const std::vector<PortDefinition>& ports, const std::string& base,
                           bool legacy, Errors& e) {
  std::set<int> fixed;
  std::set<std::string> names;
  for (size_t i = 0; i < ports.size(); ++i) {
    const auto& p = ports[i];
    std::string at = index_path(base, i);
    if (p.port != 0 && !fixed.insert(p.port).second)
      e.add(legacy ? at : key_path(at, "port"), "port " + std::to_string(p.port) + " is given twice");
    if (!p.name.empty() && !names.insert(p.name).second)
      e.add(key_path(at, "name"), "port name '" + p.name + "' is given twice");
  }
}

std::vector<PortDefinition> parse_legacy_ports(Fields& f, const Json& list) {
  std::vector<PortDefinition> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& v = list[i];
    std::string at = index_path(f.path("ports"), i);
    bool integral = v.is_number_integer() ||
                    (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    double d = v.is_number() ? v.get<double>() : -1;
    if (!integral)
      f.errors().add(at, "expected an integer");
    else if (d < 0 || d > 65535)
      f.errors().add(at, "must be between 0 and 65535");
    else
      out.push_back(PortDefinition{static_cast<int>(d), "tcp", "", {}});
  }
  return out;
}

void parse_ports(Fields& f, AppSpec& s) {
  const Json* defs = f.array("portDefinitions");
  const Json* legacy = f.array("ports");
  read_bool(f, "requirePorts", s.require_ports);
  if (!defs && !legacy) {
    if (!f.get("portDefinitions") && !f.get("ports")) s.port_definitions = {PortDefinition{}};
    return;
  }
  if (defs) {
    for (size_t i = 0; i < defs->size(); ++i)
      s.port_definitions.push_back(
          parse_port_definition((*defs)[i], index_path(f.path("portDefinitions"), i), f.errors()));
    check_port_uniqueness(s.port_definitions, f.path("portDefinitions"), false, f.errors());
  }
  if (!legacy) return;
  auto from_ports = parse_legacy_ports(f, *legacy);
  if (!defs) {
    check_port_uniqueness(from_ports, f.path("ports"), true, f.errors());
    s.port_definitions = std::move(from_ports);
    return;
  }
  // Marathon's GET answers carry both; accept them when they agree.
  bool agree = from_ports.size() == s.port_definitions.size();
  for (size_t i = 0; agree && i < from_ports.size(); ++i)
    agree = from_ports[i].port == s.port_definitions[i].port;
  if (!agree) f.error("ports", "ports and portDefinitions disagree; give only one of them");
}

// ---- health checks ----------------------------------------------------------

std::optional<std::string> health_protocol(std::string_view p) {
  if (p == "HTTP" || p == "HTTPS" || p == "TCP" || p == "COMMAND") return std::string(p);
  // Marathon's MESOS_ checks run on the agent; all of Stele's do.
  if (p == "MESOS_HTTP" || p == "MESOS_HTTPS" || p == "MESOS_TCP") return std::string(p.substr(6));
  return std::nullopt;
}

// Which port the check probes: a fixed "port", or "portIndex" into the app's ports.
void parse_health_port(Fields& f, HealthCheck& h, size_t port_count) {
  bool has_port = f.get("port") != nullptr;
  if (has_port && f.get("portIndex")) {
    f.error("port", "give port or portIndex, not both");
    return;
  }
  if (has_port) {
    int port = 0;
    read_int(f, "port", port, 1, 65535);
    if (port) h.port = port;
    return;
  }
  read_int(f, "portIndex", h.port_index, 0);
  if (static_cast<size_t>(h.port_index) >= port_count) {
    std::string msg = port_count == 0
                          ? "the app has no ports; give a fixed \"port\" or use a COMMAND check"
                          : "must be less than " + std::to_string(port_count) + ", the number of ports";
    f.error("portIndex", msg);
  }
}

void parse_health_command(Fields& f, HealthCheck& h) {
  if (h.protocol != "COMMAND") {
    if (f.get("command")) f.error("command", "only COMMAND health checks take a command");
    return;
  }
  const Json* cmd = f.object("command");
  if (!cmd) {
    if (!f.get("command")) f.error("command", "COMMAND health checks require {\"value\": \"...\"}");
    return;
  }
  Fields c(*cmd, f.path("command"), f.errors());
  if (!c.get("value")) {
    c.error("value", "is required");
  } else if (auto value = c.string("value")) {
    if (value->empty())
      c.error("value", "must not be empty");
    else
      h.command = *value;
  }
}

HealthCheck parse_health_check(const Json& j, const std::string& path, size_t port_count, Errors& e) {
  HealthCheck h;
  if (!j.is_object()) {
    e.add(path, "expected an object");
    return h;
  }
  Fields f(j, path, e);
  if (auto p = f.string("protocol")) {
    if (auto norm = health_protocol(*p))
      h.protocol = *norm;
    else
      f.error("protocol", "must be HTTP, HTTPS, TCP or COMMAND (MESOS_ forms accepted)");
  }
  bool http = h.protocol == "HTTP" || h.protocol == "HTTPS";
  if (http) {
    if (auto p = f.string("path")) h.path = *p;
  }
  if (h.protocol != "COMMAND") parse_health_port(f, h, port_count);
  parse_health_command(f, h);
  read_int(f, "gracePeriodSeconds", h.grace_period_seconds, 0);
  read_int(f, "intervalSeconds", h.interval_seconds, 1);
  read_int(f, "timeoutSeconds", h.timeout_seconds, 1);
  read_int(f, "maxConsecutiveFailures", h.max_consecutive_failures, 0);
  read_bool(f, "ignoreHttp1xx", h.ignore_http1xx);
  return h;
}

void parse_health_checks(Fields& f, AppSpec& s) {
  const Json* list = f.array("healthChecks");
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i)
    s.health_checks.push_back(parse_health_check((*list)[i], index_path(f.path("healthChecks"), i),
                                                 s.port_definitions.size(), f.errors()));
}

// ---- deployment and launch policy ------------------------------------------

void parse_upgrade_strategy(Fields& f, AppSpec& s) {
  const Json* u = f.object("upgradeStrategy");
  if (!u) return;
  Fields uf(*u, f.path("upgradeStrategy"), f.errors());
  read_number(uf, "minimumHealthCapacity", s.upgrade_strategy.minimum_health_capacity, Range{0, false, 1});
  read_number(uf, "maximumOverCapacity", s.upgrade_strategy.maximum_over_capacity, Range{0, false, 1});
}

void parse_launch_policy(Fields& f, AppSpec& s) {
  read_number(f, "backoffSeconds", s.backoff_seconds, Range{0});
  read_number(f, "backoffFactor", s.backoff_factor, Range{1});
  read_number(f, "maxLaunchDelaySeconds", s.max_launch_delay_seconds, Range{0});
  read_number(f, "taskKillGracePeriodSeconds", s.task_kill_grace_period_seconds, Range{0});
  if (auto user = f.string("user")) {
    if (*user == "root" || *user == "0")
      f.error("user", "tasks never run as root");
    else if (!user->empty())
      s.user = *user;
  }
}

// ---- access log (Stele extension) ---------------------------------------------

// An LTSV label (ltsv.org: [0-9A-Za-z_.-]+).
bool valid_ltsv_label(std::string_view l) {
  if (l.empty()) return false;
  for (char c : l)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}

void read_log_field(Fields& f, std::string_view key, bool ltsv, std::string& out) {
  auto v = f.string(key);
  if (!v) return;
  if (v->empty())
    f.error(key, "must not be empty");
  else if (ltsv && !valid_ltsv_label(*v))
    f.error(key, "an LTSV label is letters, digits, '_', '.' and '-'");
  else
    out = *v;
}

// False when the format is missing or unknown.
bool read_access_log_format(Fields& f, AccessLogSpec& a) {
  if (!f.get("format")) {
    f.error("format", "is required");
    return false;
  }
  auto v = f.string("format");
  if (!v) return false;
  if (*v == "ltsv")
    a.format = AccessLogSpec::Format::kLtsv;
  else if (*v == "json")
    a.format = AccessLogSpec::Format::kJson;
  else
    f.error("format", "must be \"ltsv\" or \"json\"");
  return *v == "ltsv" || *v == "json";
}

void read_latency_unit(Fields& f, AccessLogSpec& a) {
  auto v = f.string("latencyUnit");
  if (!v) return;
  if (*v == "s")
    a.latency_unit = AccessLogSpec::LatencyUnit::kSeconds;
  else if (*v == "ms")
    a.latency_unit = AccessLogSpec::LatencyUnit::kMilliseconds;
  else if (*v == "us")
    a.latency_unit = AccessLogSpec::LatencyUnit::kMicroseconds;
  else
    f.error("latencyUnit", "must be \"s\", \"ms\" or \"us\"");
}

// Unlike Marathon's objects, unknown keys are refused: this object is
// Stele's own, and a misspelt "latencyunit" would silently change nothing.
void parse_access_log(Fields& f, AppSpec& s) {
  const Json* obj = f.object("accessLog");
  if (!obj) return;
  Fields af(*obj, f.path("accessLog"), f.errors());
  AccessLogSpec a;
  // Label characters are checked only when the format is known to be LTSV.
  bool ltsv = read_access_log_format(af, a) && a.format == AccessLogSpec::Format::kLtsv;
  read_log_field(af, "status", ltsv, a.status);
  read_log_field(af, "latency", ltsv, a.latency);
  if (a.status == a.latency) af.error("latency", "must name a different field than status");
  read_latency_unit(af, a);
  for (const auto& [key, value] : obj->items()) {
    if (key != "format" && key != "status" && key != "latency" && key != "latencyUnit")
      af.error(key, "unknown field (expected format, status, latency, latencyUnit)");
  }
  s.access_log = std::move(a);
}

// Route hosts: DNS names (letters, digits, '-', '.'), optionally "*." in
// front, or "*" alone; stored lower-cased.
bool valid_route_host(const std::string& h) {
  std::string_view rest = h;
  if (rest == "*") return true;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  if (rest.empty() || rest.size() > 253 || rest.front() == '.' || rest.back() == '.' ||
      rest.find("..") != std::string_view::npos)
    return false;
  return std::all_of(rest.begin(), rest.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

void parse_route(const Json& j, const std::string& path, size_t ports, Errors& errors, RouteSpec& r) {
  if (!j.is_object()) {
    errors.add(path, "expected an object");
    return;
  }
  Fields rf(j, path, errors);
  if (auto h = rf.string("host")) {
    r.host = *h;
    std::transform(r.host.begin(), r.host.end(), r.host.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!valid_route_host(r.host))
      rf.error("host", "must be a host name (letters, digits, '-', '.'), '*.' and a name, or '*'");
  } else if (!rf.get("host")) {
    rf.error("host", "is required");
  }
  if (auto p = rf.string("path")) {
    r.path = *p;
    if (r.path.empty() || r.path[0] != '/' || r.path.find_first_of(" ?#") != std::string::npos)
      rf.error("path", "must start with '/' and hold no space, '?' or '#'");
  }
  read_int(rf, "portIndex", r.port_index, 0);
  if (size_t(r.port_index) >= ports)
    rf.error("portIndex", ports ? "the app has " + std::to_string(ports) + " port(s)" : "the app has no ports to route to");
  if (auto b = rf.string("balance")) {
    if (*b == "least-conn") r.least_conn = true;
    else if (*b != "round-robin") rf.error("balance", "must be \"round-robin\" or \"least-conn\"");
  }
  read_bool(rf, "redirectHttps", r.redirect_https);
  for (const auto& [key, value] : j.items())
    if (key != "host" && key != "path" && key != "portIndex" && key != "balance" && key != "redirectHttps")
      rf.error(key, "unknown field (expected host, path, portIndex, balance, redirectHttps)");
}

void parse_routes(Fields& f, AppSpec& s) {
  const Json* list = f.array("routes");
  if (!list) return;
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < list->size(); ++i) {
    RouteSpec r;
    std::string path = index_path(f.path("routes"), i);
    parse_route((*list)[i], path, s.port_definitions.size(), f.errors(), r);
    if (!r.host.empty() && !seen.insert({r.host, r.path}).second)
      f.errors().add(path, "host '" + r.host + "' and path '" + r.path + "' appear twice");
    s.routes.push_back(std::move(r));
  }
}

// ---- container ---------------------------------------------------------------

constexpr const char* kHostNetworkOnly = "Stele runs containers on the host network only (use HOST or leave it out)";

bool is_host_network(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "host";
}

// Docker CLI parameters Stele can honour through the Engine API.
bool known_parameter(const std::string& k) {
  static const std::set<std::string, std::less<>> known = {"user", "u", "workdir", "w", "label", "l",
                                                           "env", "e", "net", "network"};
  return known.count(k) > 0;
}

void parse_parameter(const Json& j, const std::string& path, Errors& errors, ContainerSpec& c) {
  if (!j.is_object()) return errors.add(path, "expected an object {\"key\", \"value\"}");
  Fields pf(j, path, errors);
  auto key = pf.string("key");
  auto value = pf.string("value");
  if (!key || !value) {
    if (!pf.get("key")) pf.error("key", "is required");
    if (!pf.get("value")) pf.error("value", "is required");
    return;
  }
  if (!known_parameter(*key))
    return pf.error("key", "parameter '" + *key + "' is not supported (supported: user, workdir, label, env, network)");
  if ((*key == "net" || *key == "network") && !is_host_network(*value)) return pf.error("value", kHostNetworkOnly);
  if ((*key == "label" || *key == "l" || *key == "env" || *key == "e") && value->find('=') == std::string::npos)
    return pf.error("value", "expected NAME=VALUE");
  c.parameters.push_back({*key, *value});
}

void parse_volume(const Json& j, const std::string& path, Errors& errors, ContainerSpec& c) {
  if (!j.is_object()) return errors.add(path, "expected an object");
  Fields vf(j, path, errors);
  VolumeSpec v;
  for (const char* k : {"containerPath", "hostPath"}) {
    auto p = vf.string(k);
    if (!p && !vf.get(k)) vf.error(k, "is required");
    else if (p && (p->empty() || p->front() != '/')) vf.error(k, "must be an absolute path");
    else if (p && p->find(':') != std::string::npos) vf.error(k, "must not contain ':'");
    else if (p) (std::string_view(k) == "hostPath" ? v.host_path : v.container_path) = *p;
  }
  if (auto m = vf.string("mode")) {
    if (*m == "RO") v.read_only = true;
    else if (*m != "RW") vf.error("mode", "must be RO or RW");
  }
  for (const auto& [key, value] : j.items())
    if (key != "containerPath" && key != "hostPath" && key != "mode")
      vf.error(key, "unknown field (expected containerPath, hostPath, mode; persistent and external volumes are not supported)");
  c.volumes.push_back(std::move(v));
}

void parse_docker(Fields& df, const Json& docker, ContainerSpec& c) {
  if (auto image = df.string("image")) {
    if (image->empty()) df.error("image", "must not be empty");
    c.image = *image;
  } else if (!df.get("image")) {
    df.error("image", "is required");
  }
  if (auto net = df.string("network"); net && !is_host_network(*net)) df.error("network", kHostNetworkOnly);
  if (df.boolean("privileged").value_or(false))
    df.error("privileged", "Stele never runs privileged containers");
  read_bool(df, "forcePullImage", c.force_pull_image);
  if (const Json* params = df.array("parameters"))
    for (size_t i = 0; i < params->size(); ++i)
      parse_parameter((*params)[i], index_path(df.path("parameters"), i), df.errors(), c);
  for (const auto& [key, value] : docker.items())
    if (key != "image" && key != "network" && key != "privileged" && key != "forcePullImage" && key != "parameters")
      c.docker_extra[key] = value;
}

// Marathon 1.5's top-level "networks" (kept verbatim in extra): only
// {"mode": "host"} fits how Stele runs tasks.
void check_networks(Fields& f) {
  const Json* networks = f.array("networks");
  if (!networks) return;
  for (size_t i = 0; i < networks->size(); ++i) {
    const Json& n = (*networks)[i];
    Fields nf(n, index_path(f.path("networks"), i), f.errors());
    if (!n.is_object()) f.errors().add(index_path(f.path("networks"), i), "expected an object");
    else if (auto mode = nf.string("mode"); mode && !is_host_network(*mode)) nf.error("mode", kHostNetworkOnly);
  }
}

void parse_container(Fields& f, AppSpec& s) {
  check_networks(f);
  const Json* container = f.object("container");
  if (!container) return;
  Fields cf(*container, f.path("container"), f.errors());
  if (auto type = cf.string("type"); type && *type != "DOCKER")
    cf.error("type", "only DOCKER containers are supported (a plain cmd runs as a process)");
  ContainerSpec c;
  if (const Json* docker = cf.object("docker")) {
    Fields df(*docker, cf.path("docker"), f.errors());
    parse_docker(df, *docker, c);
  } else if (!cf.get("docker")) {
    cf.error("docker", "is required ({\"image\": ...})");
  }
  if (const Json* volumes = cf.array("volumes"))
    for (size_t i = 0; i < volumes->size(); ++i)
      parse_volume((*volumes)[i], index_path(cf.path("volumes"), i), f.errors(), c);
  for (const auto& [key, value] : container->items())
    if (key != "type" && key != "docker" && key != "volumes") c.container_extra[key] = value;
  s.container = std::move(c);
}

Json container_json(const ContainerSpec& c) {
  Json params = Json::array();
  for (const auto& p : c.parameters) params.push_back({{"key", p.key}, {"value", p.value}});
  Json docker = c.docker_extra;
  docker["image"] = c.image;
  docker["network"] = "HOST";
  docker["forcePullImage"] = c.force_pull_image;
  docker["privileged"] = false;
  docker["parameters"] = params;
  Json volumes = Json::array();
  for (const auto& v : c.volumes)
    volumes.push_back({{"containerPath", v.container_path}, {"hostPath", v.host_path}, {"mode", v.read_only ? "RO" : "RW"}});
  Json j = c.container_extra;
  j["type"] = "DOCKER";
  j["docker"] = docker;
  j["volumes"] = volumes;
  return j;
}

// ---- unknown fields ----------------------------------------------------------

bool known_field(std::string_view key) {
  static const std::set<std::string, std::less<>> known = {
      "id", "cmd", "args", "container", "cpus", "mem", "disk", "instances", "env", "labels",
      "constraints", "portDefinitions", "ports", "requirePorts", "healthChecks",
      "upgradeStrategy", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds",
      "taskKillGracePeriodSeconds", "user", "accessLog", "routes"};
  return known.count(key) > 0;
}

// Fields of Marathon's GET answers that describe running state, not the spec.
bool read_only_field(std::string_view key) {
  static const std::set<std::string, std::less<>> read_only = {
      "version", "versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy",
      "deployments", "tasks", "lastTaskFailure", "readinessCheckResults", "taskStats"};
  return read_only.count(key) > 0;
}

void keep_extra(const Json& j, AppSpec& s) {
  for (const auto& [key, value] : j.items())
    if (!known_field(key) && !read_only_field(key)) s.extra[key] = value;
}

// ---- rendering ----------------------------------------------------------------

Json route_json(const RouteSpec& r) {
  return {{"host", r.host}, {"path", r.path}, {"portIndex", r.port_index},
          {"balance", r.least_conn ? "least-conn" : "round-robin"}, {"redirectHttps", r.redirect_https}};
}

Json constraint_json(const Constraint& c) {
  Json j = Json::array({c.field, c.op});
  if (!c.value.empty()) j.push_back(c.value);
  return j;
}

Json port_json(const PortDefinition& p) {
  Json j = {{"port", p.port}, {"protocol", p.protocol}};
  if (!p.name.empty()) j["name"] = p.name;
  if (!p.labels.empty()) j["labels"] = p.labels;
  return j;
}

Json health_check_json(const HealthCheck& h) {
  Json j = {{"protocol", h.protocol},
            {"gracePeriodSeconds", h.grace_period_seconds},
            {"intervalSeconds", h.interval_seconds},
            {"timeoutSeconds", h.timeout_seconds},
            {"maxConsecutiveFailures", h.max_consecutive_failures},
            {"ignoreHttp1xx", h.ignore_http1xx}};
  if (h.protocol == "HTTP" || h.protocol == "HTTPS") j["path"] = h.path;
  if (h.protocol == "COMMAND")
    j["command"] = {{"value", h.command}};
  else if (h.port)
    j["port"] = *h.port;
  else
    j["portIndex"] = h.port_index;
  return j;
}

Json access_log_json(const AccessLogSpec& a) {
  static const char* const formats[] = {"ltsv", "json"};
  static const char* const units[] = {"s", "ms", "us"};
  return {{"format", formats[static_cast<size_t>(a.format)]},
          {"status", a.status},
          {"latency", a.latency},
          {"latencyUnit", units[static_cast<size_t>(a.latency_unit)]}};
}

template <class T, class F>
Json json_array(const std::vector<T>& items, F&& render) {
  Json out = Json::array();
  for (const auto& item : items) out.push_back(render(item));
  return out;
}

}  // namespace

Result<AppSpec> parse_app_spec(const Json& j, const std::optional<std::string>& id_override) {
  Errors errors;
  if (!j.is_object()) {
    errors.add("/", "expected an object");
    return fail(errors.take());
  }
  AppSpec s;
  Fields f(j, "", errors);
  parse_id(f, id_override, s);
  parse_command(f, s);
  parse_resources(f, s);
  read_string_map(f, "env", s.env, true);
  read_string_map(f, "labels", s.labels, false);
  parse_constraints(f, s);
  parse_ports(f, s);
  parse_health_checks(f, s);
  parse_upgrade_strategy(f, s);
  parse_launch_policy(f, s);
  parse_access_log(f, s);
  parse_routes(f, s);
  parse_container(f, s);
  keep_extra(j, s);
  if (!errors.empty()) return fail(errors.take());
  return s;
}

Result<AppSpec> merge_app_spec(const AppSpec& base, const Json& patch) {
  if (!patch.is_object()) {
    Errors errors;
    errors.add("/", "expected an object");
    return fail(errors.take());
  }
  Json merged = app_spec_json(base);
  for (const auto& [key, value] : patch.items()) merged[key] = value;
  // Switching between the two forms of one thing replaces the other form.
  // An empty args array is "no args" here as in parse.
  auto given = [&](const char* k) {
    auto it = patch.find(k);
    return it != patch.end() && !it->is_null() && !(it->is_array() && it->empty());
  };
  if (given("args") && !patch.contains("cmd")) merged.erase("cmd");
  if (given("cmd") && !patch.contains("args")) merged.erase("args");
  if (patch.contains("ports") && !patch.contains("portDefinitions")) merged.erase("portDefinitions");
  return parse_app_spec(merged, base.id);
}

Json app_spec_json(const AppSpec& s) {
  Json j = s.extra.is_object() ? s.extra : Json::object();
  j["id"] = s.id;
  j["cmd"] = s.cmd ? Json(*s.cmd) : Json(nullptr);
  j["args"] = s.args;
  j["cpus"] = s.cpus;
  j["mem"] = s.mem;
  j["disk"] = s.disk;
  j["instances"] = s.instances;
  j["env"] = s.env;
  j["labels"] = s.labels;
  j["constraints"] = json_array(s.constraints, constraint_json);
  j["portDefinitions"] = json_array(s.port_definitions, port_json);
  j["requirePorts"] = s.require_ports;
  j["healthChecks"] = json_array(s.health_checks, health_check_json);
  j["upgradeStrategy"] = {{"minimumHealthCapacity", s.upgrade_strategy.minimum_health_capacity},
                          {"maximumOverCapacity", s.upgrade_strategy.maximum_over_capacity}};
  j["backoffSeconds"] = s.backoff_seconds;
  j["backoffFactor"] = s.backoff_factor;
  j["maxLaunchDelaySeconds"] = s.max_launch_delay_seconds;
  j["taskKillGracePeriodSeconds"] = s.task_kill_grace_period_seconds;
  if (s.user) j["user"] = *s.user;
  if (s.access_log) j["accessLog"] = access_log_json(*s.access_log);
  if (!s.routes.empty()) j["routes"] = json_array(s.routes, route_json);
  if (s.container) j["container"] = container_json(*s.container);
  return j;
}

std::string containerizer_of(const AppSpec& s) { return s.container ? "docker" : "process"; }

std::string ContainerSpec::user_parameter() const {
  std::string user;
  for (const auto& p : parameters)
    if (p.key == "user" || p.key == "u") user = p.value;
  return user;
}

bool only_instances_differ(const AppSpec& a, const AppSpec& b) {
  Json ja = app_spec_json(a);
  Json jb = app_spec_json(b);
  ja.erase("instances");
  jb.erase("instances");
  return ja == jb;
}

}  // namespace stele

namespace stele {
std::string app_id_problem(std::string_view canonical_id) { return id_problem(canonical_id); }
}  // namespace stele
