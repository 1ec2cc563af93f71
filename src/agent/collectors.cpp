#include "agent/collectors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <span>
#include <tuple>
#include <utility>

#include "agent/executor_io.h"
#include "common/names.h"

namespace stele {

namespace {

namespace stdfs = std::filesystem;

constexpr double kNs = 1e-9;
constexpr double kUs = 1e-6;
// v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (0x7FFFFFFFFFFFF000
// with 4 KiB pages, a little less with larger pages); no real limit is near.
constexpr uint64_t kV1Unlimited = uint64_t(1) << 62;

long clk_tck() {
  static const long hz = [] {
    long v = ::sysconf(_SC_CLK_TCK);
    return v > 0 ? v : 100;
  }();
  return hz;
}

// A directory opened once (O_PATH) so a task's or /proc's files are opened
// relative to it: no path strings built per file. fd -1 when `path` is empty
// or missing; every read through it then finds nothing.
struct Dir {
  explicit Dir(const std::string& path)
      : fd(path.empty() ? -1 : ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)) {}
  int get() const { return fd.get(); }
  UniqueFd fd;
};

// Reads a file line by line through one fixed buffer, so a /proc/net/tcp of
// 100k sockets costs no more memory than a one-line cgroup file. A line
// longer than the buffer comes back truncated and its rest is dropped (only
// /proc/stat's "intr" line gets there, and nothing reads it).
class LineReader {
 public:
  LineReader(int dirfd, const char* name)
      : fd_(dirfd < 0 ? -1 : ::openat(dirfd, name, O_RDONLY | O_CLOEXEC)) {}
  bool ok() const { return bool(fd_); }
  // The next line without its '\n', valid until the next call; false at the end.
  bool next(std::string_view& line);

 private:
  bool fill();

  UniqueFd fd_;
  std::array<char, 16384> buf_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false, skipping_ = false;
};

bool LineReader::fill() {
  if (eof_ || !fd_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf_.data() + end_, buf_.size() - end_);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    end_ += size_t(n);
    return true;
  }
}

bool LineReader::next(std::string_view& line) {
  for (;;) {
    const char* start = buf_.data() + begin_;
    if (const void* nl = std::memchr(start, '\n', end_ - begin_)) {
      size_t len = static_cast<const char*>(nl) - start;
      line = std::string_view(start, len);
      begin_ += len + 1;
      if (std::exchange(skipping_, false)) continue;
      return true;
    }
    if (end_ - begin_ == buf_.size()) {  // a full buffer and no newline
      begin_ = end_ = 0;
      if (skipping_) continue;
      skipping_ = true;
      line = std::string_view(buf_.data(), buf_.size());
      return true;
    }
    if (!fill()) {
      if (begin_ == end_) return false;
      line = std::string_view(buf_.data() + begin_, end_ - begin_);  // last line, no '\n'
      begin_ = end_;
      if (std::exchange(skipping_, false)) continue;
      return true;
    }
  }
}

