// forward_bench: the Stele side of bench/forward_bench.py -- a bench-only
// server that wires the real logs::ForwardServer to a real logs::LogStore
// exactly as `stele server` does (default LogStoreOptions, retention 7d,10GB,
// one io thread, the server's own writer thread), and nothing else: no API,
// no scheduler, no periodic maintenance (runs last seconds). Run it under
// `taskset -c N` to credit it with one core.
//
//   forward_bench --dir DIR [--listen 127.0.0.1:0]
//
// Prints `listening HOST:PORT` once it accepts connections, serves until
// SIGTERM/SIGINT, then flushes the store and prints one JSON line of the
// server's and the store's counters. The driver (forward_bench.py) does the
// timing; without it this binary measures nothing by itself.
#include <utility>  // before Asio with g++ 12

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstring>
#include <string>

#include "logs/forward_server.h"
#include "logs/log_store.h"

namespace {

struct Options {
  std::string dir;
  std::string listen = "127.0.0.1:0";
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dir") o.dir = argv[i + 1];
    else if (flag == "--listen") o.listen = argv[i + 1];
    else o.dir.clear(), i = argc;
  }
  if (o.dir.empty()) {
    std::fprintf(stderr, "usage: %s --dir DIR [--listen HOST:PORT]   (driven by bench/forward_bench.py)\n", argv[0]);
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  namespace logs = stele::logs;
  Options o = parse_options(argc, argv);
  logs::LogStoreOptions lo;
  lo.retention = *logs::parse_retention("7d,10GB");  // `stele server`'s default --log-retention
  logs::LogStore store(o.dir, lo);
  if (auto r = store.open(); !r) {
    std::fprintf(stderr, "forward_bench: %s\n", r.error().message.c_str());
    return 1;
  }
  boost::asio::io_context io;
  logs::ForwardServerOptions fo;
  fo.listen = o.listen;
  auto server = std::make_unique<logs::ForwardServer>(io, store, fo);
  auto bound = server->start();
  if (!bound) {
    std::fprintf(stderr, "forward_bench: %s\n", bound.error().message.c_str());
    return 1;
  }
  std::printf("listening %s\n", bound->c_str());
  std::fflush(stdout);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  logs::ForwardServer::Stats stats;
  signals.async_wait([&](const boost::system::error_code&, int) {
    stats = server->stats();
    server->stop();
    io.stop();
  });
  io.run();
  server.reset();  // waits for the writer's last append
  auto flushed = store.flush();
  auto ss = store.stats();
  std::printf(
      "{\"connections\": %llu, \"requests\": %llu, \"records\": %llu, \"duplicates\": %llu, \"acks\": %llu, "
      "\"closed_on_error\": %llu, \"last_seq\": %llu, \"syncs\": %llu, \"batches\": %llu, \"disk_bytes\": %llu}\n",
      (unsigned long long)stats.connections, (unsigned long long)stats.requests, (unsigned long long)stats.records,
      (unsigned long long)stats.duplicates, (unsigned long long)stats.acks, (unsigned long long)stats.closed_on_error,
      (unsigned long long)store.last_seq(), (unsigned long long)ss.wal_syncs, (unsigned long long)ss.batches,
      (unsigned long long)store.disk_bytes());
  return flushed ? 0 : 1;
}
