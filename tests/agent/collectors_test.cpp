// Metric collectors against fixture trees copied from real hosts (a v1
// hybrid cgroupfs with a task that was throttled and OOM-killed, a v2
// unified tree, /proc files), plus one pass over this machine's /proc.
#include "agent/collectors.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "fixtures/executor_fixtures.h"

namespace stele {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const std::string kFixtures = std::string(STELE_TEST_DIR) + "/agent/fixtures/collectors";
constexpr const char* kParent = "stele/agent-1";
constexpr const char* kTaskId = "web-r3.0.1";
constexpr const char* kTaskDir = "stele/agent-1/web-r3.0.1";

using Points = std::map<std::string, double>;

// Paths -> values; a path reported twice fails the test.
Points by_path(const std::vector<MetricPoint>& points) {
  Points out;
  for (const auto& p : points) EXPECT_TRUE(out.emplace(p.path, p.value).second) << p.path;
  return out;
}

Points with_prefix(const std::string& prefix, const Points& rel) {
  Points out;
  for (const auto& [k, v] : rel) out[prefix + k] = v;
  return out;
}

void expect_points(const Points& got, const Points& want) {
  for (const auto& [path, v] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      ADD_FAILURE() << "missing " << path;
      continue;
    }
    EXPECT_NEAR(it->second, v, 1e-9 * std::max(1.0, std::fabs(v))) << path;
  }
  for (const auto& [path, v] : got) EXPECT_TRUE(want.count(path)) << "unexpected " << path;
}

// Every node of the path is one non-empty [A-Za-z0-9_-]+ run.
bool valid_path(const std::string& path) {
  size_t node = 0;
  for (char c : path) {
    if (c == '.') {
      if (node == 0) return false;
      node = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') {
      ++node;
    } else {
      return false;
    }
  }
  return node > 0;
}

std::vector<MetricPoint> collect(const CgroupFs& cgroups, const std::string& host = "h1") {
  auto task = locate_task_metrics(cgroups, kParent, kTaskId);
  EXPECT_TRUE(task.has_value());
  std::vector<MetricPoint> out;
  if (task) {
    size_t n = collect_task(*task, host, out);
    EXPECT_EQ(n, out.size());
  }
  return out;
}

// A writable copy of a fixture tree, for tests that remove or change files.
std::string copy_fixture(const TempDir& d, const std::string& name) {
  std::string dst = d.path() + "/" + name;
  fs::copy(kFixtures + "/" + name, dst, fs::copy_options::recursive);
  return dst;
}

void put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

const Points kV1 = {
    {"cpu.user", 0.443992709},     {"cpu.system", 0.44},
    {"cpu.usage", 0.891946536},    {"cpu.periods", 23},
    {"cpu.throttled_periods", 15}, {"cpu.throttled_time", 0.695090093},
    {"memory.usage", 20426752},    {"memory.rss", 19611648},
    {"memory.cache", 552960},      {"memory.max_usage", 67108864},
    {"memory.limit", 67108864},    {"memory.oom_kills", 1},
    {"pids.current", 1},
};

const Points kV2 = {
    {"cpu.user", 1.201234},        {"cpu.system", 0.633333},
    {"cpu.usage", 1.834567},       {"cpu.periods", 412},
    {"cpu.throttled_periods", 37}, {"cpu.throttled_time", 2.503117},
    {"memory.usage", 48623616},    {"memory.rss", 40960000},
    {"memory.cache", 6029312},     {"memory.max_usage", 71303168},
    {"memory.limit", 134217728},   {"memory.oom_kills", 2},
    {"pids.current", 3},
};

const std::string kTaskPrefix = "stele.task.h1.web-r3.0.";

TEST(CollectorsTask, V1HybridEveryMetric) {
  CgroupFs cgroups(kFixtures + "/v1", CgroupVersion::v1);
  auto task = locate_task_metrics(cgroups, kParent, kTaskId);
  ASSERT_TRUE(task);
  EXPECT_EQ(task->app_name, "web");
  EXPECT_EQ(task->release, 3);
  EXPECT_EQ(task->seq, 0);
  // cpuacct is its own hierarchy here, as on this host.
  EXPECT_EQ(task->cpuacct_dir, kFixtures + "/v1/cpuacct/" + kTaskDir);
  EXPECT_EQ(task->memory_dir, kFixtures + "/v1/memory/" + kTaskDir);
  expect_points(by_path(collect(cgroups)), with_prefix(kTaskPrefix, kV1));
}

TEST(CollectorsTask, V2UnifiedEveryMetric) {
  CgroupFs cgroups(kFixtures + "/v2", CgroupVersion::v2);
  expect_points(by_path(collect(cgroups)), with_prefix(kTaskPrefix, kV2));
}

