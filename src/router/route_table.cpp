// RouteTable: validation, JSON, host/path matching and balancing (route_table.h).
#include "router/route_table.h"

#include <algorithm>

namespace stele::router {

namespace {

// A JSON integer >= 0, whether parsed from text (unsigned) or built in C++
// from a signed int.
bool non_negative_int(const Json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// Collects per-field errors while reading a document.
struct Problems {
  std::vector<FieldError> fields;
  void add(std::string path, std::string why) { fields.push_back(FieldError{std::move(path), {std::move(why)}}); }
  Error error() const {
    Error e{"invalid route table", fields, 422};
    if (!fields.empty())
      e.message += ": " + fields.front().path + " " + fields.front().errors.front() +
                   (fields.size() > 1 ? " (and " + std::to_string(fields.size() - 1) + " more)" : "");
    return e;
  }
};

bool valid_host_pattern(std::string_view h) {
  if (h == "*") return true;
  if (h.rfind("*.", 0) == 0) h.remove_prefix(2);
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '[' ||
          c == ']' || c == ':'))
      return false;
  return true;
}

std::string addr_of(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// An object key as a JSON-pointer token ("/shop/web" -> "~1shop~1web").
std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

const char* balance_name(Balance b) { return b == Balance::kLeastConn ? "least-conn" : "round-robin"; }

void read_route(const Json& j, const std::string& at, Problems& p, std::vector<Route>& out) {
  if (!j.is_object()) return p.add(at, "must be an object");
  Route r;
  auto str = [&](const char* key, std::string& dst, bool required) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) p.add(at + "/" + key, "is required");
    } else if (!it->is_string()) {
      p.add(at + "/" + key, "must be a string");
    } else {
      dst = it->get<std::string>();
    }
  };
  str("host", r.host, true);
  str("path", r.path, false);
  str("app", r.app, true);
  if (auto it = j.find("portIndex"); it != j.end()) {
    if (!non_negative_int(*it)) p.add(at + "/portIndex", "must be a non-negative integer");
    else r.port_index = it->get<size_t>();
  }
  if (auto it = j.find("balance"); it != j.end()) {
    std::string b = it->is_string() ? it->get<std::string>() : "";
    if (b == "least-conn" || b == "leastconn") r.balance = Balance::kLeastConn;
    else if (b != "round-robin" && b != "roundrobin") p.add(at + "/balance", "must be \"round-robin\" or \"least-conn\"");
  }
  if (auto it = j.find("redirectHttps"); it != j.end()) {
    if (!it->is_boolean()) p.add(at + "/redirectHttps", "must be a boolean");
    else r.redirect_https = it->get<bool>();
  }
  out.push_back(std::move(r));
}

void read_instance(const Json& j, const std::string& at, Problems& p, std::vector<Instance>& out) {
  if (!j.is_object()) return p.add(at, "must be an object");
  Instance in;
  auto task = j.find("task");
  if (task != j.end() && task->is_string()) in.task = task->get<std::string>();
  else if (task != j.end()) p.add(at + "/task", "must be a string");
  auto host = j.find("host");
  if (host == j.end() || !host->is_string() || host->get<std::string>().empty())
    p.add(at + "/host", "is required (a non-empty string)");
  else in.host = host->get<std::string>();
  auto ports = j.find("ports");
  if (ports == j.end() || !ports->is_array()) {
    p.add(at + "/ports", "is required (an array of ports)");
  } else {
    for (size_t i = 0; i < ports->size(); ++i) {
      const Json& v = (*ports)[i];
      if (!non_negative_int(v) || v.get<uint64_t>() == 0 || v.get<uint64_t>() > 65535)
        p.add(at + "/ports/" + std::to_string(i), "must be a port number 1-65535");
      else in.ports.push_back(static_cast<uint16_t>(v.get<uint64_t>()));
    }
  }
  auto healthy = j.find("healthy");
  if (healthy != j.end() && !healthy->is_boolean()) p.add(at + "/healthy", "must be a boolean");
  else in.healthy = healthy != j.end() && healthy->get<bool>();
  out.push_back(std::move(in));
}

}  // namespace

