// Native API: /api/v1/artifacts/{sha256} (slugs uploaded by builds, fetched by agents).
#include "api/routes_artifacts.h"

#include <fstream>
#include <sstream>

#include "net/router.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

HttpResponse put_artifact(artifact::ArtifactStore& store, const HttpRequest& req) {
  std::string digest = req.param("sha256");
  if (auto ok = artifact::ArtifactStore::validate_digest(digest); !ok) return HttpResponse::error(ok.error());
  bool existed = store.has(digest);
  auto w = store.begin(digest);
  if (!w) return HttpResponse::error(w.error(), 500);
  if (auto r = w->write(req.body); !r) return HttpResponse::error(r.error(), 500);
  auto path = w->commit();
  if (!path) return HttpResponse::error(path.error(), 500);
  Json out = {{"digest", digest}, {"size", req.body.size()}, {"created", !existed}};
  return HttpResponse::json(existed ? 200 : 201, out);
}

HttpResponse get_artifact(artifact::ArtifactStore& store, const HttpRequest& req) {
  std::string digest = req.param("sha256");
  if (auto ok = artifact::ArtifactStore::validate_digest(digest); !ok) return HttpResponse::error(ok.error());
  std::ifstream in(store.path(digest), std::ios::binary);
  if (!in) return HttpResponse::json(404, {{"message", "artifact " + digest + " not found"}});
  std::ostringstream body;
  body << in.rdbuf();
  HttpResponse r = HttpResponse::text(200, std::move(body).str(), "application/octet-stream");
  r.headers.emplace_back("ETag", "\"" + digest + "\"");
  return r;
}

}  // namespace

void add_artifact_routes(net::Router& r, ApiServer::Impl& s, artifact::ArtifactStore& store) {
  r.add("PUT", "/api/v1/artifacts/{sha256}",
        agent_handler(s, [&store](const HttpRequest& req) { return put_artifact(store, req); }, true, true));
  r.add("GET", "/api/v1/artifacts/{sha256}",
        agent_handler(s, [&store](const HttpRequest& req) { return get_artifact(store, req); }, true, true));
}

}  // namespace stele::api
