// CgroupFs against fake cgroupfs trees (v1 and v2) in a temp dir, plus the
// host's real v1 hierarchy when it is writable.
#include "agent/cgroups.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "fixtures/executor_fixtures.h"

namespace stele {
namespace {

using testing::file_text;
using testing::TempDir;
namespace fs = std::filesystem;

void touch(const std::string& path, const std::string& text = "") {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(write_file(path, text));
}

// <root>/{cpu,cpuacct,memory,pids}/cgroup.procs, as a v1 host has them.
std::string fake_v1(const TempDir& d) {
  for (const char* c : {"cpu", "cpuacct", "memory", "pids"}) touch(d.path() + "/" + c + "/cgroup.procs");
  return d.path();
}

std::string fake_v2(const TempDir& d, const std::string& controllers = "cpuset cpu io memory pids") {
  touch(d.path() + "/cgroup.controllers", controllers + "\n");
  touch(d.path() + "/cgroup.subtree_control");
  return d.path();
}

TEST(CgroupConversions, MatchKernelFormulas) {
  EXPECT_EQ(cgroup_cpu_shares(1.0), 1024);
  EXPECT_EQ(cgroup_cpu_shares(0.5), 512);
  EXPECT_EQ(cgroup_cpu_shares(0.0001), 2);  // the kernel's minimum
  EXPECT_EQ(cgroup_cpu_weight(2), 1);
  EXPECT_EQ(cgroup_cpu_weight(262144), 10000);
  EXPECT_EQ(cgroup_cpu_weight(1024), 39);  // 1 + (1022*9999)/262142
  EXPECT_EQ(cgroup_cpu_quota_us(0.25, 100000), 25000);
  EXPECT_EQ(cgroup_cpu_quota_us(0.001, 100000), 1000);  // the kernel's minimum
  EXPECT_EQ(cgroup_memory_bytes(32), 32 * 1024 * 1024);
}

TEST(CgroupFs, DetectsLayout) {
  TempDir v1, v2, none;
  EXPECT_EQ(CgroupFs::detect(fake_v1(v1)).version(), CgroupVersion::v1);
  EXPECT_EQ(CgroupFs::detect(fake_v2(v2)).version(), CgroupVersion::v2);
  EXPECT_EQ(CgroupFs::detect(none.path()).version(), CgroupVersion::none);
}

TEST(CgroupFs, V1WritesLimitsPerController) {
  TempDir d;
  CgroupFs cg(fake_v1(d), CgroupVersion::v1);
  auto r = cg.create("stele/agent-1/web-r1.0.1", {0.5, 64, 4096});
  ASSERT_TRUE(r) << r.error().message;
  std::string rel = "/stele/agent-1/web-r1.0.1/";
  EXPECT_EQ(file_text(d.path() + "/cpu" + rel + "cpu.shares"), "512");
  EXPECT_EQ(file_text(d.path() + "/cpu" + rel + "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(file_text(d.path() + "/cpu" + rel + "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(file_text(d.path() + "/memory" + rel + "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(file_text(d.path() + "/pids" + rel + "pids.max"), "4096");
  EXPECT_TRUE(fs::is_directory(d.path() + "/cpuacct" + rel));  // joined for usage metrics
  EXPECT_FALSE(fs::exists(d.path() + "/memory" + rel + "memory.memsw.limit_in_bytes"));
  EXPECT_EQ(r->dirs.size(), 4u);
  EXPECT_EQ(r->memory_dir, d.path() + "/memory/stele/agent-1/web-r1.0.1");
}

TEST(CgroupFs, V1LimitsSwapWhenAccounted) {
  TempDir d;
  CgroupFs cg(fake_v1(d), CgroupVersion::v1);
  touch(d.path() + "/memory/p/t/memory.memsw.limit_in_bytes", "9223372036854771712");
  ASSERT_TRUE(cg.create("p/t", {1, 32, 4096}));
  EXPECT_EQ(file_text(d.path() + "/memory/p/t/memory.limit_in_bytes"), "33554432");
  EXPECT_EQ(file_text(d.path() + "/memory/p/t/memory.memsw.limit_in_bytes"), "33554432");
}

TEST(CgroupFs, V1CoMountedControllersJoinedOnce) {
  TempDir d;
  touch(d.path() + "/cpu,cpuacct/cgroup.procs");
  touch(d.path() + "/memory/cgroup.procs");
  fs::create_directory_symlink("cpu,cpuacct", d.path() + "/cpu");
  fs::create_directory_symlink("cpu,cpuacct", d.path() + "/cpuacct");
  CgroupFs cg(d.path(), CgroupVersion::v1);
  auto r = cg.create("p/t", {2, 128, 0});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dirs.size(), 2u);  // cpu(,cpuacct) and memory
  EXPECT_EQ(file_text(d.path() + "/cpu,cpuacct/p/t/cpu.shares"), "2048");
  EXPECT_TRUE(r->pids_dir.empty());
}

TEST(CgroupFs, V2WritesLimitsAndDelegatesControllers) {
  TempDir d;
  CgroupFs cg(fake_v2(d), CgroupVersion::v2);
  auto r = cg.create("stele/agent-1/web-r1.0.1", {0.5, 64, 4096});
  ASSERT_TRUE(r) << r.error().message;
  // Every ancestor enables the controllers for its children; the task's own
  // cgroup does not (it holds processes).
  for (std::string dir : {"", "/stele", "/stele/agent-1"})
    EXPECT_EQ(file_text(d.path() + dir + "/cgroup.subtree_control"), "+cpu +memory +pids") << dir;
  std::string t = d.path() + "/stele/agent-1/web-r1.0.1/";
  EXPECT_FALSE(fs::exists(t + "cgroup.subtree_control"));
  EXPECT_EQ(file_text(t + "cpu.weight"), "20");  // shares 512 -> 1 + (510*9999)/262142
  EXPECT_EQ(file_text(t + "cpu.max"), "50000 100000");
  EXPECT_EQ(file_text(t + "memory.max"), "67108864");
  EXPECT_EQ(file_text(t + "pids.max"), "4096");
  EXPECT_EQ(r->dirs, std::vector<std::string>{d.path() + "/stele/agent-1/web-r1.0.1"});
}

TEST(CgroupFs, V2OnlyUsesAvailableControllers) {
  TempDir d;
  CgroupFs cg(fake_v2(d, "cpu io"), CgroupVersion::v2);
  ASSERT_TRUE(cg.create("p/t", {1, 64, 4096}));
  EXPECT_EQ(file_text(d.path() + "/cgroup.subtree_control"), "+cpu");
  EXPECT_EQ(file_text(d.path() + "/p/t/cpu.max"), "100000 100000");
  EXPECT_FALSE(fs::exists(d.path() + "/p/t/memory.max"));
  EXPECT_FALSE(fs::exists(d.path() + "/p/t/pids.max"));
}

TEST(CgroupFs, ReadsOomKills) {
  TempDir a, b;
  CgroupFs v1(fake_v1(a), CgroupVersion::v1);
  auto c1 = v1.create("p/t", {1, 64, 0});
  ASSERT_TRUE(c1);
  EXPECT_EQ(v1.oom_kills(*c1), 0);
  touch(c1->memory_dir + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  EXPECT_EQ(v1.oom_kills(*c1), 2);

  CgroupFs v2(fake_v2(b), CgroupVersion::v2);
  auto c2 = v2.create("p/t", {1, 64, 0});
  ASSERT_TRUE(c2);
  touch(c2->memory_dir + "/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n");
  EXPECT_EQ(v2.oom_kills(*c2), 1);
}

TEST(CgroupFs, JoinFilesAreTasksOnV1AndProcsOnV2) {
  TempDir a, b;
  CgroupFs v1(fake_v1(a), CgroupVersion::v1);
  auto c1 = v1.create("p/t", {1, 64, 0});
  ASSERT_TRUE(c1);
  auto f1 = v1.open_join_files(*c1);
  ASSERT_TRUE(f1);
  ASSERT_EQ(f1->size(), 4u);
  for (auto& fd : *f1) ASSERT_EQ(::write(fd.get(), "0", 1), 1);
  for (const auto& d : c1->dirs) EXPECT_EQ(file_text(d + "/tasks"), "0") << d;
  EXPECT_FALSE(*v1.open_dir(*c1));  // CLONE_INTO_CGROUP is v2 only

  CgroupFs v2(fake_v2(b), CgroupVersion::v2);
  auto c2 = v2.create("p/t", {1, 64, 0});
  ASSERT_TRUE(c2);
  auto f2 = v2.open_join_files(*c2);
  ASSERT_TRUE(f2);
  ASSERT_EQ(f2->size(), 1u);
  ASSERT_EQ(::write((*f2)[0].get(), "0", 1), 1);
  EXPECT_EQ(file_text(c2->dirs[0] + "/cgroup.procs"), "0");
  auto dir = v2.open_dir(*c2);
  ASSERT_TRUE(dir);
  EXPECT_TRUE(*dir);
}

// The host's own v1 hierarchy (CI runs as root on a v1 hybrid host).
TEST(CgroupFs, RealV1CreateJoinRemove) {
  CgroupFs cg = CgroupFs::detect();
  if (::geteuid() != 0 || cg.version() != CgroupVersion::v1)
    GTEST_SKIP() << "needs root and a cgroup v1 host";
  std::string parent = testing::test_cgroup_parent();
  auto c = cg.create(parent + "/t", {0.25, 48, 100});
  if (!c) GTEST_SKIP() << "cgroupfs not writable: " << c.error().message;
  EXPECT_EQ(file_text(c->cpu_dir + "/cpu.shares"), "256\n");
  EXPECT_EQ(file_text(c->cpu_dir + "/cpu.cfs_quota_us"), "25000\n");
  EXPECT_EQ(file_text(c->memory_dir + "/memory.limit_in_bytes"), "50331648\n");
  EXPECT_EQ(file_text(c->pids_dir + "/pids.max"), "100\n");
  pid_t child = ::fork();
  if (child == 0) {
    auto fds = cg.open_join_files(*c);
    for (auto& fd : *fds) (void)!::write(fd.get(), "0", 1);
    ::pause();
    _exit(0);
  }
  ASSERT_TRUE(testing::wait_until([&] { return cg.procs(*c) == std::vector<pid_t>{child}; }, 5));
  EXPECT_GE(cg.kill_all(*c), 1);
  int st;
  ::waitpid(child, &st, 0);
  EXPECT_TRUE(cg.remove(*c));
  for (const auto& dir : c->dirs) EXPECT_FALSE(fs::exists(dir));
  testing::cleanup_agent_dir("/nonexistent", parent);
}

}  // namespace
}  // namespace stele