TEST(CollectorsTask, V1CoMountedCpuAndCpuacct) {
  // systemd hosts mount "cpu,cpuacct" once, with cpu and cpuacct symlinks.
  TempDir d;
  std::string root = copy_fixture(d, "v1");
  fs::copy(root + "/cpuacct", root + "/cpu",
           fs::copy_options::recursive | fs::copy_options::skip_existing);
  fs::rename(root + "/cpu", root + "/cpu,cpuacct");
  fs::remove_all(root + "/cpuacct");
  fs::create_directory_symlink("cpu,cpuacct", root + "/cpu");
  fs::create_directory_symlink("cpu,cpuacct", root + "/cpuacct");
  CgroupFs cgroups(root, CgroupVersion::v1);
  auto task = locate_task_metrics(cgroups, kParent, kTaskId);
  ASSERT_TRUE(task);
  EXPECT_EQ(task->cpuacct_dir, task->cpu_dir);
  expect_points(by_path(collect(cgroups)), with_prefix(kTaskPrefix, kV1));
}

TEST(CollectorsTask, V1MissingFilesSkipOnlyTheirMetrics) {
  TempDir d;
  std::string root = copy_fixture(d, "v1");
  std::string acct = root + "/cpuacct/" + kTaskDir, mem = root + "/memory/" + kTaskDir;
  // An older kernel: cpu time only in ticks, no oom_kill counter.
  fs::remove(acct + "/cpuacct.usage_user");
  fs::remove(acct + "/cpuacct.usage_sys");
  put(mem + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
  fs::remove(mem + "/memory.max_usage_in_bytes");
  put(mem + "/memory.limit_in_bytes", "9223372036854771712\n");  // unlimited
  fs::remove_all(root + "/pids/" + kTaskDir);

  Points want = kV1;
  const double tick = 1.0 / double(::sysconf(_SC_CLK_TCK));
  want["cpu.user"] = 44 * tick;  // cpuacct.stat "user 44"
  want["cpu.system"] = 44 * tick;
  for (auto gone : {"memory.oom_kills", "memory.max_usage", "memory.limit", "pids.current"})
    want.erase(gone);
  expect_points(by_path(collect(CgroupFs(root, CgroupVersion::v1))),
                with_prefix(kTaskPrefix, want));
}

TEST(CollectorsTask, V2MissingFilesSkipOnlyTheirMetrics) {
  TempDir d;
  std::string root = copy_fixture(d, "v2");
  std::string dir = root + "/" + kTaskDir;
  fs::remove(dir + "/memory.peak");  // kernels before 5.19
  fs::remove(dir + "/memory.stat");
  put(dir + "/memory.max", "max\n");
  // Without the cpu controller cpu.stat has only the usage keys.
  put(dir + "/cpu.stat", "usage_usec 1834567\nuser_usec 1201234\nsystem_usec 633333\n");
  Points want = kV2;
  for (auto gone : {"memory.max_usage", "memory.rss", "memory.cache", "memory.limit", "cpu.periods",
                    "cpu.throttled_periods", "cpu.throttled_time"})
    want.erase(gone);
  expect_points(by_path(collect(CgroupFs(root, CgroupVersion::v2))),
                with_prefix(kTaskPrefix, want));
}

TEST(CollectorsTask, GoneCgroupGivesNoPoints) {
  CgroupFs cgroups(kFixtures + "/v1", CgroupVersion::v1);
  auto task = locate_task_metrics(cgroups, kParent, "web-r3.0.9");
  ASSERT_TRUE(task);
  std::vector<MetricPoint> out;
  EXPECT_EQ(collect_task(*task, "h1", out), 0u);
  EXPECT_TRUE(out.empty());
}

TEST(CollectorsTask, PathNodesAreSanitised) {
  CgroupFs cgroups(kFixtures + "/v2", CgroupVersion::v2);
  auto task = locate_task_metrics(cgroups, kParent, kTaskId);
  ASSERT_TRUE(task);
  task->app_name = "shop_web";
  std::vector<MetricPoint> out;
  collect_task(*task, "node-1.example.com", out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(by_path(out).count("stele.task.node-1_example_com.shop_web-r3.0.memory.rss"), 1u);
  for (const auto& p : out) EXPECT_TRUE(valid_path(p.path)) << p.path;
}

// The collectors find what CgroupFs::create made on this host, with a live
// process in it.
TEST(CollectorsTask, RealCgroupMadeByCgroupFs) {
  CgroupFs cgroups = CgroupFs::detect();
  if (::geteuid() != 0 || cgroups.version() == CgroupVersion::none)
    GTEST_SKIP() << "needs root and cgroups";
  std::string parent = testing::test_cgroup_parent();
  auto cg = cgroups.create(parent + "/web-r2.1.1", {0.5, 64, 100});
  if (!cg) GTEST_SKIP() << "cgroupfs not writable: " << cg.error().message;
  pid_t child = ::fork();
  if (child == 0) {
    auto fds = cgroups.open_join_files(*cg);
    for (auto& fd : *fds) (void)!::write(fd.get(), "0", 1);
    // Pages touched after joining are charged to the task's cgroup.
    void* mem =
        ::mmap(nullptr, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) std::memset(mem, 1, 4 << 20);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    while (std::chrono::steady_clock::now() < until) {
    }
    ::pause();
    _exit(0);
  }
  auto tasks = discover_task_metrics(cgroups, parent);
  ASSERT_EQ(tasks.size(), 1u);
  Points got;
  const std::string p = "stele.task.h1.web-r2.1.";
  EXPECT_TRUE(testing::wait_until(
      [&] {
        std::vector<MetricPoint> out;
        collect_task(tasks[0], "h1", out);
        got = by_path(out);
        return got[p + "pids.current"] == 1 && got[p + "cpu.usage"] > 0 &&
               got[p + "memory.rss"] >= 4 << 20;
      },
      5))
      << ::testing::PrintToString(got);
  EXPECT_EQ(got[p + "memory.limit"], 64 << 20);
  EXPECT_GT(got[p + "memory.usage"], 0);
  EXPECT_EQ(got[p + "memory.oom_kills"], 0);
  EXPECT_GT(got[p + "cpu.user"] + got[p + "cpu.system"], 0);
  EXPECT_TRUE(got.count(p + "cpu.periods"));  // a CFS quota is set
  if (cgroups.version() == CgroupVersion::v1) {
    EXPECT_EQ(got.size(), kV1.size());  // every metric, as in the fixture
  }
  ::kill(child, SIGKILL);
  int st;
  ::waitpid(child, &st, 0);
  (void)cgroups.remove(*cg);
  testing::cleanup_agent_dir("/nonexistent", parent);
}

TEST(CollectorsDiscovery, NotATaskIdIsNotLocated) {
  CgroupFs cgroups(kFixtures + "/v1", CgroupVersion::v1);
  EXPECT_FALSE(locate_task_metrics(cgroups, kParent, "not-a-task"));
  EXPECT_FALSE(
      locate_task_metrics(CgroupFs("/nonexistent", CgroupVersion::none), kParent, kTaskId));
}

TEST(CollectorsDiscovery, FindsTasksNewestLaunchPerSlot) {
  TempDir d;
  std::string root = copy_fixture(d, "v2");
  for (auto t : {"web-r3.0.2", "web-r3.1.1", "shop_api-r7.0.4", "not-a-task"})
    fs::create_directories(root + "/" + kParent + "/" + t);
  put(root + "/" + kParent + "/web-r3.0.5", "a file, not a cgroup");
  auto tasks = discover_task_metrics(CgroupFs(root, CgroupVersion::v2), kParent);
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0].app_name, "shop_api");
  EXPECT_EQ(tasks[0].release, 7);
  EXPECT_EQ(tasks[1].app_name, "web");
  EXPECT_EQ(tasks[1].seq, 0);
  EXPECT_EQ(tasks[1].memory_dir, root + "/" + kParent + "/web-r3.0.2");  // launch 2 beats 1
  EXPECT_EQ(tasks[2].seq, 1);
}

