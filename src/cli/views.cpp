#include "cli/views.h"

#include <algorithm>

#include "cli/fields.h"
#include "common/clock.h"

namespace stele::cli {

namespace {

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string or_dash(std::string s) { return s.empty() ? "-" : s; }

std::string app_release(const Json& app) {
  std::string r = field_str(app, "release");
  return r.empty() ? field_str(app, "currentRelease") : r;
}

// A run of ports: a number counts 1, a [begin, end] pair its length.
int64_t port_count(const Json& ports) {
  if (ports.is_number()) return ports.get<int64_t>();
  int64_t n = 0;
  for (const auto& p : array_or_empty(ports)) {
    if (p.is_array() && p.size() == 2 && p[0].is_number() && p[1].is_number())
      n += p[1].get<int64_t>() - p[0].get<int64_t>() + 1;
    else if (p.is_number())
      ++n;
  }
  return n;
}

std::string used_of_total(const Json& node, const char* key, std::string (*fmt)(double)) {
  auto used = field_num(field(node, "used"), key).value_or(0);
  auto total = field_num(field(node, "resources"), key);
  return fmt(used) + "/" + (total ? fmt(*total) : "-");
}

std::string deployment_summary(const Json& d) {
  std::string kind = field_str(d, "kind");
  std::string s = (kind.empty() ? "deploy" : kind) + " " + (kind == "scale" ? instance_change(d) : release_change(d));
  std::string step = field_str(d, "step");
  return step.empty() ? s : s + ": " + step;
}

}  // namespace

std::string app_status(const Json& app) {
  const Json& d = field(app, "deployment");
  std::string status = field_str(d, "status");
  if (d.is_object() && (status.empty() || status == "running")) return deployment_summary(d);
  if (auto w = field_str(app, "waiting"); !w.empty()) return "waiting: " + w;
  int64_t instances = field_int(app, "instances");
  if (instances == 0) return "suspended";
  if (field_int(app, "tasksRunning") < instances || field_int(app, "tasksUnhealthy") > 0) return "degraded";
  return "ok";
}

Table apps_table(const Json& apps, int64_t now_ms) {
  Table t({"ID", "RELEASE", "RUNNING", "HEALTHY", "STATUS", "AGE"});
  for (const auto& a : array_or_empty(apps)) {
    std::string running = field_str(a, "tasksRunning") + "/" + field_str(a, "instances");
    t.add_row({field_str(a, "id"), or_dash(app_release(a)), running, or_dash(field_str(a, "tasksHealthy")),
               app_status(a), format_since(field_time_ms(a, {"created"}), now_ms)});
  }
  return t;
}

std::string task_health(const Json& task) {
  const Json& health = field(task, "health");
  if (health.is_array() && !health.empty()) {
    bool all = std::all_of(health.begin(), health.end(), [](const Json& h) { return field_bool(h, "alive"); });
    return all ? "healthy" : "unhealthy";
  }
  if (field_str(task, "state") != "running") return "-";
  return field_bool(task, "healthy", true) ? "-" : "pending";
}

std::string task_ports(const Json& task) {
  std::vector<std::string> ports;
  for (const auto& p : array_or_empty(field(task, "ports")))
    if (p.is_number()) ports.push_back(std::to_string(p.get<int64_t>()));
  return ports.empty() ? "-" : join(ports, ",");
}

Table tasks_table(const Json& tasks, int64_t now_ms) {
  Table t({"ID", "APP", "RELEASE", "STATE", "HEALTH", "HOST", "PORTS", "AGE"});
  for (const auto& k : array_or_empty(tasks)) {
    std::string state = field_str(k, "state");
    auto started = field_time_ms(k, {"startedAt", "startedMs"});
    auto since = state == "running" && started && *started > 0 ? started : field_time_ms(k, {"stagedAt", "stagedMs"});
    t.add_row({field_str(k, "id"), field_str(k, "appId"), or_dash(field_str(k, "release")), or_dash(state),
               task_health(k), or_dash(field_str(k, "host")), task_ports(k), format_since(since, now_ms)});
  }
  return t;
}

std::string node_ports(const Json& node) {
  return std::to_string(port_count(field(node, "usedPorts"))) + "/" + std::to_string(port_count(field(node, "ports")));
}

Table nodes_table(const Json& nodes) {
  Table t({"ID", "HOSTNAME", "ADDRESS", "STATE", "CPUS", "MEM", "PORTS"});
  for (const auto& n : array_or_empty(nodes))
    t.add_row({field_str(n, "id"), or_dash(field_str(n, "hostname")), or_dash(field_str(n, "address")),
               or_dash(field_str(n, "state")), used_of_total(n, "cpus", format_number),
               used_of_total(n, "mem", format_mem), node_ports(n)});
  return t;
}

Table servers_table(const Json& leader, const Json& replication) {
  Table t({"SERVER", "ROLE", "URL", "ARTIFACTS", "LAST REPORT"});
  const Json& l = field(leader, "leader");
  size_t held = array_or_empty(field(replication, "artifacts")).size();
  if (l.is_object()) t.add_row({field_str(l, "id"), "leader", or_dash(field_str(l, "url")), std::to_string(held), "-"});
  for (const auto& s : array_or_empty(field(replication, "servers")))
    t.add_row({field_str(s, "server"), field_bool(s, "live") ? "follower" : "follower (silent)",
               or_dash(field_str(s, "url")), std::to_string(field_int(s, "artifacts")),
               format_duration_ms(field_int(s, "reportedAgoMs")) + " ago"});
  return t;
}

Table routes_table(const Json& doc) {
  Table t({"HOST", "PATH", "APP", "INSTANCE", "ADDRESS", "STATE"});
  const Json& apps = field(doc, "apps");
  for (const auto& r : array_or_empty(field(doc, "routes"))) {
    std::string app = field_str(r, "app");
    size_t port_index = static_cast<size_t>(field_int(r, "portIndex"));
    std::string host = field_str(r, "host"), path = field_str(r, "path");
    const Json& instances = array_or_empty(field(field(apps, app.c_str()), "instances"));
    if (instances.empty()) t.add_row({host, path, app, "(no instances)", "-", "-"});
    for (const auto& i : instances) {
      const Json& ports = array_or_empty(field(i, "ports"));
      std::string addr = port_index < ports.size() ? field_str(i, "host") + ":" + ports[port_index].dump() : "-";
      t.add_row({host, path, app, field_str(i, "task"), addr, field_bool(i, "healthy") ? "healthy" : "not ready"});
    }
  }
  return t;
}

std::string routers_summary(const Json& doc) {
  std::string out;
  int64_t version = field_int(doc, "version");
  for (const auto& r : array_or_empty(field(doc, "routers"))) {
    int64_t applied = field_int(r, "appliedVersion");
    out += "router " + field_str(r, "address") + " on " + or_dash(field_str(r, "node")) + ": table version " +
           std::to_string(version) +
           (applied == version ? " applied" : " (applying; router is at " + std::to_string(applied) + ")") + "\n";
  }
  return out.empty() ? "No router runs (stele server --router-listen off).\n" : out;
}

std::string release_change(const Json& d) {
  std::string from = field_str(d, "fromRelease"), to = field_str(d, "toRelease");
  if (from.empty() || from == "0" || from == to) return "r" + or_dash(to);
  return "r" + from + "->r" + or_dash(to);
}

std::string instance_change(const Json& d) {
  std::string from = field_str(d, "fromInstances"), to = field_str(d, "toInstances");
  if (from.empty() || from == to) return or_dash(to);
  return from + "->" + or_dash(to);
}

Table deployments_table(const Json& deployments, int64_t now_ms) {
  Table t({"ID", "APP", "KIND", "RELEASE", "INSTANCES", "STATUS", "AGE", "STEP"});
  for (const auto& d : array_or_empty(deployments)) {
    std::string status = field_str(d, "status");
    std::string note = field_str(d, status == "running" ? "step" : "reason");
    t.add_row({field_str(d, "id"), field_str(d, "appId"), or_dash(field_str(d, "kind")), release_change(d),
               instance_change(d), or_dash(status), format_since(field_time_ms(d, {"started"}), now_ms), note});
  }
  return t;
}

namespace {

std::string release_artifact(const Json& r) {
  std::string digest = field_str(r, "artifact");
  if (digest.empty()) return "-";
  auto size = field_num(r, "artifactSize");
  return short_digest(digest) + (size ? " " + format_bytes(*size) : "");
}

std::string release_duration(const Json& r, const char* step) {
  auto ms = field_num(field(r, "durations"), step);
  return ms ? format_duration_ms(static_cast<int64_t>(*ms)) : "-";
}

std::string release_note(const Json& r) {
  std::string status = field_str(r, "status"), step = field_str(r, "step"), reason = field_str(r, "reason");
  if (status == "failed") return step.empty() ? reason : step + (reason.empty() ? "" : ": " + reason);
  std::string reused = field_str(r, "reusedFrom");
  if (!reused.empty() && reused != "0") return "slug of r" + reused;
  return status == "ready" ? "" : step;
}

}  // namespace

Table releases_table(const Json& releases, int64_t current, int64_t now_ms) {
  std::vector<Json> sorted(array_or_empty(releases).begin(), array_or_empty(releases).end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Json& a, const Json& b) { return field_int(a, "number") > field_int(b, "number"); });
  Table t({"RELEASE", "CURRENT", "STATUS", "CAUSE", "SHA", "ARTIFACT", "BUILD", "TEST", "SMOKE", "AGE", "NOTE"});
  for (const auto& r : sorted) {
    bool is_current = field_bool(r, "current") || (current > 0 && field_int(r, "number") == current);
    t.add_row({field_str(r, "number"), is_current ? "*" : "", or_dash(field_str(r, "status")),
               or_dash(field_str(r, "cause")), or_dash(field_str(r, "sha").substr(0, 8)), release_artifact(r),
               release_duration(r, "build"), release_duration(r, "test"), release_duration(r, "smoke"),
               format_since(field_time_ms(r, {"createdAt", "created", "version"}), now_ms), release_note(r)});
  }
  return t;
}

Table config_table(const Json& config) {
  Table t({"KEY", "VALUE"});
  if (!config.is_object()) return t;
  for (const auto& [k, v] : config.items()) t.add_row({k, v.is_string() ? v.get<std::string>() : v.dump()});
  return t;
}

}  // namespace stele::cli
