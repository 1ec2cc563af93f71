// Metric collectors of the agent: one sample of a task's cgroup counters or
// of the node's /proc and statvfs figures, as MetricPoints named per
// design.md "Names". Pure reads of files under roots the caller gives (tests
// point them at fixture trees): no threads, no sockets, no clock -- the
// caller stamps the points and ships them.
//
// Missing or unparsable files skip the metrics they feed; nothing here fails
// a whole task or node. Counters (cpu seconds, bytes, packets...) are emitted
// as the kernel's running totals; the reader derives rates.
//
// All functions are thread-compatible and keep no state between calls; they
// only append to `out`, so one vector can be reused across ticks and tasks.
#pragma once
#include <sys/statvfs.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/cgroups.h"

namespace stele {

struct MetricPoint {
  std::string path;  // "stele.task.h1.web-r3.0.memory.rss"
  double value = 0;
};

// Where one task's cgroup counters live. Directories are absolute; an empty
// one means that controller is absent (its metrics are skipped).
struct TaskMetricsSource {
  std::string app_name;  // design.md app name ("shop_web"), one path node
  int64_t release = 0;
  int64_t seq = 0;
  CgroupVersion version = CgroupVersion::none;
  // v1: the per-controller directories (cpuacct is the cpu one when the two
  // are co-mounted); v2: all four are the task's unified directory.
  std::string cpu_dir, cpuacct_dir, memory_dir, pids_dir;
};

// The task `task_id` ("<app name>-r<release>.<seq>.<n>") under
// `cgroup_parent`, laid out exactly as CgroupFs::create makes it
// (CgroupFs::locate). nullopt when task_id does not parse or `fs` has no
// cgroups. Touches the filesystem only through CgroupFs::locate's stat()s.
std::optional<TaskMetricsSource> locate_task_metrics(const CgroupFs& fs,
                                                     const std::string& cgroup_parent,
                                                     const std::string& task_id);

// Every task cgroup below `cgroup_parent` (in any hierarchy), for an agent
// that only knows its parent. Names that are not task ids are ignored. When
// several launches of one slot are present (an old one not yet removed), only
// the highest launch is returned, so a metric path gets one point per tick.
// Sorted by (app name, release, seq).
std::vector<TaskMetricsSource> discover_task_metrics(const CgroupFs& fs,
                                                     const std::string& cgroup_parent);

// Appends the task's points under
// "stele.task.<host>.<app name>-r<release>.<seq>.": cpu.{user,system,usage,
// periods,throttled_periods,throttled_time} (seconds / counts, counters),
// memory.{usage,rss,cache,max_usage,limit,oom_kills} (bytes; oom_kills a
// counter), pids.current. memory.limit is skipped when unlimited. `host` is
// made one path node (design.md host name: '.' -> '_'). Returns how many
// points were appended.
size_t collect_task(const TaskMetricsSource& task, std::string_view host,
                    std::vector<MetricPoint>& out);

struct NodeSources {
  std::string proc_root = "/proc";
  // <sys_root>/block lists whole disks, which tells them from partitions.
  std::string sys_root = "/sys";
  std::vector<std::string> mounts;  // mount points for disk usage ("/", "/boot")
  long user_hz = 0;                 // ticks per second of /proc/stat; 0 = sysconf(_SC_CLK_TCK)
};

// Appends the node's points under "stele.node.<host>.":
//   cpu.<mode>                  user nice system idle iowait irq softirq steal (s, counters)
//   load.{1,5,15}
//   memory.<m>                  total free available buffers cached swap_total swap_free (bytes)
//   disk.<mount node>.<m>       bytes_{total,used,free} inodes_{total,used,free} ("/" -> "_")
//   diskio.<device>.<m>         reads writes read_bytes write_bytes (counters), io_time (s)
//   net.<iface>.<m>             {rx,tx}_{bytes,packets,errs,drop} (counters)
//   tcp.<state>                 sockets per state, IPv4 and IPv6 together
// Returns how many points were appended.
size_t collect_node(const NodeSources& src, std::string_view host, std::vector<MetricPoint>& out);

// stele.node.<host>.disk.<mount node>.* from one statvfs result;
// collect_node calls it for each mount statvfs() answers (exposed for
// tests). Figures as df and df -i show them: bytes_free is what unprivileged
// users may still use (f_bavail) while bytes_used is total minus all free
// blocks, so used + free is less than total by root's reserve.
size_t disk_usage_points(std::string_view host, std::string_view mount, const struct statvfs& st,
                         std::vector<MetricPoint>& out);

}  // namespace stele