TEST(CollectorsDiscovery, V1UnionOfHierarchies) {
  TempDir d;
  std::string root = copy_fixture(d, "v1");
  // A task whose memory cgroup is already gone still shows in cpu.
  fs::create_directories(root + "/cpu/" + kParent + "/api-r2.4.1");
  auto tasks = discover_task_metrics(CgroupFs(root, CgroupVersion::v1), kParent);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].app_name, "api");
  EXPECT_EQ(tasks[0].seq, 4);
  EXPECT_EQ(tasks[1].cpu_dir, root + "/cpu/" + kTaskDir);
  EXPECT_TRUE(discover_task_metrics(CgroupFs(root, CgroupVersion::v1), "stele/none").empty());
}

NodeSources fixture_node() {
  NodeSources src;
  src.proc_root = kFixtures + "/proc";
  src.sys_root = kFixtures + "/sys";
  src.user_hz = 100;
  return src;
}

const std::string kNodePrefix = "stele.node.h1_example_com.";

TEST(CollectorsNode, FixtureProc) {
  std::vector<MetricPoint> out;
  size_t n = collect_node(fixture_node(), "h1.example.com", out);
  EXPECT_EQ(n, out.size());
  Points got = by_path(out);
  // clang-format off
  Points want = {
      // /proc/stat "cpu" line in USER_HZ ticks.
      {"cpu.user", 48401.52}, {"cpu.nice", 1469.75}, {"cpu.system", 4161.15},
      {"cpu.idle", 11009.28}, {"cpu.iowait", 194.26}, {"cpu.irq", 0},
      {"cpu.softirq", 30.05}, {"cpu.steal", 71.97},
      {"load.1", 0.31}, {"load.5", 0.60}, {"load.15", 1.11},
      {"memory.total", 24684096.0 * 1024}, {"memory.free", 21457688.0 * 1024},
      {"memory.available", 23826344.0 * 1024}, {"memory.buffers", 33304.0 * 1024},
      {"memory.cached", 2170432.0 * 1024}, {"memory.swap_total", 0}, {"memory.swap_free", 0},
      {"diskio.vda.reads", 807069}, {"diskio.vda.writes", 873376},
      {"diskio.vda.read_bytes", 20385354.0 * 512}, {"diskio.vda.write_bytes", 438000392.0 * 512},
      {"diskio.vda.io_time", 690.968},
      {"diskio.sda.reads", 5213}, {"diskio.sda.writes", 1024},  // old 14-field line
      {"diskio.sda.read_bytes", 474862.0 * 512}, {"diskio.sda.write_bytes", 49162.0 * 512},
      {"diskio.sda.io_time", 10.452},
      {"diskio.nvme0n1.reads", 218093}, {"diskio.nvme0n1.io_time", 1204.876},
      {"diskio.dm-0.write_bytes", 97611390.0 * 512},
      {"net.lo.rx_bytes", 34310974434}, {"net.lo.tx_packets", 2304602},
      {"net.eth0.rx_bytes", 64165446}, {"net.eth0.tx_bytes", 328477},
      {"net.eth0_100.rx_errs", 1}, {"net.eth0_100.rx_drop", 2},  // "eth0.100:" VLAN
      {"net.eth0_100.tx_errs", 3}, {"net.eth0_100.tx_drop", 4},
      {"net.ifb0.rx_packets", 0},
      // tcp: LISTEN + 2 TIME_WAIT; tcp6: LISTEN, FIN_WAIT2, 2 ESTABLISHED, CLOSE_WAIT.
      {"tcp.established", 2}, {"tcp.syn_sent", 0}, {"tcp.syn_recv", 0}, {"tcp.fin_wait1", 0},
      {"tcp.fin_wait2", 1}, {"tcp.time_wait", 2}, {"tcp.close", 0}, {"tcp.close_wait", 1},
      {"tcp.last_ack", 0}, {"tcp.listen", 2}, {"tcp.closing", 0},
  };
  // clang-format on
  for (const auto& [path, v] : want) {
    ASSERT_TRUE(got.count(kNodePrefix + path)) << path;
    EXPECT_NEAR(got[kNodePrefix + path], v, 1e-9 * std::max(1.0, v)) << path;
  }
  // 8 cpu + 3 load + 7 memory + 4 disks x 5 + 5 interfaces x 8 + 11 tcp.
  EXPECT_EQ(got.size(), 89u);
  // Virtual devices and partitions (in their disk's counters already) are left out.
  for (const auto& [path, v] : got)
    for (auto skipped : {".loop", ".ram0", ".zram0", ".nvme0n1p"})
      EXPECT_EQ(path.find(skipped), std::string::npos) << path;
}

