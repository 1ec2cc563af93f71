#include "cli/event_format.h"

#include <fmt/format.h>

#include "cli/fields.h"
#include "cli/views.h"

namespace stele::cli {

namespace {

std::string in_parens(const Json& e) {
  std::string reason = field_str(e, "reason"), message = field_str(e, "message");
  if (reason.empty() && message.empty()) return "";
  if (reason.empty() || message.empty() || reason == message) return " (" + reason + message + ")";
  return " (" + reason + ": " + message + ")";
}

std::string describe_task(const Json& e) {
  std::string s = "task " + field_str(e, "task") + " " + field_str(e, "state");
  if (auto host = field_str(e, "host"); !host.empty()) s += " on " + host;
  if (auto ports = task_ports(e); ports != "-") s += " ports " + ports;
  return s + in_parens(e);
}

std::string describe_deployment(const std::string& type, const Json& d) {
  std::string id = "deployment " + field_str(d, "id");
  std::string kind = field_str(d, "kind");
  std::string change = (kind.empty() ? "deploy" : kind) + " " +
                       (kind == "scale" ? instance_change(d) + " instances" : release_change(d));
  if (type == "deployment_started") return id + " started (" + change + ")";
  if (type == "deployment_step") return id + ": " + field_str(d, "step");
  if (type == "deployment_succeeded") return id + " succeeded (" + change + ")";
  std::string reason = field_str(d, "reason");
  std::string verb = type == "deployment_failed" ? " failed" : " canceled";
  return id + verb + (reason.empty() ? "" : ": " + reason);
}

std::string describe_node(const std::string& type, const Json& e) {
  const Json& n = field(e, "node");
  std::string name = n.is_string() ? n.get<std::string>() : field_str(n, "hostname");
  std::string address = field_str(n, "address");
  std::string what = type == "node_registered" ? "registered" : type == "node_lost" ? "lost" : "re-registered";
  return "node " + name + (address.empty() ? "" : " (" + address + ")") + " " + what;
}

std::string describe_other(const Json& e) {
  Json rest = Json::object();
  for (auto it = e.begin(); it != e.end(); ++it)
    if (it.key() != "id" && it.key() != "type" && it.key() != "time" && it.key() != "app" && it.key() != "actor")
      rest[it.key()] = it.value();
  std::string s = rest.empty() ? "" : rest.dump();
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

std::string describe_app_event(const std::string& type, const Json& e) {
  std::string release = field_str(e, "release");
  if (type == "app_created") return "app created" + (release.empty() ? "" : " (release " + release + ")");
  if (type == "release_created" || type == "release_building" || type == "release_testing" ||
      type == "release_ready" || type == "release_failed") {
    std::string status = field_str(e, "status"), cause = field_str(e, "cause"), sha = field_str(e, "sha");
    std::string s = "release " + release + " " + (type == "release_created" ? "created" : status);
    if (!cause.empty()) s += " (" + cause + (sha.empty() ? "" : " " + sha.substr(0, 8)) + ")";
    if (type == "release_failed") s += ": " + field_str(e, "step") + " failed: " + field_str(e, "reason");
    return s;
  }
  if (type == "config_changed") {
    std::string keys;
    for (const auto& k : field(e, "keys")) keys += (keys.empty() ? "" : ", ") + (k.is_string() ? k.get<std::string>() : k.dump());
    return "config changed: " + keys + (release.empty() ? "" : " (release " + release + ")");
  }
  if (type == "app_deleted") return "app deleted";
  if (type == "app_scaled") return "scaled to " + field_str(e, "instances") + " instances";
  if (type == "app_reverted") {
    std::string reason = field_str(e, "reason");
    return "reverted to release " + release + (reason.empty() ? "" : ": " + reason);
  }
  if (type == "task_waiting") return "waiting: " + field_str(e, "reason");
  return describe_other(e);
}

}  // namespace

std::string describe_event(const Json& e) {
  std::string type = field_str(e, "type");
  std::string s;
  if (type == "task_status") s = describe_task(e);
  else if (type == "health_changed")
    s = "task " + field_str(e, "task") + (field_bool(e, "alive") ? " healthy" : " unhealthy");
  else if (type.rfind("deployment_", 0) == 0) s = describe_deployment(type, field(e, "deployment"));
  else if (type.rfind("node_", 0) == 0) s = describe_node(type, e);
  else s = describe_app_event(type, e);
  if (auto actor = field_str(e, "actor"); !actor.empty()) s += " [by " + actor + "]";
  return s;
}

std::string format_event_line(const Json& e) {
  std::string time = field_str(e, "time"), app = field_str(e, "app");
  return fmt::format("{}  {:<20}  {}  {}", time.empty() ? "-" : time, field_str(e, "type"), app.empty() ? "-" : app,
                     describe_event(e));
}

DeploymentWatch::DeploymentWatch(std::string app_id, std::string deployment_id)
    : app_id_(std::move(app_id)), deployment_id_(std::move(deployment_id)) {}

DeploymentWatch::Step DeploymentWatch::on_event(const Json& e) {
  if (done()) return {};
  std::string app = field_str(e, "app");
  if (!app.empty() && app != app_id_) return {};
  std::string type = field_str(e, "type");
  if (type.rfind("deployment_", 0) == 0) return on_deployment_event(type, field(e, "deployment"));
  if (!seen_) return {};
  return on_app_event(type, e);
}

DeploymentWatch::Step DeploymentWatch::on_deployment_event(const std::string& type, const Json& d) {
  if (field_str(d, "id") != deployment_id_) return {};
  seen_ = true;
  last_ = d;
  reason_ = field_str(d, "reason");
  if (type == "deployment_succeeded") outcome_ = Outcome::Succeeded;
  else if (type == "deployment_failed") outcome_ = Outcome::Failed;
  else if (type == "deployment_canceled") outcome_ = Outcome::Canceled;
  std::string step = field_str(d, "step");
  bool show_step = type == "deployment_step" && !step.empty();
  return {true, show_step ? "  deployment step: " + step : ""};
}

DeploymentWatch::Step DeploymentWatch::on_app_event(const std::string& type, const Json& e) {
  if (type == "task_status" || type == "health_changed" || type == "task_waiting" || type == "app_reverted")
    return {true, "  " + describe_event(e)};
  if (type == "app_deleted") {
    outcome_ = Outcome::Failed;
    reason_ = "the app was deleted";
    return {true, ""};
  }
  return {};
}

std::string DeploymentWatch::summary() const {
  std::string id = "deployment " + deployment_id_;
  switch (outcome_) {
    case Outcome::Running:
      return "";
    case Outcome::Succeeded: {
      std::string n = field_str(last_, "toInstances");
      return "Deployment " + deployment_id_ + " succeeded: " + app_id_ + " runs release " + field_str(last_, "toRelease") +
             (n.empty() ? "" : " with " + n + (n == "1" ? " instance" : " instances"));
    }
    case Outcome::Failed:
      return id + " failed" + (reason_.empty() ? "" : ": " + reason_);
    case Outcome::Canceled:
      return id + " was canceled" + (reason_.empty() ? "" : ": " + reason_);
  }
  return "";
}

}  // namespace stele::cli
