// Cgroups of tasks, v1 (one hierarchy per controller) or v2 (unified).
//
// CgroupFs is rooted at a path and a version so tests drive it against a
// fake tree in a temp dir; detect() picks the host's layout. A task's cgroup
// is "<cgroup_parent>/<task_id>" under each hierarchy:
//   v1: <root>/{cpu,cpuacct,memory,pids}/<parent>/<task>  (co-mounted ones once)
//   v2: <root>/<parent>/<task>, controllers enabled in every ancestor's
//       cgroup.subtree_control.
// Methods are const and stateless apart from the root; safe from any thread.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "agent/executor_io.h"
#include "common/result.h"

namespace stele {

enum class CgroupVersion { none, v1, v2 };

struct CgroupLimits {
  double cpus = 1.0;       // cpu.shares / cpu.weight and a CFS quota
  double mem_mb = 128;     // 0 = no memory limit
  int64_t pids_max = 4096; // 0 = no limit
};

// One task's cgroup: its directory in every hierarchy.
struct TaskCgroup {
  std::string relpath;            // "<parent>/<task>"
  std::vector<std::string> dirs;  // absolute; v2 has one
  std::string cpu_dir, memory_dir, pids_dir;  // "" when the controller is absent
};

class CgroupFs {
 public:
  CgroupFs(std::string root, CgroupVersion version);
  // v2 when <root>/cgroup.controllers exists, v1 when <root>/memory or
  // <root>/cpu holds a cgroup.procs, else none.
  static CgroupFs detect(const std::string& root = "/sys/fs/cgroup");

  CgroupVersion version() const { return version_; }
  const std::string& root() const { return root_; }

  // Where `relpath` lives, without touching the filesystem beyond stat().
  TaskCgroup locate(const std::string& relpath) const;
  // mkdir -p in every hierarchy, enables controllers (v2) and writes limits.
  // The error names the file that could not be written.
  Result<TaskCgroup> create(const std::string& relpath, const CgroupLimits& limits) const;
  // Opens, for writing, the file of every hierarchy through which a forked
  // child joins with write(fd, "0") before exec ("0" = the writer, which
  // works inside a new pid namespace too). v1: "tasks" -- moving the single
  // calling thread skips the global cgroup_threadgroup_rwsem that a
  // cgroup.procs write takes (its RCU grace period cost up to 27 ms for the
  // four joins here, against 0.2 ms); the child is single-threaded, so the
  // whole process moves.
  // v2: "cgroup.procs" (the fallback when CLONE_INTO_CGROUP is unavailable).
  Result<std::vector<UniqueFd>> open_join_files(const TaskCgroup& cg) const;
  // v2: the cgroup's directory, for clone3(CLONE_INTO_CGROUP), which starts
  // the child inside it without any migration. v1/none: an empty fd.
  Result<UniqueFd> open_dir(const TaskCgroup& cg) const;
  // OOM kills recorded for the cgroup: "oom_kill N" of memory.oom_control
  // (v1) or memory.events (v2); falls back to memory.failcnt > 0 on v1
  // kernels without the counter. 0 when unknown.
  int64_t oom_kills(const TaskCgroup& cg) const;
  // Processes in the cgroup (any hierarchy, deduplicated).
  std::vector<pid_t> procs(const TaskCgroup& cg) const;
  // SIGKILLs every member until the cgroup is empty (bounded retries).
  // Returns how many processes were signalled.
  int kill_all(const TaskCgroup& cg) const;
  // rmdir of the task's directories (parents stay: other tasks share them).
  // EBUSY is retried for about a second. Missing directories are fine.
  Result<void> remove(const TaskCgroup& cg) const;

 private:
  std::vector<std::string> v1_hierarchies() const;
  std::vector<std::string> v2_controllers() const;
  Result<void> enable_v2_controllers(const std::string& relpath) const;
  Result<void> write_limits(const TaskCgroup& cg, const CgroupLimits& l) const;

  std::string root_;
  CgroupVersion version_;
};

// Conversions (exposed for tests).
int64_t cgroup_cpu_shares(double cpus);                      // cpus*1024, at least 2
int64_t cgroup_cpu_weight(int64_t shares);                   // 1 + ((shares-2)*9999)/262142
int64_t cgroup_cpu_quota_us(double cpus, int64_t period_us); // at least 1000
int64_t cgroup_memory_bytes(double mem_mb);

}  // namespace stele