TEST(CollectorsNode, WithoutSysBlockPartitionsAreReported) {
  NodeSources src = fixture_node();
  src.sys_root = "/nonexistent";
  std::vector<MetricPoint> out;
  collect_node(src, "h1", out);
  Points got = by_path(out);
  EXPECT_EQ(got.at("stele.node.h1.diskio.nvme0n1p1.reads"), 305);
  EXPECT_FALSE(got.count("stele.node.h1.diskio.loop1.reads"));
}

TEST(CollectorsNode, MissingProcFilesSkipOnlyTheirGroups) {
  TempDir d;
  fs::copy(kFixtures + "/proc", d.path() + "/proc", fs::copy_options::recursive);
  fs::remove(d.path() + "/proc/net/tcp6");  // a host without IPv6
  fs::remove(d.path() + "/proc/meminfo");
  NodeSources src = fixture_node();
  src.proc_root = d.path() + "/proc";
  std::vector<MetricPoint> out;
  collect_node(src, "h1", out);
  Points got = by_path(out);
  EXPECT_EQ(got.at("stele.node.h1.tcp.listen"), 1);
  EXPECT_EQ(got.at("stele.node.h1.tcp.time_wait"), 2);
  EXPECT_FALSE(got.count("stele.node.h1.memory.total"));
  EXPECT_EQ(got.size(), 89u - 7);

  src.proc_root = "/nonexistent";
  out.clear();
  EXPECT_EQ(collect_node(src, "h1", out), 0u);
}

