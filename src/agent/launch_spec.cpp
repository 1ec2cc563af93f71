#include "agent/launch_spec.h"

#include <grp.h>
#include <pwd.h>

#include <fmt/format.h>

namespace stele {

namespace {
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string join_ports(const std::vector<int>& ports) {
  std::string out;
  for (size_t i = 0; i < ports.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ports[i]);
  }
  return out;
}

// "0.5" rather than "0.500000" for resource variables.
std::string number(double v) { return fmt::format("{}", v); }
}  // namespace

void to_json(Json& j, const LaunchSpec& s) {
  j = Json{{"task_id", s.task_id},
           {"app_id", s.app_id},
           {"release", s.release},
           {"seq", s.seq},
           {"args", s.args},
           {"env", s.env},
           {"cpus", s.cpus},
           {"mem", s.mem},
           {"disk", s.disk},
           {"ports", s.ports},
           {"host", s.host},
           {"user", s.user},
           {"kill_grace_seconds", s.kill_grace_seconds},
           {"sandbox", s.sandbox},
           {"cgroup_parent", s.cgroup_parent},
           {"recovery_timeout_seconds", s.recovery_timeout_seconds}};
  if (s.cmd) j["cmd"] = *s.cmd;
  if (s.work_dir) j["work_dir"] = *s.work_dir;
  if (s.uid) j["uid"] = *s.uid;
  if (s.gid) j["gid"] = *s.gid;
  if (!s.groups.empty()) j["groups"] = s.groups;
  if (!s.node.empty()) j["node"] = s.node;
  if (!s.step.empty()) j["step"] = s.step;
  if (s.containerizer != "process") j["containerizer"] = s.containerizer;
  if (s.docker)
    j["docker"] = Json{{"image", s.docker->image},         {"force_pull", s.docker->force_pull},
                       {"user", s.docker->user},           {"working_dir", s.docker->working_dir},
                       {"labels", s.docker->labels},       {"binds", s.docker->binds},
                       {"agent_id", s.docker->agent_id},   {"socket", s.docker->socket},
                       {"dockerfile", s.docker->dockerfile}};
}

void from_json(const Json& j, LaunchSpec& s) {
  LaunchSpec d;
  s.task_id = j.value("task_id", d.task_id);
  s.app_id = j.value("app_id", d.app_id);
  s.release = j.value("release", d.release);
  s.seq = j.value("seq", d.seq);
  s.cmd = j.contains("cmd") && !j["cmd"].is_null() ? std::optional(j["cmd"].get<std::string>())
                                                   : std::nullopt;
  s.args = j.value("args", d.args);
  s.env = j.value("env", d.env);
  s.cpus = j.value("cpus", d.cpus);
  s.mem = j.value("mem", d.mem);
  s.disk = j.value("disk", d.disk);
  s.ports = j.value("ports", d.ports);
  s.host = j.value("host", d.host);
  s.user = j.value("user", d.user);
  s.kill_grace_seconds = j.value("kill_grace_seconds", d.kill_grace_seconds);
  s.sandbox = j.value("sandbox", d.sandbox);
  s.cgroup_parent = j.value("cgroup_parent", d.cgroup_parent);
  s.recovery_timeout_seconds = j.value("recovery_timeout_seconds", d.recovery_timeout_seconds);
  s.work_dir = j.contains("work_dir") && !j["work_dir"].is_null()
                   ? std::optional(j["work_dir"].get<std::string>())
                   : std::nullopt;
  auto id = [&](const char* k) {
    return j.contains(k) && !j[k].is_null() ? std::optional(j[k].get<uint32_t>()) : std::nullopt;
  };
  s.uid = id("uid");
  s.gid = id("gid");
  s.groups = j.value("groups", d.groups);
  s.node = j.value("node", d.node);
  s.step = j.value("step", d.step);
  s.containerizer = j.value("containerizer", d.containerizer);
  s.docker.reset();
  if (j.contains("docker") && j["docker"].is_object()) {
    const Json& k = j["docker"];
    DockerLaunch dl;
    dl.image = k.value("image", dl.image);
    dl.force_pull = k.value("force_pull", dl.force_pull);
    dl.user = k.value("user", dl.user);
    dl.working_dir = k.value("working_dir", dl.working_dir);
    dl.labels = k.value("labels", dl.labels);
    dl.binds = k.value("binds", dl.binds);
    dl.agent_id = k.value("agent_id", dl.agent_id);
    dl.socket = k.value("socket", dl.socket);
    dl.dockerfile = k.value("dockerfile", dl.dockerfile);
    s.docker = std::move(dl);
  }
}

