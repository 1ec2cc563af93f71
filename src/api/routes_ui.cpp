#include "api/routes_ui.h"

#include <cstdlib>
#include <functional>
#include <string>

#include "ui/assets.h"

namespace stele::api {

using net::HttpRequest;
using net::HttpResponse;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether an Accept-Encoding value admits gzip ("gzip" or "*", not with q=0).
bool accepts_gzip(std::string_view header) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view coding = trim(item.substr(0, semi));
    if (coding != "gzip" && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view param = trim(item.substr(semi + 1));
    if (param.substr(0, 2) != "q=") return true;
    return std::strtod(std::string(param.substr(2)).c_str(), nullptr) > 0;
  }
  return false;
}

std::string etag_of(const ui::Asset& a) {
  return "\"" + std::to_string(std::hash<std::string_view>{}(a.body)) + "\"";
}

HttpResponse serve(const ui::Asset& a, const HttpRequest& req) {
  HttpResponse r;
  r.content_type = std::string(a.content_type);
  r.headers.emplace_back("Vary", "Accept-Encoding");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (a.immutable) {
    r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
  } else {
    std::string etag = etag_of(a);
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("ETag", etag);
    if (req.header("if-none-match") == etag) {
      r.status = 304;
      return r;
    }
  }
  if (accepts_gzip(req.header("accept-encoding"))) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = std::string(a.gzip);
  } else {
    r.body = std::string(a.body);
  }
  return r;
}

// "app-<hash>.js" and the like: a file name at the top of /ui/, never an SPA route.
bool looks_like_asset(std::string_view rest) {
  if (rest.find('/') != std::string_view::npos) return false;
  for (std::string_view ext : {".js", ".css", ".map", ".gz", ".html", ".ico", ".png", ".svg"})
    if (rest.size() > ext.size() && rest.substr(rest.size() - ext.size()) == ext) return true;
  return false;
}

HttpResponse redirect_to_ui() {
  HttpResponse r = HttpResponse::text(302, "see /ui/\n");
  r.headers.emplace_back("Location", "/ui/");
  return r;
}

}  // namespace

void add_ui_routes(net::Router& r) {
  r.add("GET", "/", [](HttpRequest&) -> net::awaitable<HttpResponse> { co_return redirect_to_ui(); });
  r.add("GET", "/ui/{*rest}", [](HttpRequest& req) -> net::awaitable<HttpResponse> {
    std::string rest = req.param("rest");
    if (const ui::Asset* a = ui::find_asset(rest)) co_return serve(*a, req);
    if (looks_like_asset(rest)) co_return HttpResponse::json(404, {{"message", "no such dashboard file: " + rest}});
    co_return serve(ui::index_asset(), req);
  });
}

}  // namespace stele::api
