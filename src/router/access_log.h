// Access log records of the router: one per request it answered (proxied,
// refused or failed), handed to a callback the owner installs (the wiring
// sends them to the log store as LTSV lines under the app's tag, which the
// Metrics issue's log-derived request metrics read with the default
// AccessLogSpec: status "status", latency "reqtime" in seconds).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace stele::router {

// Views are valid only during the callback that receives the record.
struct AccessRecord {
  int64_t time_ms = 0;          // wall clock when the request head was complete
  std::string_view client;      // peer address, "127.0.0.1"
  std::string_view host;        // Host header as sent
  std::string_view method;
  std::string_view path;        // request target as sent (with the query)
  int status = 0;               // status sent to the client (0: none, the connection failed)
  uint64_t bytes_sent = 0;      // response body bytes sent to the client (nginx $body_bytes_sent)
  double request_time_s = 0;    // head complete -> last response byte written
  std::string_view upstream;    // "addr:port", empty when no upstream was used
  std::string_view app;         // app id, empty without a route
  std::string_view task;        // task id of the instance, empty without one
  std::string_view scheme;      // "http" or "https": how the client reached the router
};

// One LTSV line without a trailing newline, keys in this order:
// time, host, method, path, status, size, reqtime, upstream, app, task,
// scheme.
// time is ISO-8601 UTC with milliseconds; reqtime seconds with 3 decimals;
// empty values are "-"; tabs and control characters in values become ' '.
std::string format_ltsv(const AccessRecord& r);
// Appends the same line to `out` (no allocation once out has capacity,
// except the time text, cached per second).
void append_ltsv(const AccessRecord& r, std::string& out);

}  // namespace stele::router
