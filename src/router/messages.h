// Heads the proxy writes: a request head rewritten for the upstream, a
// response head rewritten for the client, and the answers the proxy gives
// itself (error pages, redirects). Pure functions appending to a string the
// caller reuses, so a warmed-up connection formats without allocating.
#pragma once
#include <string>
#include <string_view>

#include "router/http1.h"

namespace stele::router {

struct ForwardedFor {
  std::string_view client;  // peer address
  std::string_view host;    // Host as received (X-Forwarded-Host)
  bool tls = false;         // X-Forwarded-Proto https
};

// Request line with `target` (origin form) and the client's version; every
// header but hop-by-hop ones, X-Forwarded-* and Expect: 100-continue (the
// proxy answers that itself before streaming the body); then X-Forwarded-For (the
// received values with the client appended), -Proto, -Host; Connection:
// upgrade + Upgrade for upgrade requests, Connection: keep-alive for HTTP/1.0
// (so 1.0 requests may still use pooled connections).
void write_upstream_head(const http1::RequestHead& h, const http1::MessageInfo& info, std::string_view target,
                         const ForwardedFor& fwd, std::string& out);

// "HTTP/1.1 <status> <reason>", the upstream's headers but hop-by-hop ones,
// then Connection: upgrade + Upgrade (101), close (when the client
// connection ends after this response) or keep-alive (HTTP/1.0 client that
// keeps it).
void write_client_head(const http1::ResponseHead& h, const http1::MessageInfo& info, bool keep_alive,
                       int client_minor, std::string& out);

// The standard reason phrase ("Bad Gateway"), "Unknown" otherwise.
const char* reason_phrase(int status);

// A complete HTML response naming the app (when known) and the cause, both
// HTML-escaped.
void write_error_response(int status, std::string_view app, std::string_view cause, bool keep_alive,
                          std::string& out);
// A redirect (301, 308...) to `location`, without a body.
void write_redirect(int status, std::string_view location, bool keep_alive, std::string& out);

}  // namespace stele::router
