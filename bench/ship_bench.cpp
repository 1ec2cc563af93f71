// ship_bench: what shipping to every server costs (issue 10 point 4). A
// task's finished spool of N records goes through the real logs::Shipper to
// K real forward inputs (logs::ForwardServer + logs::LogStore, each with its
// own io thread, default store options), all in this process on 127.0.0.1;
// the clock runs from the shipper's start until every store holds N records.
// K = 1 is the single-server agent, K = 3 an agent of a three-server cluster.
// Rounds alternate the K values; medians and min-max are printed, with the
// ratio of each K's median to the first's.
//
//   ship_bench [--records 200000] [--dests 1,3] [--rounds 5] [--dir /tmp]
//
// CPU is the whole process's (shipper and receivers): receivers' work grows
// with K by design, so per-record CPU is given per destination too.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <utility>  // before Asio with g++ 12
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/json.h"
#include "logs/forward_server.h"
#include "logs/log_store.h"
#include "logs/shipper.h"
#include "logs/spool.h"
#include <spdlog/spdlog.h>

namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace logs = stele::logs;
using Clock = std::chrono::steady_clock;

struct Options {
  size_t records = 200000;
  std::vector<int> dests{1, 3};
  int rounds = 5;
  std::string dir = "/tmp";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i], v = argv[i + 1];
    if (f == "--records") o.records = std::stoul(v);
    else if (f == "--rounds") o.rounds = std::stoi(v);
    else if (f == "--dir") o.dir = v;
    else if (f == "--dests") {
      o.dests.clear();
      for (size_t at = 0; at <= v.size();) {
        size_t c = std::min(v.find(',', at), v.size());
        o.dests.push_back(std::stoi(v.substr(at, c - at)));
        at = c + 1;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--records N] [--dests 1,3] [--rounds R] [--dir DIR]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One forward input on its own io thread.
struct Receiver {
  logs::LogStore store;
  asio::io_context io;
  std::unique_ptr<logs::ForwardServer> server;
  std::thread thread;
  std::string address;
  explicit Receiver(const fs::path& dir) : store(dir.string(), logs::LogStoreOptions{}) {
    if (auto r = store.open(); !r) throw std::runtime_error(r.error().message);
    logs::ForwardServerOptions fo;
    fo.listen = "127.0.0.1:0";
    server = std::make_unique<logs::ForwardServer>(io, store, fo);
    auto b = server->start();
    if (!b) throw std::runtime_error(b.error().message);
    address = *b;
    thread = std::thread([this] {
      auto guard = asio::make_work_guard(io);
      io.run();
    });
  }
  ~Receiver() {
    asio::post(io, [this] { server->stop(); });
    io.stop();
    thread.join();
    server.reset();
  }
};

struct Result {
  double seconds = 0, cpu = 0;
};

Result one_round(const Options& o, int k, const fs::path& root) {
  fs::path tasks = root / "executors", task = tasks / "task-1";
  fs::create_directories(task);
  {
    logs::SpoolWriter w(task.string(), "records", logs::SpoolWriterOptions{.segment_bytes = 8ull << 20, .max_bytes = 4ull << 30});
    for (size_t i = 0; i < o.records; ++i) {
      auto rec = stele::Json::to_msgpack(stele::Json{{"app", "/bench"}, {"task", "task-1"}, {"stream", "stdout"},
                                                     {"log", "GET /health HTTP/1.1 200 - request " + std::to_string(i)}});
      w.append("stele.bench.stdout", 1700000000LL * 1000000000LL + int64_t(i), std::string(rec.begin(), rec.end()));
      if (i % 100 == 99) w.flush();
    }
    w.finish();
  }
  std::vector<std::unique_ptr<Receiver>> receivers;
  for (int i = 0; i < k; ++i) receivers.push_back(std::make_unique<Receiver>(root / ("recv" + std::to_string(i))));
  asio::io_context io;
  asio::thread_pool workers(2);
  logs::Shipper shipper(io, workers, logs::ShipperOptions{.tasks_dir = tasks.string(), .node = "bench"});
  std::vector<logs::ShipDestination> to;
  for (auto& r : receivers) to.push_back({r->address, "", false});
  shipper.set_destinations(to);
  double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  shipper.start();
  std::thread runner([&io] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
  auto all_in = [&] {
    for (auto& r : receivers)
      if (r->store.stats().records < o.records) return false;
    return true;
  };
  while (!all_in()) {
    if (Clock::now() - t0 > std::chrono::minutes(10)) throw std::runtime_error("not every record arrived in 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Result res{std::chrono::duration<double>(Clock::now() - t0).count(), cpu_seconds() - cpu0};
  asio::post(io, [&shipper] { shipper.stop(); });
  io.stop();
  runner.join();
  workers.join();
  return res;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);  // no line per destination per round
  std::map<int, std::vector<Result>> results;
  fs::path base = fs::path(o.dir) / ("ship_bench." + std::to_string(::getpid()));
  for (int round = 0; round < o.rounds; ++round)
    for (int k : o.dests) {
      fs::path root = base / (std::to_string(round) + "-" + std::to_string(k));
      Result r;
      try {
        r = one_round(o, k, root);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ship_bench: %s\n", e.what());
        fs::remove_all(base);
        return 1;
      }
      fs::remove_all(root);
      results[k].push_back(r);
      std::printf("round %d, %d destination(s): %.3f s, %.0f records/s per destination, %.2f CPU-s\n", round + 1, k,
                  r.seconds, double(o.records) / r.seconds, r.cpu);
      std::fflush(stdout);
    }
  fs::remove_all(base);
  double first = 0;
  std::printf("\n%zu records of ~130 bytes, one task's finished spool; medians of %d rounds (min-max):\n", o.records,
              o.rounds);
  for (int k : o.dests) {
    std::vector<double> secs, cpus;
    for (const auto& r : results[k]) secs.push_back(r.seconds), cpus.push_back(r.cpu);
    double m = median(secs);
    if (first == 0) first = m;
    std::printf("  %d destination(s): %.3f s (%.3f-%.3f), %.0f records/s to each, %.2f CPU-s = %.2f us per record "
                "per destination, time ratio to %d: %.2f\n",
                k, m, *std::min_element(secs.begin(), secs.end()), *std::max_element(secs.begin(), secs.end()),
                double(o.records) / m, median(cpus), median(cpus) * 1e6 / double(o.records) / k, o.dests.front(),
                m / first);
  }
  return 0;
}
