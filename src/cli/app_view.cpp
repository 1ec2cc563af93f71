// `stele app ID`: the detail block of one App (declared in views.h).
#include "cli/fields.h"
#include "cli/views.h"
#include "common/clock.h"

namespace stele::cli {

namespace {

void append(std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; }

std::string spec_command(const Json& spec) {
  if (auto c = field_str(spec, "cmd"); !c.empty()) return c;
  std::string args;
  for (const auto& a : array_or_empty(field(spec, "args")))
    if (a.is_string()) args += (args.empty() ? "" : " ") + a.get<std::string>();
  return args;
}

std::string spec_image(const Json& spec) { return field_str(field(field(spec, "container"), "docker"), "image"); }

std::string spec_resources(const Json& spec) {
  std::string out;
  if (auto c = field_num(spec, "cpus")) append(out, "cpus " + format_number(*c));
  if (auto m = field_num(spec, "mem")) append(out, "mem " + format_mem(*m));
  if (auto d = field_num(spec, "disk"); d && *d > 0) append(out, "disk " + format_mem(*d));
  return out;
}

std::string spec_ports(const Json& spec) {
  std::string out;
  for (const auto& p : array_or_empty(field(spec, "portDefinitions"))) {
    int64_t port = field_int(p, "port");
    std::string name = field_str(p, "name");
    append(out, (name.empty() ? "" : name + "=") + (port == 0 ? std::string("auto") : std::to_string(port)));
  }
  return out;
}

std::string spec_health_checks(const Json& spec) {
  std::string out;
  for (const auto& h : array_or_empty(field(spec, "healthChecks"))) {
    std::string protocol = field_str(h, "protocol");
    std::string what = protocol == "COMMAND" ? field_str(field(h, "command"), "value") : field_str(h, "path");
    std::string every = field_str(h, "intervalSeconds");
    append(out, protocol + (what.empty() ? "" : " " + what) + (every.empty() ? "" : " every " + every + "s"));
  }
  return out;
}

std::string spec_constraints(const Json& spec) {
  std::string out;
  for (const auto& c : array_or_empty(field(spec, "constraints"))) {
    std::string one;
    for (const auto& part : array_or_empty(c))
      if (part.is_string()) one += (one.empty() ? "" : ":") + part.get<std::string>();
    if (!one.empty()) append(out, one);
  }
  return out;
}

std::string instances_line(const Json& app) {
  return field_str(app, "instances") + " (running " + field_str(app, "tasksRunning") + ", healthy " +
         field_str(app, "tasksHealthy") + ", staged " + field_str(app, "tasksStaged") + ", unhealthy " +
         field_str(app, "tasksUnhealthy") + ")";
}

std::string release_line(const Json& app) {
  std::string r = field_str(app, "release");
  if (r.empty()) r = field_str(app, "currentRelease");
  std::string prev = field_str(app, "previousRelease");
  return prev.empty() || prev == "0" ? r : r + " (previous " + prev + ")";
}

std::string deployment_line(const Json& app) {
  const Json& d = field(app, "deployment");
  if (!d.is_object()) return "none";
  return field_str(d, "id") + " (" + app_status(app) + ")";
}

std::string created_line(const Json& app, int64_t now_ms) {
  auto created = field_time_ms(app, {"created"});
  if (!created || *created <= 0) return "";
  return iso8601(*created) + " (" + format_age(now_ms - *created) + " ago)";
}

}  // namespace

std::string app_details(const Json& app, int64_t now_ms) {
  const Json& spec = field(app, "spec");
  return render_fields({
      {"ID", field_str(app, "id")},
      {"Status", app_status(app)},
      {"Release", release_line(app)},
      {"Instances", instances_line(app)},
      {"Deployment", deployment_line(app)},
      {"Waiting", field_str(app, "waiting")},
      {"Command", spec_command(spec)},
      {"Image", spec_image(spec)},
      {"Resources", spec_resources(spec)},
      {"Ports", spec_ports(spec)},
      {"Health checks", spec_health_checks(spec)},
      {"Constraints", spec_constraints(spec)},
      {"Created", created_line(app, now_ms)},
  });
}

}  // namespace stele::cli
