// Fuzz target for what the API derives from a request target: percent
// decoding, query parsing and route matching (method + path patterns with
// {param} and {*rest}) — all read straight off the network.
// fuzz-sources: src/net/http.cpp src/net/router.cpp src/common/json.cpp
#include <cstdint>
#include <cstdlib>
#include <string>

#include "net/router.h"

using namespace stele::net;

static Router make_router() {
  Router r;
  auto h = [](HttpRequest&) -> awaitable<HttpResponse> { co_return HttpResponse{}; };
  for (const char* p : {"/ping", "/v2/apps", "/v2/apps/{*rest}", "/api/v1/apps/{*rest}", "/api/v1/deployments/{id}",
                        "/api/v1/agent/commands", "/v2/deployments/{id}"})
    r.add("GET", p, h);
  return r;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Router router = make_router();
  std::string target(reinterpret_cast<const char*>(data), size);
  auto q = target.find('?');
  HttpRequest req;
  req.method = "GET";
  req.path = percent_decode(std::string_view(target).substr(0, q), false);
  if (q != std::string::npos) req.query = parse_query(std::string_view(target).substr(q + 1));
  bool path_matched = false;
  const Handler* h = router.match(req, path_matched);
  if (h && !path_matched) abort();
  // Encoding then decoding is the identity.
  if (percent_decode(percent_encode(req.path), false) != req.path) abort();
  return 0;
}
