// The dashboard's routes: GET /ui/ and /ui/* serve the files ui/embed.py
// compiled into the binary; GET / redirects to /ui/. Reads only: no token.
#pragma once
#include "net/router.h"

namespace stele::api {

// Hashed asset names are cacheable forever; index.html is "no-cache" with an
// ETag (304 on If-None-Match). Any other path under /ui/ is the single-page
// app's own route and answers index.html; a missing hashed asset is a 404.
// Bodies go gzip-compressed when Accept-Encoding allows gzip.
void add_ui_routes(net::Router& r);

}  // namespace stele::api