namespace {
// "Host:port" -> "Host", "[::1]:80" -> "[::1]", "host." -> "host".
std::string_view strip_host(std::string_view raw) {
  if (!raw.empty() && raw.front() == '[') {
    size_t close = raw.find(']');
    raw = raw.substr(0, close == std::string_view::npos ? raw.size() : close + 1);
  } else if (size_t colon = raw.rfind(':'); colon != std::string_view::npos) {
    raw = raw.substr(0, colon);
  }
  if (!raw.empty() && raw.back() == '.') raw.remove_suffix(1);
  return raw;
}
}  // namespace

std::string_view normalize_host(std::string_view raw, std::string& scratch) {
  scratch.clear();
  raw = strip_host(raw);
  scratch.reserve(raw.size());
  for (char c : raw) scratch.push_back(lower(c));
  return scratch;
}

bool path_matches(std::string_view prefix, std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (prefix.back() == '/' || path.size() == prefix.size()) return true;
  char next = path[prefix.size()];
  return next == '/' || next == '?';
}

Result<RouteTable> RouteTable::make(uint64_t version, std::vector<Route> routes, Apps apps) {
  Problems p;
  RouteTable t;
  t.version_ = version;
  for (size_t i = 0; i < routes.size(); ++i) {
    Route& r = routes[i];
    std::string at = "/routes/" + std::to_string(i);
    std::string scratch;
    for (auto& c : r.host) c = lower(c);
    if (!valid_host_pattern(r.host)) p.add(at + "/host", "must be a host name, \"*.domain\" or \"*\"");
    if (r.path.empty() || r.path.front() != '/') p.add(at + "/path", "must start with '/'");
    if (r.app.empty()) p.add(at + "/app", "must name an app");
    for (size_t k = 0; k < i; ++k)
      if (routes[k].host == r.host && routes[k].path == r.path)
        p.add(at, "duplicates route " + std::to_string(k) + " (same host and path)");
  }
  for (auto& [id, list] : apps)
    for (auto& in : list) {
      in.addrs.clear();
      for (uint16_t port : in.ports) in.addrs.push_back(addr_of(in.host, port));
    }
  if (!p.fields.empty()) return fail(p.error());
  t.routes_ = std::move(routes);
  t.apps_ = std::move(apps);
  for (size_t i = 0; i < t.routes_.size(); ++i) {
    const std::string& h = t.routes_[i].host;
    if (h == "*") {
      t.any_.routes.push_back(i);
    } else if (h.rfind("*.", 0) == 0) {
      std::string suffix = h.substr(1);
      auto it = std::find_if(t.wildcard_.begin(), t.wildcard_.end(), [&](auto& w) { return w.first == suffix; });
      if (it == t.wildcard_.end()) it = t.wildcard_.insert(t.wildcard_.end(), {suffix, HostGroup{}});
      it->second.routes.push_back(i);
    } else {
      t.exact_[h].routes.push_back(i);
    }
  }
  auto longest_first = [&](HostGroup& g) {
    std::stable_sort(g.routes.begin(), g.routes.end(),
                     [&](size_t a, size_t b) { return t.routes_[a].path.size() > t.routes_[b].path.size(); });
  };
  for (auto& [h, g] : t.exact_) longest_first(g);
  for (auto& [h, g] : t.wildcard_) longest_first(g);
  longest_first(t.any_);
  std::stable_sort(t.wildcard_.begin(), t.wildcard_.end(),
                   [](auto& a, auto& b) { return a.first.size() > b.first.size(); });
  t.cursors_ = std::make_unique<size_t[]>(t.routes_.size() + 1);
  for (const Route& r : t.routes_) t.route_apps_.push_back(t.instances(r.app));
  return t;
}