Result<TaskCredentials> resolve_task_user(const std::string& name) {
  TaskCredentials c;
  c.user = name.empty() ? (::getpwnam("stele-task") ? "stele-task" : "nobody") : name;
  std::vector<char> buf(16384);
  struct passwd pw, *res = nullptr;
  if (::getpwnam_r(c.user.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res)
    return fail("unknown task user '" + c.user + "'");
  if (pw.pw_uid == 0) return fail("refusing to run the task as root (user '" + c.user + "')");
  c.uid = pw.pw_uid;
  c.gid = pw.pw_gid;
  int n = 64;
  std::vector<gid_t> groups(n);
  if (::getgrouplist(c.user.c_str(), c.gid, groups.data(), &n) < 0) {
    groups.resize(n);
    ::getgrouplist(c.user.c_str(), c.gid, groups.data(), &n);
  }
  groups.resize(n);
  c.groups.assign(groups.begin(), groups.end());
  return c;
}

bool is_safe_task_id(const std::string& id) {
  return !id.empty() && id != "." && id != ".." && id.find('/') == std::string::npos &&
         id.find('\0') == std::string::npos;
}

Result<LaunchSpec> parse_launch_spec(const Json& j) {
  LaunchSpec s;
  try {
    s = j.get<LaunchSpec>();
  } catch (const std::exception& e) {
    return fail(std::string("invalid launch spec: ") + e.what(), 422);
  }
  Error err{"invalid launch spec", {}, 422};
  auto bad = [&](std::string path, std::string why) { err.details.push_back({path, {why}}); };
  if (!is_safe_task_id(s.task_id)) bad("/task_id", "must be a non-empty file name");
  if (s.sandbox.empty() || s.sandbox.front() != '/') bad("/sandbox", "must be an absolute path");
  bool docker = s.containerizer == "docker";
  if (!s.cmd && s.args.empty() && !docker) bad("/cmd", "cmd or args is required");
  if (docker && (!s.docker || s.docker->image.empty())) bad("/docker/image", "a docker task needs an image");
  if (s.cpus <= 0) bad("/cpus", "must be positive");
  if (s.mem < 0) bad("/mem", "must not be negative");
  if (s.kill_grace_seconds < 0) bad("/kill_grace_seconds", "must not be negative");
  if (s.recovery_timeout_seconds < 0) bad("/recovery_timeout_seconds", "must not be negative");
  if (!err.details.empty()) return fail(std::move(err));
  return s;
}

std::map<std::string, std::string> task_environment(const LaunchSpec& s) {
  auto env = s.env;
  env.try_emplace("HOME", s.sandbox);
  env.try_emplace("PATH", kDefaultPath);
  if (!s.ports.empty()) {
    env["PORT"] = std::to_string(s.ports.front());
    env["PORTS"] = join_ports(s.ports);
    for (size_t i = 0; i < s.ports.size(); ++i)
      env["PORT" + std::to_string(i)] = std::to_string(s.ports[i]);
  }
  env["HOST"] = s.host;
  env["MARATHON_APP_ID"] = s.app_id;
  env["MARATHON_APP_RESOURCE_CPUS"] = number(s.cpus);
  env["MARATHON_APP_RESOURCE_MEM"] = number(s.mem);
  env["MARATHON_APP_RESOURCE_DISK"] = number(s.disk);
  env["MESOS_TASK_ID"] = s.task_id;
  env["MESOS_SANDBOX"] = s.sandbox;
  env["STELE_APP_ID"] = s.app_id;
  env["STELE_TASK_ID"] = s.task_id;
  env["STELE_RELEASE"] = std::to_string(s.release);
  return env;
}

}  // namespace stele
