// Log query routes (issue 4 point 5, docs/api.md "Logs"): GET /api/v1/logs
// as JSON lines, or with follow=1 as server-sent events, over the
// logs::LogStore given in ApiOptions.logs. The parsing and rendering pieces
// are exposed for tests; all of them are pure and thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "api/api_impl.h"
#include "logs/log_store.h"

namespace stele::api {

inline constexpr size_t kDefaultLogLimit = 1000;
inline constexpr size_t kMaxLogLimit = 100000;

// A since/until bound in ns since the epoch: an RFC 3339 timestamp
// ("2026-01-02T03:04:05.5Z", "...+02:00"), unix seconds ("1767323045",
// "1767323045.25"), or a duration before `now_ns` ("30s", "10m", "2h", "7d",
// "1w", "1h30m"). Errors say what was expected.
Result<int64_t> parse_log_time(std::string_view text, int64_t now_ns);

// "2026-01-02T03:04:05.123456789Z" (always nine fraction digits, UTC).
std::string iso8601_ns(int64_t ns);

struct LogRequest {
  logs::LogQuery query;
  bool follow = false;
};
// The query parameters of GET /api/v1/logs (app, tag, task, stream, since,
// until, grep, regex, limit, after, follow). A bad value is a 400 Error
// whose message and details name the parameter. `app` takes an app id
// ("/shop/web" or "shop/web") and becomes the store's app name.
Result<LogRequest> parse_log_request(const net::HttpRequest& req, int64_t now_ns);

// One answer line: {"seq", "time", "tag", "record": {...}}.
Json render_log(const logs::LogResult& r);

}  // namespace stele::api