TEST(CollectorsNode, LongLinesAndLargeFilesStream) {
  TempDir d;
  std::string proc = d.path() + "/proc";
  // A 60 KB line (several read buffers) before the one that matters.
  std::string intr = "intr";
  for (int i = 0; i < 20000; ++i) intr += " 17";
  put(proc + "/stat", intr + "\ncpu  100 0 50 0 0 0 0 0 0 0");  // and no final newline
  std::string tcp = "  sl  local_address rem_address   st tx_queue rx_queue\n";
  for (int i = 0; i < 5000; ++i)
    tcp += "   " + std::to_string(i) +
           ": 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  0  0 1 1 "
           "0000000000000000 20 4 30 10 -1\n";
  put(proc + "/net/tcp", tcp);
  NodeSources src;
  src.proc_root = proc;
  src.user_hz = 100;
  std::vector<MetricPoint> out;
  collect_node(src, "h1", out);
  Points got = by_path(out);
  EXPECT_EQ(got.at("stele.node.h1.cpu.user"), 1.0);
  EXPECT_EQ(got.at("stele.node.h1.cpu.system"), 0.5);
  EXPECT_EQ(got.at("stele.node.h1.tcp.established"), 5000);

  // A short line, then an unterminated one that the buffer must shift.
  put(proc + "/stat", "x\ncpu  300 0 50 0 0 0 0 0 0 0");
  out.clear();
  collect_node(src, "h1", out);
  EXPECT_EQ(by_path(out).at("stele.node.h1.cpu.user"), 3.0);
}

TEST(CollectorsNode, DiskUsageFromStatvfs) {
  struct statvfs st {};
  st.f_bsize = st.f_frsize = 4096;
  st.f_blocks = 1000;
  st.f_bfree = 300;
  st.f_bavail = 250;  // 50 blocks reserved for root
  st.f_files = 500;
  st.f_ffree = 120;
  std::vector<MetricPoint> out;
  EXPECT_EQ(disk_usage_points("h1", "/boot", st, out), 6u);
  expect_points(by_path(out), with_prefix("stele.node.h1.disk._boot.", {{"bytes_total", 4096000},
                                                                        {"bytes_used", 700 * 4096},
                                                                        {"bytes_free", 250 * 4096},
                                                                        {"inodes_total", 500},
                                                                        {"inodes_used", 380},
                                                                        {"inodes_free", 120}}));
  st.f_files = st.f_ffree = 0;  // btrfs, vfat: no inode table
  out.clear();
  EXPECT_EQ(disk_usage_points("h1", "/", st, out), 3u);
  EXPECT_EQ(out[0].path, "stele.node.h1.disk._.bytes_total");
}

TEST(CollectorsNode, RealProcOfThisMachine) {
  NodeSources src;
  src.mounts = {"/", "/nonexistent-mount"};
  std::vector<MetricPoint> out;
  collect_node(src, "h1", out);
  Points got = by_path(out);
  const std::string p = "stele.node.h1.";
  ASSERT_TRUE(got.count(p + "memory.total"));
  EXPECT_GT(got[p + "memory.total"], 0);
  EXPECT_LE(got[p + "memory.available"], got[p + "memory.total"]);
  EXPECT_GT(got[p + "cpu.user"] + got[p + "cpu.system"] + got[p + "cpu.idle"], 0);
  ASSERT_TRUE(got.count(p + "load.1"));
  EXPECT_GE(got[p + "load.1"], 0);
  ASSERT_TRUE(got.count(p + "net.lo.rx_bytes"));
  ASSERT_TRUE(got.count(p + "tcp.listen"));
  EXPECT_GE(got[p + "tcp.listen"], 0);
  ASSERT_TRUE(got.count(p + "disk._.bytes_total"));
  EXPECT_GT(got[p + "disk._.bytes_total"], 0);
  EXPECT_FALSE(got.count(p + "disk._nonexistent-mount.bytes_total"));
  for (const auto& [path, v] : got) {
    EXPECT_TRUE(valid_path(path)) << path;
    EXPECT_GE(v, 0) << path;
  }
}

}  // namespace
}  // namespace stele
