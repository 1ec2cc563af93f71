#include "docker/api_types.h"

#include <algorithm>

namespace stele::docker {

namespace {

std::string str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t num(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::map<std::string, std::string> labels_of(const Json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

const Json& member(const Json& j, const char* key) {
  static const Json kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

}  // namespace

Json create_body(const ContainerConfig& c) {
  Json host = {{"NetworkMode", "host"}};
  if (c.memory_bytes > 0) host["Memory"] = c.memory_bytes, host["MemorySwap"] = c.memory_bytes;
  if (c.cpu_shares > 0) host["CpuShares"] = c.cpu_shares;
  if (c.cpu_quota_us > 0) host["CpuQuota"] = c.cpu_quota_us;
  if (c.cpu_period_us > 0) host["CpuPeriod"] = c.cpu_period_us;
  if (!c.binds.empty()) host["Binds"] = c.binds;
  if (!c.cgroup_parent.empty()) host["CgroupParent"] = c.cgroup_parent;
  Json b = {{"Image", c.image}, {"HostConfig", host}, {"Labels", c.labels},
            {"AttachStdin", false}, {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}};
  if (!c.shell_cmd.empty()) {
    b["Entrypoint"] = {"/bin/sh", "-c"};
    b["Cmd"] = {c.shell_cmd};
  } else {
    if (!c.cmd.empty()) b["Cmd"] = c.cmd;
    if (c.entrypoint) b["Entrypoint"] = *c.entrypoint;
  }
  if (!c.env.empty()) b["Env"] = c.env;
  if (!c.user.empty()) b["User"] = c.user;
  if (!c.working_dir.empty()) b["WorkingDir"] = c.working_dir;
  if (!c.stop_signal.empty()) b["StopSignal"] = c.stop_signal;
  if (c.stop_timeout_s) b["StopTimeout"] = *c.stop_timeout_s;
  return b;
}

Result<ContainerInfo> parse_container_info(const Json& j) {
  if (!j.is_object() || !j.contains("Id")) return fail("docker: container inspect answer has no Id");
  ContainerInfo c;
  c.id = str(j, "Id");
  c.name = str(j, "Name");
  if (!c.name.empty() && c.name[0] == '/') c.name.erase(0, 1);
  c.image_id = str(j, "Image");
  const Json& s = member(j, "State");
  if (s.is_object()) {
    c.status = str(s, "Status");
    c.running = s.value("Running", false);
    c.pid = static_cast<int>(num(s, "Pid"));
    c.exit_code = static_cast<int>(num(s, "ExitCode"));
    c.oom_killed = s.value("OOMKilled", false);
    c.error = str(s, "Error");
    c.started_at = str(s, "StartedAt");
    c.finished_at = str(s, "FinishedAt");
  }
  const Json& cfg = member(j, "Config");
  if (cfg.is_object()) c.labels = labels_of(member(cfg, "Labels"));
  return c;
}

Result<std::vector<ContainerSummary>> parse_container_list(const Json& j) {
  if (!j.is_array()) return fail("docker: container list answer is not an array");
  std::vector<ContainerSummary> out;
  for (const Json& e : j) {
    if (!e.is_object()) continue;
    ContainerSummary s{str(e, "Id"), "", str(e, "ImageID"), str(e, "State"), labels_of(member(e, "Labels"))};
    const Json& names = member(e, "Names");
    if (names.is_array() && !names.empty() && names[0].is_string()) s.name = names[0].get<std::string>();
    if (!s.name.empty() && s.name[0] == '/') s.name.erase(0, 1);
    out.push_back(std::move(s));
  }
  return out;
}

Result<ImageInfo> parse_image_info(const Json& j) {
  if (!j.is_object() || !j.contains("Id")) return fail("docker: image inspect answer has no Id");
  ImageInfo i{str(j, "Id"), {}, num(j, "Size")};
  const Json& tags = member(j, "RepoTags");
  if (tags.is_array())
    for (const Json& t : tags)
      if (t.is_string()) i.repo_tags.push_back(t.get<std::string>());
  return i;
}

std::string label_filters(const std::vector<std::string>& labels, const std::string& type) {
  Json f = Json::object();
  if (!labels.empty()) f["label"] = labels;
  if (!type.empty()) f["type"] = {type};
  return f.dump();
}

Error api_error(const std::string& what, int status, const std::string& body) {
  std::string msg;
  auto j = parse_json(body);
  if (j && j->is_object()) msg = str(*j, "message");
  if (msg.empty() && !j) msg = body.substr(0, 512);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r' || msg.back() == ' ')) msg.pop_back();
  if (msg.empty()) msg = "HTTP " + std::to_string(status);
  return Error{"docker: " + what + ": " + msg + " (" + std::to_string(status) + ")", {}, status};
}

Result<void> check_ref(const std::string& what, const std::string& ref) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-' || c == '/' || c == ':' || c == '@';
  };
  if (ref.empty() || ref.size() > 512 || !std::all_of(ref.begin(), ref.end(), ok) || ref.find("..") != std::string::npos)
    return fail("docker: " + what + ": '" + ref + "' is not a valid container or image name", 400);
  return {};
}

}  // namespace stele::docker
