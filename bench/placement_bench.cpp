// placement_bench: placements per second of stele::sched::Scheduler on the
// cluster of design.md "Benchmarks".
//
// Each round builds (untimed) a cluster of --agents agents with attributes
// rack (100 agents per rack), zone (3) and kind (3), fills it to 60 % of cpus
// and mem with pre-placed tasks (add_task), then times --tasks placements:
// apps of various sizes placed instance after instance, app order shuffled;
// 30 % of apps have `hostname UNIQUE`, 20 % `rack GROUP_BY`, 10 % `kind LIKE
// ...`, the rest none; mixed cpus/mem/port counts. Agent capacity is derived
// from the workload so the timed tasks need about 25 % of the cluster (it ends
// near 85 % full), whatever --agents and --tasks are.
//
//   taskset -c 0 build/placement_bench [--agents 10000] [--tasks 1000000] [--rounds 5] [--seed 1]
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace {

using stele::sched::AgentInfo;
using stele::sched::Scheduler;
using stele::sched::TaskRequest;

struct Options {
  int agents = 10000;
  int tasks = 1000000;
  int rounds = 5;
  uint64_t seed = 1;
};

struct App {
  TaskRequest request;
  std::vector<std::string> task_ids;
};

struct Workload {
  std::vector<App> apps;
  double total_cpus = 0, total_mem = 0;  // of all timed tasks
};

struct RoundResult {
  double per_second = 0;      // wall clock
  double per_cpu_second = 0;  // this thread's CPU time: what other load on the host does not skew
  long failures = 0;
  double build_seconds = 0;
  long rss_mb = 0;           // process RSS with the cluster loaded, after the round  // untimed setup: agents and pre-placed tasks
  double cpu_used = 0;  // share of the cluster's cpus after the round
  std::map<std::string, long> reasons;
};

constexpr double kMemPerCpu = 2048;  // MB; agent shape and background task shape

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--agents") o.agents = static_cast<int>(v);
    else if (flag == "--tasks") o.tasks = static_cast<int>(v);
    else if (flag == "--rounds") o.rounds = static_cast<int>(v);
    else if (flag == "--seed") o.seed = static_cast<uint64_t>(v);
    else {
      std::fprintf(stderr, "usage: %s [--agents N] [--tasks N] [--rounds N] [--seed N]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

template <class T>
T pick(std::mt19937_64& rng, const std::vector<T>& values, const std::vector<double>& weights) {
  std::discrete_distribution<size_t> d(weights.begin(), weights.end());
  return values[d(rng)];
}

int app_size(std::mt19937_64& rng, int agents) {
  const double r = std::uniform_real_distribution<>(0, 1)(rng);
  const int lo = r < 0.5 ? 1 : r < 0.85 ? 10 : 100;
  const int size = std::uniform_int_distribution<>(lo, lo * 10)(rng);
  return std::min(size, std::max(1, agents / 2));  // UNIQUE hostname apps must fit
}

void add_constraint(std::mt19937_64& rng, TaskRequest& r) {
  static const std::vector<std::string> kLike = {"general|compute", "mem.*", "comp.*"};
  const double c = std::uniform_real_distribution<>(0, 1)(rng);
  if (c < 0.3) r.constraints.push_back({"hostname", "UNIQUE", ""});
  else if (c < 0.5) r.constraints.push_back({"rack", "GROUP_BY", ""});
  else if (c < 0.6) r.constraints.push_back({"kind", "LIKE", kLike[rng() % kLike.size()]});
}

Workload make_workload(const Options& o) {
  std::mt19937_64 rng(o.seed);
  Workload w;
  for (int placed = 0, a = 0; placed < o.tasks; ++a) {
    App app;
    app.request.app_id = "/bench/app-" + std::to_string(a);
    app.request.res.cpus = pick<double>(rng, {0.1, 0.25, 0.5, 1, 2}, {30, 25, 20, 15, 10});
    app.request.res.mem = pick<double>(rng, {128, 256, 512, 1024, 2048}, {25, 30, 25, 15, 5});
    app.request.port_count = pick<int>(rng, {0, 1, 2}, {25, 50, 25});
    add_constraint(rng, app.request);
    const int n = std::min(app_size(rng, o.agents), o.tasks - placed);
    for (int i = 0; i < n; ++i) app.task_ids.push_back("bench-app-" + std::to_string(a) + "." + std::to_string(i));
    w.total_cpus += n * app.request.res.cpus;
    w.total_mem += n * app.request.res.mem;
    placed += n;
    w.apps.push_back(std::move(app));
  }
  std::shuffle(w.apps.begin(), w.apps.end(), rng);
  return w;
}

// Agent capacity such that the timed tasks need ~25 % of the cluster.
stele::sched::Resources agent_capacity(const Options& o, const Workload& w) {
  const double cpus = std::ceil(w.total_cpus / (0.25 * o.agents));
  const double mem = std::max(cpus * kMemPerCpu, std::ceil(w.total_mem / (0.25 * o.agents)));
  return {cpus, mem, 1e6};
}

AgentInfo make_agent(int i, const stele::sched::Resources& cap) {
  static const char* kKinds[] = {"general", "compute", "memory"};
  char id[32];
  std::snprintf(id, sizeof id, "agent-%05d", i);
  AgentInfo a;
  a.id = id;
  a.hostname = std::string(id) + ".dc1.example.com";
  a.attributes = {{"rack", "rack-" + std::to_string(i / 100)},
                  {"zone", "zone-" + std::to_string(i % 3)},
                  {"kind", kKinds[(i / 7) % 3]}};
  a.total = cap;
  a.ports = {{31000, 32000}};
  return a;
}

// Background tasks of 2-8 cpus until the agent is 60 % used.
void prefill(Scheduler& s, const AgentInfo& a, std::mt19937_64& rng, long& next_id) {
  double left = 0.6 * a.total.cpus;
  while (left > 1e-9) {
    const double cpus = std::min(left, static_cast<double>(std::uniform_int_distribution<>(2, 8)(rng)));
    const double mem = a.total.mem * cpus / a.total.cpus;  // mem fills in step with cpus
    const long id = next_id++;
    s.add_task("pre-" + std::to_string(id), "/pre/app-" + std::to_string(id % 500), a.id,
               {cpus, mem, 0}, {});
    left -= cpus;
  }
}

Scheduler build_cluster(const Options& o, const stele::sched::Resources& cap) {
  Scheduler s(o.seed);
  std::mt19937_64 rng(o.seed + 7);
  long next_id = 0;
  for (int i = 0; i < o.agents; ++i) {
    const AgentInfo a = make_agent(i, cap);
    s.upsert_agent(a);
    prefill(s, a, rng, next_id);
  }
  return s;
}

double cpu_share(const Scheduler& s, const Options& o, const stele::sched::Resources& cap) {
  double used = 0;
  for (int i = 0; i < o.agents; ++i) used += s.used(make_agent(i, cap).id).cpus;
  return used / (cap.cpus * o.agents);
}

long current_rss_mb();

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

RoundResult run_round(const Options& o, const Workload& w, const stele::sched::Resources& cap) {
  const auto build_start = std::chrono::steady_clock::now();
  Scheduler s = build_cluster(o, cap);
  RoundResult r;
  r.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  for (const App& app : w.apps) {
    for (const std::string& id : app.task_ids) {
      auto p = s.place(id, app.request);
      if (!p) ++r.failures, ++r.reasons[p.error().message.substr(0, 60)];
    }
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  r.per_second = o.tasks / took.count();
  r.per_cpu_second = o.tasks / (thread_cpu_seconds() - cpu_start);
  r.cpu_used = cpu_share(s, o, cap);
  r.rss_mb = current_rss_mb();
  return r;
}

long current_rss_mb() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

void print_median(const char* clock, std::vector<RoundResult> rounds, double RoundResult::*field) {
  std::sort(rounds.begin(), rounds.end(),
            [&](const auto& a, const auto& b) { return a.*field < b.*field; });
  std::printf("median %.0f placements/s by %s (min %.0f, max %.0f) over %zu rounds\n",
              rounds[rounds.size() / 2].*field, clock, rounds.front().*field, rounds.back().*field,
              rounds.size());
}

void print_summary(std::vector<RoundResult> rounds) {
  long failures = 0;
  std::map<std::string, long> reasons;
  for (const auto& r : rounds) {
    failures += r.failures;
    for (const auto& [k, v] : r.reasons) reasons[k] += v;
  }
  print_median("wall clock", rounds, &RoundResult::per_second);
  print_median("CPU time", rounds, &RoundResult::per_cpu_second);
  std::printf("failures %ld in all rounds\n", failures);
  for (const auto& [reason, n] : reasons) std::printf("  %6ld x %s\n", n, reason.c_str());
  std::printf("peak RSS %ld MB\n", peak_rss_mb());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  const Workload w = make_workload(o);
  const auto cap = agent_capacity(o, w);
  int unique = 0, group_by = 0, like = 0;
  for (const App& a : w.apps)
    for (const auto& c : a.request.constraints)
      (c.op == "UNIQUE" ? unique : c.op == "GROUP_BY" ? group_by : like) += 1;
  std::printf("agents %d (%.0f cpus, %.0f MB each, 60%% pre-filled), tasks %d in %zu apps "
              "(%d UNIQUE, %d GROUP_BY, %d LIKE apps), rounds %d\n",
              o.agents, cap.cpus, cap.mem, o.tasks, w.apps.size(), unique, group_by, like, o.rounds);
  std::printf("RSS before the first round (the workload itself): %ld MB\n", current_rss_mb());
  std::vector<RoundResult> rounds;
  for (int i = 0; i < o.rounds; ++i) {
    rounds.push_back(run_round(o, w, cap));
    const auto& r = rounds.back();
    std::printf("round %d: %.0f placements/s wall, %.0f per CPU-second, %ld failures, "
                "cluster cpus %.1f%% used after, RSS %ld MB (setup %.1f s)\n",
                i + 1, r.per_second, r.per_cpu_second, r.failures, 100 * r.cpu_used, r.rss_mb,
                r.build_seconds);
    std::fflush(stdout);
  }
  print_summary(std::move(rounds));
  return 0;
}