// Splits off the next blank-separated field of `rest`; "" when none is left.
std::string_view next_field(std::string_view& rest) {
  size_t b = rest.find_first_not_of(" \t");
  if (b == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(b);
  size_t e = std::min(rest.find_first_of(" \t"), rest.size());
  std::string_view f = rest.substr(0, e);
  rest.remove_prefix(e);
  return f;
}

std::optional<uint64_t> to_u64(std::string_view s, int base = 10) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> to_double(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The first field of a one-value file ("20426752\n"); nullopt when missing
// or not a number ("max").
std::optional<uint64_t> read_u64(const Dir& dir, const char* name) {
  LineReader r(dir.get(), name);
  std::string_view line;
  if (!r.next(line)) return std::nullopt;
  return to_u64(next_field(line));
}

struct Key {
  std::string_view name;
  std::optional<uint64_t> value = std::nullopt;
};

// Fills `keys` from a flat-keyed file ("name value" lines); keys the file
// lacks stay nullopt.
void read_keyed(const Dir& dir, const char* name, std::span<Key> keys) {
  LineReader r(dir.get(), name);
  std::string_view line;
  for (size_t found = 0; found < keys.size() && r.next(line);) {
    std::string_view k = next_field(line);
    for (Key& key : keys) {
      if (key.value || key.name != k) continue;
      key.value = to_u64(next_field(line));
      if (key.value) ++found;
      break;
    }
  }
}

// Appends points whose paths share one prefix.
class Emitter {
 public:
  Emitter(std::vector<MetricPoint>& out, std::string prefix)
      : out_(out), prefix_(std::move(prefix)) {}

  void put(std::initializer_list<std::string_view> parts, double v) {
    size_t n = prefix_.size();
    for (auto p : parts) n += p.size();
    std::string path;
    path.reserve(n);
    path += prefix_;
    for (auto p : parts) path += p;
    out_.push_back({std::move(path), v});
  }
  void put_if(std::string_view name, std::optional<uint64_t> v, double scale = 1) {
    if (v) put({name}, double(*v) * scale);
  }

 private:
  std::vector<MetricPoint>& out_;
  std::string prefix_;
};

// ---- tasks ----

void task_cpu_v1(const TaskMetricsSource& t, Emitter& e) {
  Dir acct(t.cpuacct_dir);
  auto user = read_u64(acct, "cpuacct.usage_user");  // ns, kernel 4.7+
  auto sys = read_u64(acct, "cpuacct.usage_sys");
  std::array<Key, 2> ticks{{{"user"}, {"system"}}};
  if (!user || !sys) read_keyed(acct, "cpuacct.stat", ticks);
  const double tick = 1.0 / double(clk_tck());
  e.put_if("cpu.user", user ? user : ticks[0].value, user ? kNs : tick);
  e.put_if("cpu.system", sys ? sys : ticks[1].value, sys ? kNs : tick);
  e.put_if("cpu.usage", read_u64(acct, "cpuacct.usage"), kNs);

  std::array<Key, 3> stat{{{"nr_periods"}, {"nr_throttled"}, {"throttled_time"}}};
  read_keyed(Dir(t.cpu_dir), "cpu.stat", stat);
  e.put_if("cpu.periods", stat[0].value);
  e.put_if("cpu.throttled_periods", stat[1].value);
  e.put_if("cpu.throttled_time", stat[2].value, kNs);
}

void task_memory_v1(const TaskMetricsSource& t, Emitter& e) {
  Dir mem(t.memory_dir);
  e.put_if("memory.usage", read_u64(mem, "memory.usage_in_bytes"));
  // total_* include descendants, as usage_in_bytes does; plain rss/cache
  // are the fallback for kernels without use_hierarchy.
  std::array<Key, 4> stat{{{"total_rss"}, {"total_cache"}, {"rss"}, {"cache"}}};
  read_keyed(mem, "memory.stat", stat);
  e.put_if("memory.rss", stat[0].value ? stat[0].value : stat[2].value);
  e.put_if("memory.cache", stat[1].value ? stat[1].value : stat[3].value);
  e.put_if("memory.max_usage", read_u64(mem, "memory.max_usage_in_bytes"));
  auto limit = read_u64(mem, "memory.limit_in_bytes");
  if (limit && *limit < kV1Unlimited) e.put_if("memory.limit", limit);
  // Kernels before 4.13 lack the field: skipped rather than guessed.
  std::array<Key, 1> oom{{{"oom_kill"}}};
  read_keyed(mem, "memory.oom_control", oom);
  e.put_if("memory.oom_kills", oom[0].value);
}

void task_cpu_v2(const TaskMetricsSource& t, Emitter& e) {
  // usage/user/system are there even without the cpu controller; the
  // throttling keys only with it.
  std::array<Key, 6> stat{{{"user_usec"},
                           {"system_usec"},
                           {"usage_usec"},
                           {"nr_periods"},
                           {"nr_throttled"},
                           {"throttled_usec"}}};
  read_keyed(Dir(t.cpu_dir), "cpu.stat", stat);
  e.put_if("cpu.user", stat[0].value, kUs);
  e.put_if("cpu.system", stat[1].value, kUs);
  e.put_if("cpu.usage", stat[2].value, kUs);
  e.put_if("cpu.periods", stat[3].value);
  e.put_if("cpu.throttled_periods", stat[4].value);
  e.put_if("cpu.throttled_time", stat[5].value, kUs);
}

void task_memory_v2(const TaskMetricsSource& t, Emitter& e) {
  Dir mem(t.memory_dir);
  e.put_if("memory.usage", read_u64(mem, "memory.current"));
  std::array<Key, 2> stat{{{"anon"}, {"file"}}};
  read_keyed(mem, "memory.stat", stat);
  e.put_if("memory.rss", stat[0].value);
  e.put_if("memory.cache", stat[1].value);
  e.put_if("memory.max_usage", read_u64(mem, "memory.peak"));  // kernel 5.19+
  e.put_if("memory.limit", read_u64(mem, "memory.max"));       // "max" -> skipped
  std::array<Key, 1> events{{{"oom_kill"}}};
  read_keyed(mem, "memory.events", events);
  e.put_if("memory.oom_kills", events[0].value);
}

// ---- node ----

constexpr std::array<const char*, 8> kCpuModes = {"user",   "nice", "system",  "idle",
                                                  "iowait", "irq",  "softirq", "steal"};

void node_cpu(const Dir& proc, long hz, Emitter& e) {
  LineReader r(proc.get(), "stat");
  std::string_view line;
  while (r.next(line)) {
    if (next_field(line) != "cpu") continue;
    for (const char* mode : kCpuModes) {
      auto v = to_u64(next_field(line));
      if (!v) return;  // older kernels stop after iowait/irq/softirq
      e.put({"cpu.", mode}, double(*v) / double(hz));
    }
    return;
  }
}

void node_load(const Dir& proc, Emitter& e) {
  LineReader r(proc.get(), "loadavg");
  std::string_view line;
  if (!r.next(line)) return;
  for (const char* name : {"load.1", "load.5", "load.15"}) {
    auto v = to_double(next_field(line));
    if (!v) return;
    e.put({name}, *v);
  }
}

void node_memory(const Dir& proc, Emitter& e) {
  static constexpr std::array<const char*, 7> kNames = {
      "total", "free", "available", "buffers", "cached", "swap_total", "swap_free"};
  std::array<Key, 7> keys{{{"MemTotal:"},
                           {"MemFree:"},
                           {"MemAvailable:"},
                           {"Buffers:"},
                           {"Cached:"},
                           {"SwapTotal:"},
                           {"SwapFree:"}}};
  read_keyed(proc, "meminfo", keys);
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i].value) e.put({"memory.", kNames[i]}, double(*keys[i].value) * 1024);  // kB
}

