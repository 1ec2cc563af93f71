// `stele logs`: query and follow the log store (GET /api/v1/logs, docs/api.md
// "Logs"). Without -f the answer is JSON lines; with -f it is server-sent
// events, reopened after the last record seen when the connection drops.
#include <chrono>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/fields.h"
#include "common/names.h"
#include "net/sse.h"

namespace stele::cli {

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Following: the server sends a keepalive every 15 s; this much silence is a
// dead connection.
constexpr auto kFollowIdleTimeout = 60s;
constexpr auto kQueryIdleTimeout = 10min;  // a grep over a large store may be quiet for a while
constexpr auto kMaxOutage = 5min;
constexpr size_t kErrorBodyLimit = 64 * 1024;

struct LogArgs {
  std::string app, tag, task, stream, since, until, grep, regex;
  int64_t limit = -1;
  bool follow = false;
};

std::string logs_path(const LogArgs& a) {
  std::string query;
  auto add = [&](const char* key, const std::string& v) {
    if (!v.empty()) query += (query.empty() ? "?" : "&") + std::string(key) + "=" + net::percent_encode(v);
  };
  add("app", a.app.empty() ? "" : canonical_app_id(a.app));
  add("tag", a.tag);
  add("task", a.task);
  add("stream", a.stream);
  add("since", a.since);
  add("until", a.until);
  add("grep", a.grep);
  add("regex", a.regex);
  if (a.limit >= 0) add("limit", std::to_string(a.limit));
  if (a.follow) add("follow", "1");
  return "/api/v1/logs" + query;
}

// "2026-01-02T03:04:05.123456789Z" -> "2026-01-02 03:04:05.123" (UTC).
std::string short_time(const std::string& iso) {
  if (iso.size() < 19 || iso[10] != 'T') return iso.empty() ? "-" : iso;
  std::string out = iso.substr(0, 10) + " " + iso.substr(11, 8);
  if (iso.size() >= 23 && iso[19] == '.') out += iso.substr(19, 4);
  return out;
}

// TIME TASK STREAM LOG. Records without task/stream (external senders) show
// their tag and "-"; without a string "log", the whole record.
std::string format_log_line(const Json& j) {
  const Json& rec = field(j, "record");
  std::string task = field_str(rec, "task");
  if (task.empty()) task = field_str(j, "tag");
  std::string stream = field_str(rec, "stream");
  std::string log;
  if (rec.is_object() && rec.contains("log") && rec["log"].is_string()) {
    log = rec["log"].get<std::string>();
    while (!log.empty() && (log.back() == '\n' || log.back() == '\r')) log.pop_back();
  } else {
    log = rec.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return fmt::format("{}  {}  {:<6}  {}", short_time(field_str(j, "time")), task.empty() ? "-" : task,
                     stream.empty() ? "-" : stream, log);
}

void print_record(const Json& j, bool json) {
  if (json) {
    print_line(j.dump(-1, ' ', false, Json::error_handler_t::replace));
  } else {
    print_line(format_log_line(j));
  }
}

// Non-follow: the JSON lines as they arrive.
int query_logs(const ApiClient& api, const LogArgs& a) {
  bool json = api.options().json;
  std::string partial, error_body;
  auto line = [&](std::string_view l) {
    if (l.empty()) return;
    auto j = parse_json(l);
    if (j && j->is_object()) print_record(*j, json);
  };
  int status = 0;
  auto r = api.stream_request("GET", logs_path(a), "", "application/x-ndjson", {}, [&](std::string_view data) {
    if (status == 0) error_body.append(data.substr(0, kErrorBodyLimit - std::min(kErrorBodyLimit, error_body.size())));
    partial.append(data);
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      line(std::string_view(partial).substr(0, nl));
      partial.erase(0, nl + 1);
    }
    return true;
  }, kQueryIdleTimeout);
  if (!r) return report(r.error());
  if (*r < 200 || *r >= 300) return report(api.http_error(*r, error_body));
  line(partial);
  return 0;
}

struct FollowAttempt {
  Result<int> status = 0;
  std::string body;                // start of the body, for error answers
  std::optional<Error> stream_error;  // an "error" event from the server
};

FollowAttempt follow_once(const ApiClient& api, const LogArgs& a, std::optional<uint64_t>& last_seq) {
  FollowAttempt at;
  bool json = api.options().json;
  net::SseParser parser([&](const net::SseEvent& ev) {
    auto j = parse_json(ev.data);
    if (!j || !j->is_object()) return;
    if (ev.event == "error") {
      std::string m = field_str(*j, "message");
      at.stream_error = Error{"log stream failed: " + (m.empty() ? ev.data : m), {}, 0};
      return;
    }
    if (!ev.id.empty()) last_seq = static_cast<uint64_t>(std::strtoull(ev.id.c_str(), nullptr, 10));
    print_record(*j, json);
  });
  net::Headers headers;
  if (last_seq) headers.emplace_back("Last-Event-ID", std::to_string(*last_seq));
  at.status = api.stream(logs_path(a), headers, [&](std::string_view data) {
    if (at.body.size() < kErrorBodyLimit) at.body.append(data.substr(0, kErrorBodyLimit - at.body.size()));
    parser.feed(data);
    return !at.stream_error;
  }, kFollowIdleTimeout);
  return at;
}

void note(const std::string& line) { std::cerr << "stele: " << line << std::endl; }

// Follows until Ctrl-C. The first connection must succeed; later drops and
// outages are retried (resuming after the last record) for up to kMaxOutage.
int follow_logs(const ApiClient& api, const LogArgs& a) {
  std::optional<uint64_t> last_seq;
  bool connected_once = false;
  std::optional<SteadyClock::time_point> outage_start;
  auto delay = 1s;
  for (;;) {
    auto started = SteadyClock::now();
    FollowAttempt at = follow_once(api, a, last_seq);
    if (at.stream_error) return report(*at.stream_error);
    bool ok = at.status && *at.status >= 200 && *at.status < 300;
    bool dropped = !at.status && at.status.error().message.rfind("stream from ", 0) == 0;
    if (ok || dropped) {
      if (outage_start) note("log stream reconnected");
      connected_once = true;
      outage_start.reset();
      delay = 1s;
      if (SteadyClock::now() - started < 1s) std::this_thread::sleep_for(1s);
      continue;
    }
    Error e = at.status ? api.http_error(*at.status, at.body) : at.status.error();
    bool retryable = !at.status || *at.status >= 500;
    if (!connected_once || !retryable) return report(e);
    if (!outage_start) {
      outage_start = SteadyClock::now();
      note("log stream interrupted (" + e.message + "); reconnecting");
    }
    if (SteadyClock::now() - *outage_start > kMaxOutage) return report(e);
    std::this_thread::sleep_for(delay);
    delay = std::min<std::chrono::seconds>(delay * 2, 10s);
  }
}

}  // namespace

