// The agent protocol: register, heartbeat, status updates, command stream.
#include <spdlog/spdlog.h>

#include "api/api_impl.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

Result<deploy::Node> node_from_registration(const Json& j, const HttpRequest& req) {
  Error err{"invalid agent registration", {}, 422};
  auto need_string = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_string() || j[k].get<std::string>().empty())
      err.details.push_back({std::string("/") + k, {"expected a non-empty string"}});
  };
  need_string("id");
  need_string("hostname");
  if (!j.contains("resources") || !j["resources"].is_object()) err.details.push_back({"/resources", {"expected an object"}});
  if (!err.details.empty()) return fail(err);
  deploy::Node n = deploy::node_from(j);
  if (n.address.empty()) n.address = req.peer;
  return n;
}

// Monitoring on the command stream: the agent's check definitions when they
// changed since `checks_sent`, and queued run-now requests.
std::string monitor_frames(monitor::MonitorService& m, const std::string& agent, uint64_t& checks_sent) {
  std::string frames;
  if (m.checks_version() != checks_sent) {
    checks_sent = m.checks_version();
    frames += net::format_sse(net::SseEvent{"", "checks", m.agent_checks(agent).dump()});
  }
  for (const auto& run : m.take_run_requests(agent)) frames += net::format_sse(net::SseEvent{"", "check-run", run.dump()});
  return frames;
}

// {"collected": [image ids]}: the Docker images of releases retention
// collected that no release still in use shares (a rebuilt tree reuses its
// image), for the agents to remove from their engines.
const std::string& collected_images(ApiServer::Impl& s) {
  int64_t now = s.cluster.now_ms();
  if (!s.collected_images.empty() && now - s.collected_images_at_ms < 1000) return s.collected_images;
  std::set<std::string> collected, live;
  for (const deploy::App* app : s.cluster.apps())
    for (const deploy::Release* r : s.cluster.releases(app->id))
      if (!r->image.empty()) (r->artifact_collected ? collected : live).insert(r->image);
  Json ids = Json::array();
  for (const auto& id : collected)
    if (!live.count(id)) ids.push_back(id);
  s.collected_images = Json{{"collected", ids}}.dump();
  s.collected_images_at_ms = now;
  return s.collected_images;
}

}  // namespace

void add_agent_routes(net::Router& r, ApiServer::Impl& s) {
  r.add("POST", "/api/v1/agent/register", agent_handler(s, [&s](HttpRequest& req) {
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error(), 400);
    auto node = node_from_registration(*body, req);
    if (!node) return HttpResponse::error(node.error(), 422);
    auto answer = s.cluster.register_agent(*node, body->value("tasks", Json::array()));
    if (!answer) return HttpResponse::error(answer.error(), 503);
    (*answer)["forwardPeers"] = forward_peers(s);  // logs and metrics go to every server
    if (body->contains("router") && (*body)["router"].is_string())
      s.agent_routers[node->id] = {(*body)["router"].get<std::string>(), 0};
    else
      s.agent_routers.erase(node->id);
    return HttpResponse::json(200, *answer);
  }));
  r.add("POST", "/api/v1/agent/heartbeat", agent_handler(s, [&s](HttpRequest& req) {
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error(), 400);
    if (!s.cluster.heartbeat(body->value("id", "")))
      return HttpResponse::json(404, {{"message", "unknown or lost agent: register again"}});
    auto router = s.agent_routers.find(body->value("id", ""));
    if (router != s.agent_routers.end() && body->contains("routerVersion") && (*body)["routerVersion"].is_number_unsigned()) {
      uint64_t applied = (*body)["routerVersion"].get<uint64_t>();
      if (applied != router->second.applied) s.kick();  // a drain may wait for this acknowledgement
      router->second.applied = applied;
    }
    // The servers to ship to, as they come and go; a follower that stopped
    // reporting long ago is no longer relayed to either.
    auto peers = forward_peers(s);
    update_relay_peers(s, peers);
    return HttpResponse::json(200, {{"ok", true}, {"forwardPeers", std::move(peers)}});
  }, false));  // a plain heartbeat changes nothing the tick acts on
  r.add("POST", "/api/v1/agent/status", agent_handler(s, [&s](HttpRequest& req) {
    auto body = body_json(req);
    if (!body) return HttpResponse::error(body.error(), 400);
    std::string agent = body->value("id", "");
    const auto* node = s.cluster.node(agent);
    if (!node || node->state != "active" || !node->session) return HttpResponse::json(404, {{"message", "unknown or lost agent: register again"}});
    for (const auto& u : body->value("updates", Json::array()))
      if (auto res = s.cluster.task_status(agent, u); !res) return HttpResponse::error(res.error(), 503);
    return HttpResponse::json(200, {{"acknowledged", body->value("updates", Json::array()).size()}});
  }));
  r.add("GET", "/api/v1/agent/commands", agent_handler(s, [&s](HttpRequest& req) {
    std::string agent = req.query_param("id");
    const auto* node = s.cluster.node(agent);
    if (!node || node->state != "active" || !node->session) return HttpResponse::json(404, {{"message", "unknown or lost agent: register again"}});
    HttpResponse res;
    res.content_type = "text/event-stream";
    res.stream = [&s, agent](net::StreamWriter& w) -> net::awaitable<void> {
      int64_t sent = 0;  // every pending command is (re)sent on each connect
      uint64_t checks_sent = 0;  // the agent's check definitions: sent on connect and on change
      uint64_t routes_sent = 0;  // the route table, to an agent that runs a router
      std::string images_sent;   // collected images: sent on connect and on change
      if (!co_await w.write(": commands\n\n")) co_return;
      while (!s.stopped) {
        const auto* node = s.cluster.node(agent);
        if (!node || node->state != "active" || !node->session) co_return;
        // Commands queued while this loop writes must not wait for the next notify.
        const uint64_t seen = s.agent_signal(agent).generation();
        for (const auto& c : s.cluster.commands(agent, sent)) {
          sent = c.seq;
          net::SseEvent ev{std::to_string(c.seq), "command", c.body.dump()};
          std::string frame = net::format_sse(ev);  // outside co_await: g++ 12 mishandles braced temporaries there
          if (!co_await w.write(std::move(frame))) co_return;
        }
        if (auto* m = s.opts.monitor) {
          std::string frame = monitor_frames(*m, agent, checks_sent);
          if (!frame.empty() && !co_await w.write(std::move(frame))) co_return;
        }
        if (s.agent_routers.contains(agent) && s.routes_version != routes_sent) {
          // The table the server computes every 200 ms (feed_router), not a
          // recomputation per agent stream.
          Json table = s.routes_doc;
          table["version"] = routes_sent = s.routes_version;
          std::string frame = net::format_sse(net::SseEvent{"", "routes", table.dump()});
          if (!co_await w.write(std::move(frame))) co_return;
        }
        if (const std::string& images = collected_images(s); images != images_sent) {
          images_sent = images;
          std::string frame = net::format_sse(net::SseEvent{"", "images", images});
          if (!co_await w.write(std::move(frame))) co_return;
        }
        co_await s.agent_signal(agent).wait_since(seen, std::chrono::seconds(10));
        if (!co_await w.write(":\n\n")) co_return;
      }
    };
    return res;
  }));
}

}  // namespace stele::api
