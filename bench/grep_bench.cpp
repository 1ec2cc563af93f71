// grep_bench: a grep query over stored logs against `grep -c` over the same
// text (issue 4's benchmark, second half).
//
// Untimed setup: --size bytes (default 1 GiB) of varied log lines -- access
// lines, app INFO/DEBUG/WARN lines, rare errors; 60-250 bytes each; 5 apps and
// an external tag -- are written into a logs::LogStore in a temp dir (records
// {"log": line}, group-committed with append_batch, then flush()) and, as the
// same lines with '\n', into a plain file beside it.
//
// Timed, per round and per pattern, interleaved: LogStore::query with `grep`
// and a limit above the number of lines (what GET /api/v1/logs?grep=P runs,
// without rendering the results as JSON), counting the results, against
// `LC_ALL=C grep -c -F P file`. Both read warm page cache (nothing is
// dropped). Both counts must equal the number of planted matches.
//
//   taskset -c 1 build/grep_bench                      # the figure: 1 GiB, 5 rounds
//   taskset -c 1 build/grep_bench --size 20MB --rounds 1   # CI smoke
//
// Flags: --size N[KB|MB|GB|KiB|MiB|GiB], --rounds N, --dir DIR (temp base).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "logs/log_store.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace logs = stele::logs;
using Seconds = std::chrono::duration<double>;

struct Options {
  uint64_t size = 1ull << 30;
  int rounds = 5;
  std::string dir = "/tmp";
};

// The patterns and how often the generator plants them (per line).
struct Pattern {
  const char* text;
  const char* what;
  uint64_t planted = 0;
};
Pattern g_patterns[] = {
    {"upstream timed out", "common (~0.5 % of lines)"},
    {"OutOfMemoryError", "rare (~1 in 100,000 lines)"},
};