void add_log_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto a = std::make_shared<LogArgs>();
  auto& c = add_verb(root, flags, "logs",
                     {"Show or follow an app's logs (task output, pipeline steps, external senders by tag)",
                      "One line per record: TIME (UTC) TASK STREAM LOG, oldest first; --json prints each\n"
                      "record as one JSON document per line ({\"seq\",\"time\",\"tag\",\"record\"}).\n"
                      "Without --since the newest --limit records are shown; with --since the oldest from then.\n"
                      "Times (--since, --until): RFC 3339 (2026-01-02T03:04:05Z), unix seconds, or a duration\n"
                      "before now (30s, 10m, 2h, 7d). -f keeps following new records until Ctrl-C; a dropped\n"
                      "connection resumes after the last record shown. APP may be left out when --tag is given.",
                      "  stele logs /shop/web\n  stele logs shop/web -f --since 10m --stream stderr\n"
                      "  stele logs shop/web --grep timeout -n 50\n"
                      "  stele logs --tag docker.nginx --json | jq -r .record.log"});
  c.add_option("APP", a->app, "App id, with or without the leading '/' (e.g. /shop/web)");
  c.add_flag("-f,--follow", a->follow, "Keep printing new records as they arrive (until Ctrl-C)");
  c.add_option("--since", a->since, "Records from this time on (e.g. 10m, 2h, 2026-01-02T03:04:05Z)");
  c.add_option("--until", a->until, "Records before this time (same forms as --since)");
  c.add_option("--grep", a->grep, "Only records whose log line contains TEXT");
  c.add_option("--regex", a->regex, "Only records whose log line matches this ECMAScript regex");
  c.add_option("--task", a->task, "Only records of this task id");
  c.add_option("--stream", a->stream, "Only this output stream (stdout or stderr)");
  c.add_option("--tag", a->tag, "Only records with this Fluentd tag (e.g. an external sender's)");
  c.add_option("-n,--limit", a->limit, "At most N records (default 1000, max 100000)")->check(CLI::Range(1, 100000));
  c.set_runner([a](const ApiClient& api) {
    if (a->app.empty() && a->tag.empty()) return report(Error{"logs: give an APP or --tag", {}, 0});
    return a->follow ? follow_logs(api, *a) : query_logs(api, *a);
  });
}

}  // namespace stele::cli