void disk_usage(std::string_view mount, const struct statvfs& st, Emitter& e) {
  const std::string node = metric_node(mount);
  const double frag = double(st.f_frsize ? st.f_frsize : st.f_bsize);
  const uint64_t used = st.f_blocks > st.f_bfree ? st.f_blocks - st.f_bfree : 0;
  e.put({"disk.", node, ".bytes_total"}, double(st.f_blocks) * frag);
  e.put({"disk.", node, ".bytes_used"}, double(used) * frag);
  e.put({"disk.", node, ".bytes_free"}, double(st.f_bavail) * frag);
  // Filesystems without an inode table (btrfs, vfat) report 0 inodes: no series.
  if (st.f_files == 0) return;
  e.put({"disk.", node, ".inodes_total"}, double(st.f_files));
  e.put({"disk.", node, ".inodes_used"}, double(st.f_files - std::min(st.f_ffree, st.f_files)));
  e.put({"disk.", node, ".inodes_free"}, double(st.f_ffree));
}

// Loop, ram and zram devices are memory or files; their I/O is counted
// again on the disk beneath (or never reaches one).
bool virtual_block_device(std::string_view name) {
  return name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram");
}

// /sys/block has an entry per whole disk (partitions are below their disk),
// so a partition's I/O, already in its disk's counters, is not counted twice.
// Without a readable /sys/block every non-virtual device is reported.
bool whole_disk(const Dir& sys_block, std::string_view name) {
  if (sys_block.get() < 0) return true;
  char buf[256];
  if (name.size() >= sizeof buf) return false;
  std::memcpy(buf, name.data(), name.size());
  buf[name.size()] = '\0';
  struct stat st;
  return ::fstatat(sys_block.get(), buf, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

void node_diskio(const Dir& proc, const std::string& sys_root, Emitter& e) {
  Dir sys_block(sys_root.empty() ? "" : sys_root + "/block");
  LineReader r(proc.get(), "diskstats");
  std::string_view line;
  while (r.next(line)) {
    next_field(line);  // major
    next_field(line);  // minor
    std::string_view name = next_field(line);
    if (name.empty() || virtual_block_device(name) || !whole_disk(sys_block, name)) continue;
    // reads, reads merged, sectors read, ms reading, writes, writes merged,
    // sectors written, ms writing, in flight, ms doing I/O (14-field and
    // newer 18/20-field lines share these).
    std::array<uint64_t, 10> f;
    bool ok = true;
    for (auto& v : f) {
      auto n = to_u64(next_field(line));
      ok = ok && n;
      v = n.value_or(0);
    }
    if (!ok) continue;
    const std::string dev = metric_node(name);
    e.put({"diskio.", dev, ".reads"}, double(f[0]));
    e.put({"diskio.", dev, ".writes"}, double(f[4]));
    e.put({"diskio.", dev, ".read_bytes"}, double(f[2]) * 512);  // always 512-byte sectors
    e.put({"diskio.", dev, ".write_bytes"}, double(f[6]) * 512);
    e.put({"diskio.", dev, ".io_time"}, double(f[9]) / 1000);
  }
}

void node_net(const Dir& proc, Emitter& e) {
  LineReader r(proc.get(), "net/dev");
  std::string_view line;
  while (r.next(line)) {
    size_t colon = line.find(':');  // the two header lines have none
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    name.remove_prefix(std::min(name.find_first_not_of(' '), name.size()));
    std::string_view rest = line.substr(colon + 1);
    std::array<uint64_t, 16> f;
    bool ok = !name.empty();
    for (auto& v : f) {
      auto n = to_u64(next_field(rest));
      ok = ok && n;
      v = n.value_or(0);
    }
    if (!ok) continue;
    const std::string ifc = metric_node(name);
    // Receive columns 0-3 and transmit columns 8-11 are bytes packets errs drop.
    static constexpr std::array<const char*, 4> kStats = {"bytes", "packets", "errs", "drop"};
    for (size_t i = 0; i < kStats.size(); ++i) {
      e.put({"net.", ifc, ".rx_", kStats[i]}, double(f[i]));
      e.put({"net.", ifc, ".tx_", kStats[i]}, double(f[8 + i]));
    }
  }
}

// Index = the kernel's TCP state number (include/net/tcp_states.h).
constexpr std::array<const char*, 12> kTcpStates = {
    "",          "established", "syn_sent",   "syn_recv", "fin_wait1", "fin_wait2",
    "time_wait", "close",       "close_wait", "last_ack", "listen",    "closing"};

void node_tcp(const Dir& proc, Emitter& e) {
  std::array<uint64_t, kTcpStates.size()> count{};
  bool any = false;
  for (const char* file : {"net/tcp", "net/tcp6"}) {
    LineReader r(proc.get(), file);
    if (!r.ok()) continue;  // no IPv6 on this host
    any = true;
    std::string_view line;
    r.next(line);  // header
    while (r.next(line)) {
      for (int i = 0; i < 3; ++i) next_field(line);  // sl, local, remote
      auto st = to_u64(next_field(line), 16);
      if (st && *st > 0 && *st < count.size()) ++count[*st];
    }
  }
  if (!any) return;
  for (size_t s = 1; s < count.size(); ++s) e.put({"tcp.", kTcpStates[s]}, double(count[s]));
}

std::string node_prefix(std::string_view host) { return "stele.node." + metric_node(host) + "."; }

}  // namespace

std::optional<TaskMetricsSource> locate_task_metrics(const CgroupFs& cgroups,
                                                     const std::string& cgroup_parent,
                                                     const std::string& task_id) {
  auto id = parse_task_id(task_id);
  if (!id || cgroups.version() == CgroupVersion::none) return std::nullopt;
  const std::string relpath = cgroup_parent + "/" + task_id;  // as Executor creates it
  TaskCgroup cg = cgroups.locate(relpath);
  TaskMetricsSource t;
  t.app_name = id->app_name;
  t.release = id->release;
  t.seq = id->seq;
  t.version = cgroups.version();
  if (t.version == CgroupVersion::v2) {
    // Not cg.cpu_dir etc.: cpu.stat is there without the cpu controller,
    // and a missing controller's files are simply absent.
    t.cpu_dir = t.cpuacct_dir = t.memory_dir = t.pids_dir = cg.dirs.at(0);
    return t;
  }
  t.cpu_dir = cg.cpu_dir;
  t.memory_dir = cg.memory_dir;
  t.pids_dir = cg.pids_dir;
  // A separately mounted cpuacct has its own directory in cg.dirs; a
  // co-mounted one ("cpu,cpuacct") was listed once, as cpu.
  const std::string acct = cgroups.root() + "/cpuacct/" + relpath;
  bool separate = std::find(cg.dirs.begin(), cg.dirs.end(), acct) != cg.dirs.end();
  t.cpuacct_dir = separate ? acct : cg.cpu_dir;
  return t;
}

std::vector<TaskMetricsSource> discover_task_metrics(const CgroupFs& cgroups,
                                                     const std::string& cgroup_parent) {
  std::vector<std::string> bases;
  if (cgroups.version() == CgroupVersion::v2) {
    bases.push_back(cgroups.root() + "/" + cgroup_parent);
  } else if (cgroups.version() == CgroupVersion::v1) {
    for (const char* h : {"memory", "cpu", "cpuacct", "pids"})
      bases.push_back(cgroups.root() + "/" + h + "/" + cgroup_parent);
  }
  // (app name, release, seq) -> (launch, task id) of the newest launch.
  std::map<std::tuple<std::string, int64_t, int>, std::pair<int, std::string>> newest;
  for (const auto& base : bases) {
    std::error_code ec;
    for (stdfs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_directory(ec)) continue;
      std::string name = it->path().filename().string();
      auto id = parse_task_id(name);
      if (!id) continue;
      auto& slot = newest[{id->app_name, id->release, id->seq}];
      if (slot.second.empty() || id->launch > slot.first) slot = {id->launch, std::move(name)};
    }
  }
  std::vector<TaskMetricsSource> out;
  out.reserve(newest.size());
  for (const auto& [key, launch] : newest)
    if (auto t = locate_task_metrics(cgroups, cgroup_parent, launch.second)) out.push_back(*t);
  return out;
}