Result<RouteTable> RouteTable::from_json(const Json& j) {
  Problems p;
  if (!j.is_object()) return fail(Error{"route table must be a JSON object", {}, 422});
  uint64_t version = 0;
  auto v = j.find("version");
  if (v == j.end() || !non_negative_int(*v)) p.add("/version", "is required (a non-negative integer)");
  else version = v->get<uint64_t>();
  std::vector<Route> routes;
  auto rs = j.find("routes");
  if (rs != j.end() && !rs->is_array()) p.add("/routes", "must be an array");
  else if (rs != j.end())
    for (size_t i = 0; i < rs->size(); ++i) read_route((*rs)[i], "/routes/" + std::to_string(i), p, routes);
  Apps apps;
  auto as = j.find("apps");
  if (as != j.end() && !as->is_object()) {
    p.add("/apps", "must be an object keyed by app id");
  } else if (as != j.end()) {
    for (auto& [id, app] : as->items()) {
      std::string at = "/apps/" + pointer_token(id);
      auto& list = apps[id];
      auto ins = app.is_object() ? app.find("instances") : app.end();
      if (!app.is_object() || ins == app.end() || !ins->is_array()) {
        p.add(at + "/instances", "is required (an array)");
        continue;
      }
      for (size_t i = 0; i < ins->size(); ++i) read_instance((*ins)[i], at + "/instances/" + std::to_string(i), p, list);
    }
  }
  if (!p.fields.empty()) return fail(p.error());
  return make(version, std::move(routes), std::move(apps));
}

Json RouteTable::to_json() const {
  Json routes = Json::array();
  for (const Route& r : routes_)
    routes.push_back({{"host", r.host}, {"path", r.path}, {"app", r.app}, {"portIndex", r.port_index},
                      {"balance", balance_name(r.balance)}, {"redirectHttps", r.redirect_https}});
  Json apps = Json::object();
  for (const auto& [id, list] : apps_) {
    Json ins = Json::array();
    for (const Instance& in : list)
      ins.push_back({{"task", in.task}, {"host", in.host}, {"ports", in.ports}, {"healthy", in.healthy}});
    apps[id] = {{"instances", std::move(ins)}};
  }
  return {{"version", version_}, {"routes", std::move(routes)}, {"apps", std::move(apps)}};
}

const RouteTable::HostGroup* RouteTable::host_group(std::string_view host) const {
  if (!exact_.empty()) {
    auto it = exact_.find(host);
    if (it != exact_.end()) return &it->second;
  }
  for (const auto& [suffix, g] : wildcard_)
    if (host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix) return &g;
  return any_.routes.empty() ? nullptr : &any_;
}

const Route* RouteTable::match(std::string_view raw_host, std::string_view path) const {
  // Lower-cased on the stack: this runs for every request.
  char buf[256];
  std::string_view host = strip_host(raw_host);
  if (host.size() > sizeof buf) return nullptr;
  for (size_t i = 0; i < host.size(); ++i) buf[i] = lower(host[i]);
  const HostGroup* g = host_group(std::string_view(buf, host.size()));
  if (!g) return nullptr;
  for (size_t i : g->routes)
    if (path_matches(routes_[i].path, path)) return &routes_[i];
  return nullptr;
}

const std::vector<Instance>* RouteTable::instances(std::string_view app) const {
  auto it = apps_.find(app);
  return it == apps_.end() ? nullptr : &it->second;
}

bool RouteTable::has_candidates(const Route& r) const {
  const auto* list = instances(r.app);
  if (!list) return false;
  return std::any_of(list->begin(), list->end(),
                     [&](const Instance& in) { return in.healthy && r.port_index < in.ports.size(); });
}

const Instance* RouteTable::pick(const Route& r, std::span<const Instance* const> exclude, const LoadFn& load) const {
  const size_t route_index = static_cast<size_t>(&r - routes_.data());
  const auto* list = route_apps_[route_index];
  if (!list || list->empty()) return nullptr;
  size_t& cursor = cursors_[route_index];
  const size_t n = list->size();
  const Instance* best = nullptr;
  size_t best_load = 0;
  size_t best_offset = 0;
  for (size_t k = 0; k < n; ++k) {
    const Instance& in = (*list)[(cursor + k) % n];
    if (!in.healthy || r.port_index >= in.ports.size()) continue;
    if (std::find(exclude.begin(), exclude.end(), &in) != exclude.end()) continue;
    if (r.balance == Balance::kRoundRobin || !load) {
      best = &in;
      best_offset = k;
      break;
    }
    size_t l = load(in.addrs[r.port_index]);
    if (!best || l < best_load) {
      best = &in;
      best_load = l;
      best_offset = k;
    }
  }
  if (best) cursor = (cursor + best_offset + 1) % n;
  return best;
}

}  // namespace stele::router
