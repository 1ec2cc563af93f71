// GET /api/v1/logs: query (JSON lines) and follow (SSE) over the log store.
// Store calls touch disk, so each runs on the worker pool via net::offload;
// only the atomic counters (change_count) are read on the io thread.
#include "api/routes_logs.h"

#include <time.h>

#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include "logs/log_query.h"
#include "net/offload.h"
#include "net/signal.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr size_t kFollowPage = 1000;
constexpr auto kFollowPoll = 200ms;
constexpr auto kKeepAlive = 15s;

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// ".5" -> 500000000 (digits past the ninth are dropped); nullopt without digits.
std::optional<int64_t> fraction_ns(std::string_view digits) {
  if (!all_digits(digits)) return std::nullopt;
  int64_t ns = 0;
  for (size_t i = 0; i < 9; ++i) ns = ns * 10 + (i < digits.size() ? digits[i] - '0' : 0);
  return ns;
}

// YYYY-MM-DD(T|t| )HH:MM:SS[.frac](Z|z|+HH:MM|-HH:MM)
std::optional<int64_t> parse_rfc3339(std::string_view t) {
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[13] != ':' || t[16] != ':') return std::nullopt;
  if (t[10] != 'T' && t[10] != 't' && t[10] != ' ') return std::nullopt;
  auto part = [&](size_t pos, size_t n) { return all_digits(t.substr(pos, n)) ? to_int(t.substr(pos, n)) : std::nullopt; };
  auto Y = part(0, 4), M = part(5, 2), D = part(8, 2), h = part(11, 2), m = part(14, 2), s = part(17, 2);
  if (!Y || !M || !D || !h || !m || !s) return std::nullopt;
  if (*M < 1 || *M > 12 || *D < 1 || *D > 31 || *h > 23 || *m > 59 || *s > 60) return std::nullopt;
  size_t i = 19;
  int64_t frac = 0;
  if (t[i] == '.') {
    size_t end = t.find_first_not_of("0123456789", i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    auto f = fraction_ns(t.substr(i + 1, end - i - 1));
    if (!f) return std::nullopt;
    frac = *f;
    i = end;
  }
  int64_t offset_s = 0;
  std::string_view zone = t.substr(i);
  if (zone != "Z" && zone != "z") {
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return std::nullopt;
    auto oh = all_digits(zone.substr(1, 2)) ? to_int(zone.substr(1, 2)) : std::nullopt;
    auto om = all_digits(zone.substr(4, 2)) ? to_int(zone.substr(4, 2)) : std::nullopt;
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset_s = (zone[0] == '-' ? -1 : 1) * (*oh * 3600 + *om * 60);
  }
  struct tm tm {};
  tm.tm_year = static_cast<int>(*Y - 1900);
  tm.tm_mon = static_cast<int>(*M - 1);
  tm.tm_mday = static_cast<int>(*D);
  tm.tm_hour = static_cast<int>(*h);
  tm.tm_min = static_cast<int>(*m);
  tm.tm_sec = static_cast<int>(*s);
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_s;
  return secs * kNsPerSec + frac;
}

// "1767323045" or "1767323045.25".
std::optional<int64_t> parse_unix_seconds(std::string_view t) {
  size_t dot = t.find('.');
  std::string_view whole = t.substr(0, dot);
  if (!all_digits(whole) || whole.size() > 11) return std::nullopt;
  int64_t frac = 0;
  if (dot != std::string_view::npos) {
    auto f = fraction_ns(t.substr(dot + 1));
    if (!f) return std::nullopt;
    frac = *f;
  }
  return *to_int(whole) * kNsPerSec + frac;
}

// "10m", "1h30m", "500ms", "7d", "2w" -> ns.
std::optional<int64_t> parse_duration_ns(std::string_view t) {
  if (t.empty()) return std::nullopt;
  int64_t total = 0;
  while (!t.empty()) {
    size_t n = t.find_first_not_of("0123456789");
    if (n == 0 || n == std::string_view::npos || n > 9) return std::nullopt;
    int64_t v = *to_int(t.substr(0, n));
    t.remove_prefix(n);
    size_t u = std::min(t.find_first_of("0123456789"), t.size());
    std::string_view unit = t.substr(0, u);
    t.remove_prefix(u);
    int64_t scale = unit == "ms" ? 1'000'000 : unit == "s" ? kNsPerSec : unit == "m" ? 60 * kNsPerSec
                  : unit == "h" ? 3600 * kNsPerSec : unit == "d" ? 86400 * kNsPerSec
                  : unit == "w" ? 7 * 86400 * kNsPerSec : 0;
    if (scale == 0) return std::nullopt;
    total += v * scale;
  }
  return total;
}