uint64_t parse_size(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit = end;
  static const std::pair<const char*, double> units[] = {
      {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
  for (auto [u, mul] : units)
    if (unit == u && v > 0) return static_cast<uint64_t>(v * mul);
  std::fprintf(stderr, "grep_bench: --size '%s': expected e.g. 20MB or 1GiB\n", s.c_str());
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = i + 1 < argc ? argv[i] : "";
    if (flag == "--size") o.size = parse_size(argv[i + 1]);
    else if (flag == "--rounds") o.rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (flag == "--dir") o.dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--size 1GiB] [--rounds 5] [--dir /tmp]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

// Varied, realistic lines; deterministic for a seed.
class LineMaker {
 public:
  explicit LineMaker(uint64_t seed) : rng_(seed) {}

  // Appends one line (no newline) to `out`; returns its tag.
  const char* next(std::string& out, uint64_t n) {
    char ts[40];
    uint64_t ms = 1764237600000ull + n * 7;
    std::snprintf(ts, sizeof ts, "2026-11-27T%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64 "Z",
                  (ms / 3600000) % 24, (ms / 60000) % 60, (ms / 1000) % 60, ms % 1000);
    static const char* apps[] = {"shop", "api", "auth", "worker", "search"};
    static const char* hosts[] = {"web-1", "web-2", "web-3", "web-4", "db-1", "cache-1"};
    const char* app = apps[pick(5)];
    const char* host = hosts[pick(6)];
    char buf[512];
    uint64_t roll = pick(1000000);
    if (roll < 10) {
      plant(1);
      std::snprintf(buf, sizeof buf, "%s %s %s[%u]: ERROR java.lang.OutOfMemoryError: Java heap space at "
                    "com.example.%s.Cache.load(Cache.java:%u)", ts, host, app, pid(), app, unsigned(pick(900) + 10));
    } else if (roll < 5010) {
      plant(0);
      std::snprintf(buf, sizeof buf, "%s %s nginx[88]: %u#0: *%u upstream timed out (110: Connection timed out) "
                    "while reading response header from upstream, client: 10.0.%u.%u, request: \"GET /api/items/%u HTTP/1.1\"",
                    ts, host, unsigned(pick(4)), unsigned(pick(1u << 20)), unsigned(pick(256)), unsigned(pick(256)),
                    unsigned(pick(99999)));
      out.append(buf);
      return "nginx.error";
    } else if (roll < 400000) {
      static const char* methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
      static const char* paths[] = {"/api/items/%u", "/api/cart/%u", "/api/users/%u/orders", "/static/app.%x.js",
                                    "/search?q=item%u&page=2", "/healthz"};
      char path[64];
      std::snprintf(path, sizeof path, paths[pick(6)], unsigned(pick(99999)));
      static const int statuses[] = {200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 502};
      std::snprintf(buf, sizeof buf, "%s %s nginx[88]: 10.0.%u.%u - - \"%s %s HTTP/1.1\" %d %u \"-\" \"%s\" rt=%u.%03u",
                    ts, host, unsigned(pick(256)), unsigned(pick(256)), methods[pick(6)], path, statuses[pick(14)],
                    unsigned(pick(60000)), pick(4) ? "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
                                                   : "curl/7.88.1",
                    unsigned(pick(3)), unsigned(pick(1000)));
      out.append(buf);
      return "nginx.access";
    } else if (roll < 800000) {
      std::snprintf(buf, sizeof buf, "%s %s %s[%u]: INFO order %u placed by user=u%u total=%u.%02u EUR items=%u "
                    "req=%016" PRIx64, ts, host, app, pid(), unsigned(pick(9999999)), unsigned(pick(50000)),
                    unsigned(pick(500)), unsigned(pick(100)), unsigned(pick(9) + 1), rng_());
    } else if (roll < 950000) {
      std::snprintf(buf, sizeof buf, "%s %s %s[%u]: DEBUG cache %s key=item:%u ttl=%us", ts, host, app, pid(),
                    pick(3) ? "hit" : "miss", unsigned(pick(99999)), unsigned(pick(3600)));
    } else {
      std::snprintf(buf, sizeof buf, "%s %s %s[%u]: WARN slow query %ums: SELECT id, total, created_at FROM orders "
                    "WHERE user_id = %u ORDER BY created_at DESC LIMIT 50", ts, host, app, pid(),
                    unsigned(pick(4000) + 500), unsigned(pick(50000)));
    }
    out.append(buf);
    return app_tag(app);
  }

 private:
  uint64_t pick(uint64_t n) { return rng_() % n; }
  unsigned pid() { return 1000 + unsigned(pick(8)); }
  static void plant(int i) { ++g_patterns[i].planted; }
  static const char* app_tag(const char* app) {
    static std::string tags[5];
    static const char* apps[] = {"shop", "api", "auth", "worker", "search"};
    for (int i = 0; i < 5; ++i)
      if (std::strcmp(app, apps[i]) == 0) {
        if (tags[i].empty()) tags[i] = std::string("stele.") + app + ".stdout";
        return tags[i].c_str();
      }
    return "app";
  }
  std::mt19937_64 rng_;
};

std::string pack_log(std::string_view line) {  // {"log": line} in msgpack
  std::string out("\x81\xa3log", 5);
  if (line.size() < 32) {
    out.push_back(char(0xa0 | line.size()));
  } else if (line.size() < 256) {
    out.push_back(char(0xd9));
    out.push_back(char(line.size()));
  } else {
    out.push_back(char(0xda));
    out.push_back(char(line.size() >> 8));
    out.push_back(char(line.size() & 0xff));
  }
  out.append(line);
  return out;
}

struct Corpus {
  uint64_t lines = 0, text_bytes = 0;
  double write_seconds = 0;
};

// Writes the same lines to the store and to text_path.
Corpus build(logs::LogStore& store, const std::string& text_path, uint64_t size) {
  Corpus c;
  std::ofstream text(text_path, std::ios::binary);
  LineMaker maker(1);
  constexpr size_t kPerRequest = 5000, kRequestsPerBatch = 4;
  auto t0 = std::chrono::steady_clock::now();
  int64_t base_ns = 1764237600000000000LL;
  while (c.text_bytes < size) {
    std::vector<std::vector<logs::OwnedLogEntry>> owned(kRequestsPerBatch);
    std::string chunk;
    for (auto& req : owned) {
      for (size_t i = 0; i < kPerRequest && c.text_bytes < size; ++i) {
        std::string line;
        const char* tag = maker.next(line, c.lines);
        text << line << '\n';
        c.text_bytes += line.size() + 1;
        req.push_back({tag, base_ns + int64_t(c.lines) * 7000000, pack_log(line)});
        ++c.lines;
      }
    }
    std::vector<std::vector<logs::LogEntry>> views(kRequestsPerBatch);
    std::vector<std::string> chunks(kRequestsPerBatch);
    std::vector<logs::AppendRequest> batch;
    for (size_t r = 0; r < kRequestsPerBatch; ++r) {
      for (const auto& e : owned[r]) views[r].push_back(e.view());
      chunks[r] = "grep-bench-" + std::to_string(c.lines) + "-" + std::to_string(r);
      batch.push_back({views[r], chunks[r]});
    }
    for (auto& r : store.append_batch(batch))
      if (!r) {
        std::fprintf(stderr, "grep_bench: append: %s\n", r.error().message.c_str());
        std::exit(1);
      }
  }
  if (auto r = store.flush(); !r) {
    std::fprintf(stderr, "grep_bench: flush: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  text.close();
  c.write_seconds = Seconds(std::chrono::steady_clock::now() - t0).count();
  return c;
}

// Matches of `pattern` through the store's query path, and the seconds it took.
std::pair<uint64_t, double> stele_count(const logs::LogStore& store, const char* pattern, uint64_t lines) {
  logs::LogQuery q;
  q.grep = pattern;
  q.limit = lines + 1;
  auto t0 = std::chrono::steady_clock::now();
  auto r = store.query(q);
  double s = Seconds(std::chrono::steady_clock::now() - t0).count();
  if (!r) {
    std::fprintf(stderr, "grep_bench: query: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  return {r->size(), s};
}

// `LC_ALL=C grep -c -F pattern path`: its count and wall seconds (spawn to exit).
std::pair<uint64_t, double> grep_count(const char* pattern, const std::string& path) {
  int fds[2];
  if (::pipe(fds) != 0) std::exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<std::string> env_s = {"LC_ALL=C", "PATH=/usr/bin:/bin"};
  std::vector<char*> env = {env_s[0].data(), env_s[1].data(), nullptr};
  std::string p = pattern, file = path;
  char arg0[] = "grep", c[] = "-c", f[] = "-F", dd[] = "--";
  char* argv[] = {arg0, c, f, dd, p.data(), file.data(), nullptr};
  pid_t pid;
  auto t0 = std::chrono::steady_clock::now();
  if (posix_spawnp(&pid, "grep", &fa, nullptr, argv, env.data()) != 0) {
    std::fprintf(stderr, "grep_bench: cannot run grep\n");
    std::exit(1);
  }
  ::close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  int status = 0;
  ::waitpid(pid, &status, 0);
  double s = Seconds(std::chrono::steady_clock::now() - t0).count();
  ::close(fds[0]);
  posix_spawn_file_actions_destroy(&fa);
  return {std::strtoull(out.c_str(), nullptr, 10), s};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  std::string tmpl = o.dir + "/stele-grep-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "grep_bench: mkdtemp in %s: %s\n", o.dir.c_str(), std::strerror(errno));
    return 1;
  }
  fs::path dir = tmpl;
  int rc = 0;
  {
    logs::LogStoreOptions lo;
    lo.retention = *logs::parse_retention("7d,10GB");  // `stele server`'s default
    logs::LogStore store((dir / "logs").string(), lo);
    if (auto r = store.open(); !r) {
      std::fprintf(stderr, "grep_bench: %s\n", r.error().message.c_str());
      return 1;
    }
    std::string text = (dir / "text.log").string();
    std::printf("writing %.1f MiB of log lines into a LogStore and %s ...\n", o.size / 1048576.0, text.c_str());
    std::fflush(stdout);
    Corpus c = build(store, text, o.size);
    std::printf("  %" PRIu64 " lines, %.1f MiB of text; store on disk %.1f MiB (zstd blocks); written in %.1f s\n",
                c.lines, c.text_bytes / 1048576.0, store.disk_bytes() / 1048576.0, c.write_seconds);
    std::printf("query: LogStore::query {grep, limit > lines} (GET /api/v1/logs?grep= without the JSON rendering); "
                "grep: LC_ALL=C grep -c -F; warm page cache\n");
    for (const Pattern& p : g_patterns) {
      std::vector<double> st, gr;
      bool counts_ok = true;
      for (int round = 1; round <= o.rounds; ++round) {
        auto [sn, ss] = stele_count(store, p.text, c.lines);
        auto [gn, gs] = grep_count(p.text, text);
        counts_ok &= sn == p.planted && gn == p.planted;
        st.push_back(ss), gr.push_back(gs);
        std::printf("  round %d \"%s\": stele %" PRIu64 " matches in %.3f s (%.0f MiB/s) | grep -c %" PRIu64
                    " in %.3f s (%.0f MiB/s)\n", round, p.text, sn, ss, c.text_bytes / 1048576.0 / ss, gn, gs,
                    c.text_bytes / 1048576.0 / gs);
      }
      double ms = median(st), mg = median(gr);
      std::printf("\"%s\" [%s, %" PRIu64 " planted]: stele median %.3f s (%.3f-%.3f), %.0f MiB/s; grep -c median "
                  "%.3f s (%.3f-%.3f), %.0f MiB/s; stele/grep time ratio %.2f%s\n",
                  p.text, p.what, p.planted, ms, *std::min_element(st.begin(), st.end()),
                  *std::max_element(st.begin(), st.end()), c.text_bytes / 1048576.0 / ms, mg,
                  *std::min_element(gr.begin(), gr.end()), *std::max_element(gr.begin(), gr.end()),
                  c.text_bytes / 1048576.0 / mg, ms / mg, counts_ok ? "" : "  COUNT MISMATCH");
      if (!counts_ok) rc = 1;
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}
