#include "agent/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>
#include <sstream>
#include <thread>

namespace stele {

namespace {
constexpr int64_t kCfsPeriodUs = 100000;

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// mkdir -p of `rel` under `base` (base must exist).
Result<void> make_dirs(const std::string& base, const std::string& rel) {
  std::string path = base;
  std::istringstream parts(rel);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty()) continue;
    path += "/" + part;
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
      return fail(errno_message("mkdir " + path, errno));
  }
  return {};
}

// Value of "<key> N" in a flat-keyed cgroup file, or -1.
int64_t keyed_value(const std::string& path, const std::string& key) {
  auto text = read_file(path);
  if (!text) return -1;
  std::istringstream in(*text);
  for (std::string k; in >> k;) {
    int64_t v = 0;
    if (!(in >> v)) return -1;
    if (k == key) return v;
  }
  return -1;
}

std::string canonical(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}
}  // namespace

int64_t cgroup_cpu_shares(double cpus) {
  return std::max<int64_t>(2, std::llround(cpus * 1024));
}

int64_t cgroup_cpu_weight(int64_t shares) { return 1 + ((shares - 2) * 9999) / 262142; }

int64_t cgroup_cpu_quota_us(double cpus, int64_t period_us) {
  return std::max<int64_t>(1000, std::llround(cpus * double(period_us)));
}

int64_t cgroup_memory_bytes(double mem_mb) { return std::llround(mem_mb * 1024 * 1024); }

CgroupFs::CgroupFs(std::string root, CgroupVersion version)
    : root_(std::move(root)), version_(version) {}

CgroupFs CgroupFs::detect(const std::string& root) {
  if (exists(root + "/cgroup.controllers")) return CgroupFs(root, CgroupVersion::v2);
  if (exists(root + "/memory/cgroup.procs") || exists(root + "/cpu/cgroup.procs"))
    return CgroupFs(root, CgroupVersion::v1);
  return CgroupFs(root, CgroupVersion::none);
}

// The v1 hierarchies Stele uses, each listed once even when co-mounted
// ("cpu" and "cpuacct" both linking to "cpu,cpuacct").
std::vector<std::string> CgroupFs::v1_hierarchies() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const char* c : {"cpu", "cpuacct", "memory", "pids"}) {
    std::string dir = root_ + "/" + c;
    if (!exists(dir + "/cgroup.procs")) continue;
    if (seen.insert(canonical(dir)).second) out.push_back(c);
  }
  return out;
}

std::vector<std::string> CgroupFs::v2_controllers() const {
  std::vector<std::string> out;
  auto text = read_file(root_ + "/cgroup.controllers");
  if (!text) return out;
  std::istringstream in(*text);
  for (std::string c; in >> c;)
    if (c == "cpu" || c == "memory" || c == "pids") out.push_back(c);
  return out;
}

TaskCgroup CgroupFs::locate(const std::string& relpath) const {
  TaskCgroup cg;
  cg.relpath = relpath;
  if (version_ == CgroupVersion::v2) {
    std::string dir = root_ + "/" + relpath;
    cg.dirs.push_back(dir);
    for (const auto& c : v2_controllers()) {
      if (c == "cpu") cg.cpu_dir = dir;
      if (c == "memory") cg.memory_dir = dir;
      if (c == "pids") cg.pids_dir = dir;
    }
  } else if (version_ == CgroupVersion::v1) {
    for (const auto& h : v1_hierarchies()) {
      std::string dir = root_ + "/" + h + "/" + relpath;
      cg.dirs.push_back(dir);
      if (h == "cpu") cg.cpu_dir = dir;
      if (h == "memory") cg.memory_dir = dir;
      if (h == "pids") cg.pids_dir = dir;
    }
  }
  return cg;
}

Result<void> CgroupFs::enable_v2_controllers(const std::string& relpath) const {
  std::string line;
  for (const auto& c : v2_controllers()) line += (line.empty() ? "+" : " +") + c;
  if (line.empty()) return {};
  // Every ancestor of the task's cgroup delegates the controllers downwards.
  std::string dir = root_;
  std::istringstream parts(relpath);
  std::vector<std::string> comps;
  for (std::string p; std::getline(parts, p, '/');)
    if (!p.empty()) comps.push_back(p);
  for (size_t i = 0; i + 1 <= comps.size(); ++i) {
    auto r = write_file(dir + "/cgroup.subtree_control", line);
    if (!r) return r;
    dir += "/" + comps[i];
  }
  return {};
}