Error bad_param(const std::string& name, const std::string& why) {
  return Error{"bad query parameter '" + name + "': " + why, {FieldError{name, {why}}}, 400};
}

Result<std::optional<uint64_t>> unsigned_param(const HttpRequest& req, const std::string& name) {
  auto it = req.query.find(name);
  if (it == req.query.end()) return std::optional<uint64_t>{};
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return fail(bad_param(name, "expected a non-negative integer, got '" + s + "'"));
  return std::optional<uint64_t>(v);
}

Result<std::optional<int64_t>> time_param(const HttpRequest& req, const std::string& name, int64_t now_ns) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return std::optional<int64_t>{};
  auto t = parse_log_time(it->second, now_ns);
  if (!t) return fail(bad_param(name, t.error().message));
  return std::optional<int64_t>(*t);
}

int64_t wall_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string dump_line(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The SSE events of `rs`, as one chunk.
std::string sse_chunk(const std::vector<logs::LogResult>& rs) {
  std::string out;
  for (const auto& r : rs) out += net::format_sse(net::SseEvent{std::to_string(r.seq), "", dump_line(render_log(r))});
  return out;
}

std::string sse_error(const Error& e) {
  return net::format_sse(net::SseEvent{"", "error", dump_line(error_json(e))});
}

struct Backlog {
  std::vector<logs::LogResult> results;
  uint64_t cursor = 0;  // follow continues with seq > cursor
};

// The matching records a new follower sees first, and where following them
// continues. Every record with seq below the newest one returned is already
// visible (appends are serialised and numbered in order); with none returned
// the store's head read before the query is the best cursor there is.
Result<Backlog> backlog_of(const logs::LogStore& store, const logs::LogQuery& q) {
  uint64_t head = store.last_seq();
  auto rs = store.query(q);
  if (!rs) return fail(rs.error());
  Backlog b{std::move(*rs), head};
  if (!b.results.empty()) {
    b.cursor = 0;
    for (const auto& r : b.results) b.cursor = std::max(b.cursor, r.seq);
  }
  return b;
}

net::awaitable<void> follow_logs(ApiServer::Impl& s, logs::LogStore* store, logs::LogQuery q,
                                 std::optional<uint64_t> resume, net::StreamWriter& w) {
  if (!co_await w.write(": stele log stream\n\n")) co_return;
  uint64_t cursor = resume.value_or(0);
  if (!resume) {
    auto first = [store, q]() { return backlog_of(*store, q); };
    Result<Backlog> b = co_await net::offload(first);
    if (!b) {
      co_await w.write(sse_error(b.error()));
      co_return;
    }
    cursor = b->cursor;
    if (!b->results.empty() && !co_await w.write(sse_chunk(b->results))) co_return;
  }
  std::optional<uint64_t> seen;  // change_count at the last poll; none = poll now
  auto last_write = std::chrono::steady_clock::now();
  while (!s.stopped) {
    uint64_t changes = store->change_count();  // an atomic: fine on the io thread
    for (bool more = seen != changes; more;) {
      logs::LogQuery page = q;
      page.after = cursor;
      page.limit = kFollowPage;
      auto next = [store, page]() { return store->query(page); };
      Result<std::vector<logs::LogResult>> rs = co_await net::offload(next);
      if (!rs) {
        co_await w.write(sse_error(rs.error()));
        co_return;
      }
      more = rs->size() == kFollowPage;
      if (rs->empty()) continue;
      cursor = rs->back().seq;
      if (!co_await w.write(sse_chunk(*rs))) co_return;
      last_write = std::chrono::steady_clock::now();
    }
    seen = changes;
    if (std::chrono::steady_clock::now() - last_write > kKeepAlive) {
      if (!co_await w.write(":\n\n")) co_return;  // detects gone clients
      last_write = std::chrono::steady_clock::now();
    }
    co_await net::sleep_for(kFollowPoll);
  }
}

HttpResponse follow_response(ApiServer::Impl& s, logs::LogQuery q, std::optional<uint64_t> resume) {
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  logs::LogStore* store = s.opts.logs;
  r.stream = [&s, store, q, resume](net::StreamWriter& w) { return follow_logs(s, store, q, resume, w); };
  return r;
}

net::awaitable<HttpResponse> get_logs(ApiServer::Impl& s, HttpRequest& req) {
  if (auto denied = s.check_auth(req, false)) co_return *denied;
  if (!s.opts.logs)
    co_return HttpResponse::error(Error{"the log store is not enabled on this server (no /api/v1/logs)", {}, 503});
  auto parsed = parse_log_request(req, wall_now_ns());
  if (!parsed) co_return HttpResponse::error(parsed.error());
  if (parsed->follow) {
    std::optional<uint64_t> resume = parsed->query.after;
    std::string last_id = req.header("last-event-id");
    if (!resume && !last_id.empty()) {
      auto id = to_int(last_id);
      if (!id || *id < 0) co_return HttpResponse::error(bad_param("Last-Event-ID", "expected a sequence number, got '" + last_id + "'"));
      resume = static_cast<uint64_t>(*id);
    }
    parsed->query.after.reset();
    co_return follow_response(s, std::move(parsed->query), resume);
  }
  logs::LogStore* store = s.opts.logs;
  logs::LogQuery q = std::move(parsed->query);
  auto run = [store, q]() -> Result<std::string> {
    auto rs = store->query(q);
    if (!rs) return fail(rs.error());
    std::string body;
    for (const auto& r : *rs) body += dump_line(render_log(r)) + "\n";
    return body;
  };
  Result<std::string> body = co_await net::offload(run);
  if (!body) co_return HttpResponse::error(body.error(), 500);
  co_return HttpResponse::text(200, std::move(*body), "application/x-ndjson");
}

}  // namespace

