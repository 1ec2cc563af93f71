// Artifact routes: PUT/GET /api/v1/artifacts/{sha256} over a
// artifact::ArtifactStore. Registered by ApiServer; the store must outlive
// the router.
#pragma once
#include "api/api_impl.h"
#include "artifact/artifact_store.h"

namespace stele::api {

// PUT  (mutating: token-checked) body = the artifact; 201 stored, 200 already
//      present, 400 malformed digest, 422 "digest mismatch: expected X, got Y".
// GET  200 application/octet-stream with ETag "<digest>", 404 unknown; HEAD
//      answers the same headers (Content-Length included) without the body.
// Bodies are whole in memory both ways (the HTTP layer buffers up to its
// body limit); artifacts larger than that limit are refused by the server.
void add_artifact_routes(net::Router& r, ApiServer::Impl& s, artifact::ArtifactStore& store);

}  // namespace stele::api