Result<void> CgroupFs::write_limits(const TaskCgroup& cg, const CgroupLimits& l) const {
  auto put = [](const std::string& dir, const char* file, const std::string& v) {
    return write_file(dir + "/" + file, v);
  };
  int64_t shares = cgroup_cpu_shares(l.cpus);
  int64_t quota = cgroup_cpu_quota_us(l.cpus, kCfsPeriodUs);
  std::string mem = std::to_string(cgroup_memory_bytes(l.mem_mb));
  std::string pids = std::to_string(l.pids_max);
  std::vector<Result<void>> rs;
  if (version_ == CgroupVersion::v1) {
    if (!cg.cpu_dir.empty()) {
      rs.push_back(put(cg.cpu_dir, "cpu.shares", std::to_string(shares)));
      rs.push_back(put(cg.cpu_dir, "cpu.cfs_period_us", std::to_string(kCfsPeriodUs)));
      rs.push_back(put(cg.cpu_dir, "cpu.cfs_quota_us", std::to_string(quota)));
    }
    if (!cg.memory_dir.empty() && l.mem_mb > 0) {
      rs.push_back(put(cg.memory_dir, "memory.limit_in_bytes", mem));
      // Without this, swap would let the task exceed its limit (when accounted).
      if (exists(cg.memory_dir + "/memory.memsw.limit_in_bytes"))
        rs.push_back(put(cg.memory_dir, "memory.memsw.limit_in_bytes", mem));
    }
    if (!cg.pids_dir.empty() && l.pids_max > 0) rs.push_back(put(cg.pids_dir, "pids.max", pids));
  } else {
    if (!cg.cpu_dir.empty()) {
      rs.push_back(put(cg.cpu_dir, "cpu.weight", std::to_string(cgroup_cpu_weight(shares))));
      rs.push_back(
          put(cg.cpu_dir, "cpu.max", std::to_string(quota) + " " + std::to_string(kCfsPeriodUs)));
    }
    if (!cg.memory_dir.empty() && l.mem_mb > 0) {
      rs.push_back(put(cg.memory_dir, "memory.max", mem));
      if (exists(cg.memory_dir + "/memory.swap.max"))
        rs.push_back(put(cg.memory_dir, "memory.swap.max", "0"));
    }
    if (!cg.pids_dir.empty() && l.pids_max > 0) rs.push_back(put(cg.pids_dir, "pids.max", pids));
  }
  for (auto& r : rs)
    if (!r) return r;
  return {};
}

Result<TaskCgroup> CgroupFs::create(const std::string& relpath, const CgroupLimits& l) const {
  TaskCgroup cg = locate(relpath);
  if (version_ == CgroupVersion::none) return cg;
  if (version_ == CgroupVersion::v2) {
    auto r = make_dirs(root_, relpath);
    if (!r) return fail(r.error());
    if (auto e = enable_v2_controllers(relpath); !e) return fail(e.error());
  } else {
    for (const auto& h : v1_hierarchies())
      if (auto r = make_dirs(root_ + "/" + h, relpath); !r) return fail(r.error());
  }
  if (auto r = write_limits(cg, l); !r) return fail(r.error());
  return cg;
}

Result<std::vector<UniqueFd>> CgroupFs::open_join_files(const TaskCgroup& cg) const {
  const char* file = version_ == CgroupVersion::v1 ? "tasks" : "cgroup.procs";
  std::vector<UniqueFd> fds;
  for (const auto& d : cg.dirs) {
    std::string p = d + "/" + file;
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return fail(errno_message("open " + p, errno));
    fds.push_back(std::move(fd));
  }
  return fds;
}

Result<UniqueFd> CgroupFs::open_dir(const TaskCgroup& cg) const {
  if (version_ != CgroupVersion::v2 || cg.dirs.empty()) return UniqueFd();
  UniqueFd fd(::open(cg.dirs[0].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail(errno_message("open " + cg.dirs[0], errno));
  return fd;
}

int64_t CgroupFs::oom_kills(const TaskCgroup& cg) const {
  if (cg.memory_dir.empty()) return 0;
  if (version_ == CgroupVersion::v2)
    return std::max<int64_t>(0, keyed_value(cg.memory_dir + "/memory.events", "oom_kill"));
  int64_t n = keyed_value(cg.memory_dir + "/memory.oom_control", "oom_kill");
  if (n >= 0) return n;
  auto failcnt = read_file(cg.memory_dir + "/memory.failcnt");
  return failcnt && std::atoll(failcnt->c_str()) > 0 ? 1 : 0;
}

std::vector<pid_t> CgroupFs::procs(const TaskCgroup& cg) const {
  std::set<pid_t> pids;
  for (const auto& d : cg.dirs) {
    auto text = read_file(d + "/cgroup.procs");
    if (!text) continue;
    std::istringstream in(*text);
    for (long p; in >> p;)
      if (p > 0) pids.insert(static_cast<pid_t>(p));
  }
  return {pids.begin(), pids.end()};
}

int CgroupFs::kill_all(const TaskCgroup& cg) const {
  int signalled = 0;
  if (version_ == CgroupVersion::v2 && !cg.dirs.empty() && exists(cg.dirs[0] + "/cgroup.kill"))
    (void)write_file(cg.dirs[0] + "/cgroup.kill", "1");
  for (int round = 0; round < 50; ++round) {
    auto pids = procs(cg);
    if (pids.empty()) break;
    for (pid_t p : pids)
      if (::kill(p, SIGKILL) == 0) ++signalled;
    std::this_thread::sleep_for(std::chrono::milliseconds(round < 5 ? 1 : 10));
  }
  return signalled;
}

Result<void> CgroupFs::remove(const TaskCgroup& cg) const {
  std::string last_error;
  for (const auto& d : cg.dirs) {
    for (int attempt = 0;; ++attempt) {
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      // A fake tree holds regular files; a real cgroup is busy until its
      // last member is reaped.
      if (errno == ENOTEMPTY || attempt >= 100) {
        last_error = errno_message("rmdir " + d, errno);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (!last_error.empty()) return fail(last_error);
  return {};
}

}  // namespace stele