Result<int64_t> parse_log_time(std::string_view text, int64_t now_ns) {
  if (auto t = parse_unix_seconds(text)) return *t;
  if (auto d = parse_duration_ns(text)) return now_ns - *d;
  if (auto t = parse_rfc3339(text)) return *t;
  return fail("expected an RFC 3339 time (2026-01-02T03:04:05Z), unix seconds, or a duration before now "
              "(30s, 10m, 2h, 7d), got '" + std::string(text) + "'", 400);
}

std::string iso8601_ns(int64_t ns) {
  int64_t secs = ns / kNsPerSec, frac = ns % kNsPerSec;
  if (frac < 0) secs -= 1, frac += kNsPerSec;
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

Result<LogRequest> parse_log_request(const HttpRequest& req, int64_t now_ns) {
  LogRequest out;
  logs::LogQuery& q = out.query;
  std::string app = req.query_param("app");
  if (!app.empty()) q.app = app_name(canonical_app_id(app));
  q.tag = req.query_param("tag");
  q.task = req.query_param("task");
  q.stream = req.query_param("stream");
  q.grep = req.query_param("grep");
  q.regex = req.query_param("regex");
  auto since = time_param(req, "since", now_ns);
  if (!since) return fail(since.error());
  auto until = time_param(req, "until", now_ns);
  if (!until) return fail(until.error());
  q.since_ns = *since;
  q.until_ns = *until;
  auto limit = unsigned_param(req, "limit");
  if (!limit) return fail(limit.error());
  q.limit = limit->value_or(kDefaultLogLimit);
  if (q.limit < 1 || q.limit > kMaxLogLimit)
    return fail(bad_param("limit", "must be between 1 and " + std::to_string(kMaxLogLimit)));
  auto after = unsigned_param(req, "after");
  if (!after) return fail(after.error());
  q.after = *after;
  if (auto f = logs::RecordFilter::compile(q); !f) return fail(bad_param("regex", f.error().message));
  out.follow = req.query_flag("follow");
  return out;
}

Json render_log(const logs::LogResult& r) {
  return Json{{"seq", r.seq}, {"time", iso8601_ns(r.time_ns)}, {"tag", r.tag}, {"record", r.record}};
}

void add_log_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/logs", [&s](HttpRequest& req) { return get_logs(s, req); });
}

}  // namespace stele::api
