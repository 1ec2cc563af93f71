// The one event stream: /api/v1/events[/stream] and Marathon's /v2/events.
#include "api/api_impl.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {
int64_t resume_point(const HttpRequest& req, int64_t last) {
  std::string since = req.query_param("since");
  if (since.empty()) since = req.header("last-event-id");
  if (since.empty()) return last;  // new subscribers start at "now"
  return atoll(since.c_str());
}
}  // namespace

HttpResponse event_stream(ApiServer::Impl& s, const HttpRequest& req,
                          std::function<std::optional<Json>(const Json&)> map, bool named_events) {
  HttpResponse r;
  r.content_type = "text/event-stream";
  std::string type = req.query_param("type"), app = req.query_param("app");
  if (!app.empty()) app = canonical_app_id(app);
  int64_t since = resume_point(req, s.store.last_event_id());
  r.stream = [&s, type, app, since, map, named_events](net::StreamWriter& w) mutable -> net::awaitable<void> {
    if (!co_await w.write(": stele event stream\n\n")) co_return;
    while (!s.stopped) {
      int64_t top = s.store.last_event_id();
      auto batch = s.events_after(since, type, app, 500);
      for (const Json& e : batch) {
        since = e.value("id", since);
        auto out = map(e);
        if (!out) continue;
        net::SseEvent ev{std::to_string(since), named_events ? out->value("eventType", e.value("type", "")) : e.value("type", ""), out->dump()};
        if (!co_await w.write(net::format_sse(ev))) co_return;
      }
      // Everything up to `top` was seen (matched or not) unless the batch was cut.
      if (batch.size() < 500) since = std::max(since, top);
      if (s.store.last_event_id() > since) continue;
      co_await s.events_signal.wait(std::chrono::seconds(15));
      if (!co_await w.write(":\n\n")) co_return;  // keep-alive; detects gone clients
    }
  };
  return r;
}

void add_event_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("GET", "/api/v1/events", sync_handler(s, [&s](HttpRequest& req) {
    std::string app = req.query_param("app");
    if (!app.empty()) app = canonical_app_id(app);
    size_t limit = std::clamp<long long>(atoll(req.query_param("limit", "200").c_str()), 1, 10000);
    int64_t since = atoll(req.query_param("since", "0").c_str());
    if (!req.query.count("since")) since = std::max<int64_t>(0, s.store.last_event_id() - static_cast<int64_t>(limit) * 20);
    auto evs = s.events_after(since, req.query_param("type"), app, 100000);
    if (evs.size() > limit) evs.erase(evs.begin(), evs.end() - static_cast<long>(limit));
    return HttpResponse::json(200, {{"events", evs}});
  }));
  r.add("GET", "/api/v1/events/stream", sync_handler(s, [&s](HttpRequest& req) {
    return event_stream(s, req, [](const Json& e) { return std::optional<Json>(e); }, false);
  }));
  r.add("GET", "/v2/events", sync_handler(s, [&s](HttpRequest& req) {
    std::string wanted = req.query_param("event_type");
    return event_stream(s, req, [wanted](const Json& e) -> std::optional<Json> {
      auto m = marathon_event(e);
      if (m && !wanted.empty() && m->value("eventType", "") != wanted) return std::nullopt;
      return m;
    }, true);
  }));
}

}  // namespace stele::api
