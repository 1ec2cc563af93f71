// Following the native event stream: `stele events` and the `--wait` of the
// changing verbs.
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/event_format.h"
#include "cli/fields.h"
#include "common/names.h"
#include "net/sse.h"

namespace stele::cli {

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// No byte for this long (the server's keepalives included) means a dead
// connection: reopen it. Quiet, since the stream resumes after the last id.
constexpr auto kIdleTimeout = 120s;
// How long the API may stay unreachable before following gives up.
constexpr auto kMaxOutage = 5min;
constexpr auto kMaxRetryDelay = 10s;
// The start of a non-2xx answer is kept to report the server's error.
constexpr size_t kErrorBodyLimit = 64 * 1024;

std::string stream_path(const EventQuery& q) {
  std::string query;
  auto add = [&](const std::string& kv) { query += (query.empty() ? "?" : "&") + kv; };
  if (!q.app.empty()) add("app=" + net::percent_encode(q.app));
  if (!q.type.empty()) add("type=" + net::percent_encode(q.type));
  if (q.since) add("since=" + std::to_string(*q.since));
  return "/api/v1/events/stream" + query;
}

// One connection to the stream.
struct Attempt {
  Result<int> status = 0;  // HTTP status, or the transport error
  bool stopped = false;    // on_event asked to stop
  std::string body;        // start of the body, for error answers
};

// Streams until the server ends it, the connection fails, or on_event says
// stop. Advances q.since past each event delivered.
Attempt stream_once(const ApiClient& api, EventQuery& q, const std::function<bool(const Json&)>& on_event) {
  Attempt a;
  net::SseParser parser([&](const net::SseEvent& ev) {
    auto j = parse_json(ev.data);
    if (a.stopped || !j || !j->is_object()) return;  // keepalives and foreign data are skipped
    int64_t id = field_int(*j, "id", ev.id.empty() ? 0 : std::atoll(ev.id.c_str()));
    if (id > 0) q.since = id;
    if (!on_event(*j)) a.stopped = true;
  });
  net::Headers headers;
  if (q.since) headers.emplace_back("Last-Event-ID", std::to_string(*q.since));
  a.status = api.stream(stream_path(q), headers, [&](std::string_view data) {
    if (a.body.size() < kErrorBodyLimit) a.body.append(data.substr(0, kErrorBodyLimit - a.body.size()));
    parser.feed(data);
    return !a.stopped;
  }, kIdleTimeout);
  return a;
}

// The connection failed after the answer's headers had arrived (idle
// timeout, reset): net::http_stream says "stream from <url> ended: ...".
bool dropped_mid_stream(const Attempt& a) {
  return !a.status && a.status.error().message.rfind("stream from ", 0) == 0;
}

void note(const std::string& line) { std::cerr << "stele: " << line << std::endl; }

// Tracks an outage of the API while following: when it began, the next delay.
class Reconnect {
 public:
  // Waits before the next attempt; false once the outage has lasted too long.
  bool wait_after_failure(const Error& e) {
    if (!in_outage_) {
      in_outage_ = true;
      outage_start_ = SteadyClock::now();
      note("event stream interrupted (" + e.message + "); reconnecting");
    }
    if (SteadyClock::now() - outage_start_ > kMaxOutage) return false;
    std::this_thread::sleep_for(delay_);
    delay_ = std::min<std::chrono::milliseconds>(delay_ * 2, kMaxRetryDelay);
    return true;
  }
  void connected() {
    if (in_outage_) note("event stream reconnected");
    in_outage_ = false;
    delay_ = 1s;
  }

 private:
  bool in_outage_ = false;
  SteadyClock::time_point outage_start_{};
  std::chrono::milliseconds delay_ = 1s;
};

}  // namespace

Result<void> follow_events(const ApiClient& api, EventQuery q, const std::function<bool(const Json&)>& on_event) {
  bool connected_once = false;
  Reconnect reconnect;
  for (;;) {
    auto started = SteadyClock::now();
    Attempt a = stream_once(api, q, on_event);
    if (a.stopped) return {};
    bool ok = a.status && *a.status >= 200 && *a.status < 300;
    Error e = ok ? Error{} : a.status ? api.http_error(*a.status, a.body) : a.status.error();
    if (ok || dropped_mid_stream(a)) {  // the stream was open: reopen it after the last event
      connected_once = true;
      reconnect.connected();
      if (SteadyClock::now() - started < 1s) std::this_thread::sleep_for(1s);
      continue;
    }
    bool retryable = !a.status || *a.status >= 500;
    if (!connected_once || !retryable || !reconnect.wait_after_failure(e)) return fail(e);
  }
}

Result<int64_t> head_event_id(const ApiClient& api) {
  auto r = api.get("/api/v1/events?limit=1");
  if (!r) return fail(r.error());
  int64_t head = 0;
  for (const auto& e : array_or_empty(field(*r, "events"))) head = std::max(head, field_int(e, "id"));
  return head;
}

int wait_for_deployment(const ApiClient& api, const std::string& app_id, const std::string& deployment_id,
                        int64_t since) {
  DeploymentWatch watch(app_id, deployment_id);
  bool json = api.options().json;
  auto r = follow_events(api, EventQuery{app_id, "", since}, [&](const Json& e) {
    auto step = watch.on_event(e);
    if (json && step.relevant) print_json(e);
    if (!json && !step.line.empty()) print_line(step.line);
    return !watch.done();
  });
  if (!r) return report(r.error());
  if (watch.outcome() != DeploymentWatch::Outcome::Succeeded) return report(Error{watch.summary(), {}, 0});
  if (!json) print_line(watch.summary());
  return 0;
}

void add_event_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  struct Args {
    std::string app, type;
    int64_t since = -1;
  };
  auto a = std::make_shared<Args>();
  auto& c = add_verb(root, flags, "events",
                     {"Follow the event stream (tasks, health, deployments, releases, nodes)",
                      "One line per event: time, type, app, description; --json prints each event as one\n"
                      "JSON document per line. Runs until Ctrl-C; a dropped connection is resumed after the\n"
                      "last event seen.",
                      "  stele events --app /shop/web\n  stele events --type deployment_failed\n"
                      "  stele events --since 0 --json   # the history the server keeps, as JSON lines"});
  c.add_option("--app", a->app, "Only events of this app (e.g. /shop/web)");
  c.add_option("--type", a->type, "Only events of this type (e.g. task_status, deployment_step, node_lost)");
  c.add_option("--since", a->since, "Start after this event id (0 = from the oldest kept); default: from now")
      ->check(CLI::NonNegativeNumber);
  c.set_runner([a](const ApiClient& api) {
    EventQuery q{a->app.empty() ? "" : canonical_app_id(a->app), a->type, std::nullopt};
    if (a->since >= 0) q.since = a->since;
    bool json = api.options().json;
    auto r = follow_events(api, q, [json](const Json& e) {
      json ? print_json(e) : print_line(format_event_line(e));
      return true;
    });
    return r ? 0 : report(r.error());
  });
}

}  // namespace stele::cli