size_t collect_task(const TaskMetricsSource& task, std::string_view host,
                    std::vector<MetricPoint>& out) {
  const size_t before = out.size();
  Emitter e(out, "stele.task." + metric_node(host) + "." + metric_node(task.app_name) + "-r" +
                     std::to_string(task.release) + "." + std::to_string(task.seq) + ".");
  if (task.version == CgroupVersion::v1) {
    task_cpu_v1(task, e);
    task_memory_v1(task, e);
  } else if (task.version == CgroupVersion::v2) {
    task_cpu_v2(task, e);
    task_memory_v2(task, e);
  }
  if (task.version != CgroupVersion::none)
    e.put_if("pids.current", read_u64(Dir(task.pids_dir), "pids.current"));
  return out.size() - before;
}

size_t disk_usage_points(std::string_view host, std::string_view mount, const struct statvfs& st,
                         std::vector<MetricPoint>& out) {
  const size_t before = out.size();
  Emitter e(out, node_prefix(host));
  disk_usage(mount, st, e);
  return out.size() - before;
}

size_t collect_node(const NodeSources& src, std::string_view host, std::vector<MetricPoint>& out) {
  const size_t before = out.size();
  Emitter e(out, node_prefix(host));
  Dir proc(src.proc_root);
  node_cpu(proc, src.user_hz > 0 ? src.user_hz : clk_tck(), e);
  node_load(proc, e);
  node_memory(proc, e);
  for (const auto& mount : src.mounts) {
    struct statvfs st;
    if (::statvfs(mount.c_str(), &st) == 0) disk_usage(mount, st, e);
  }
  node_diskio(proc, src.sys_root, e);
  node_net(proc, e);
  node_tcp(proc, e);
  return out.size() - before;
}

}  // namespace stele
