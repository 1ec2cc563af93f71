// Router: method + path pattern -> handler. Patterns are literal segments,
// "{name}" (one segment) and a final "{*name}" (the rest, possibly with '/').
// Routes are tried in registration order. Not thread-safe; fill before serving.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/http.h"

namespace stele::net {

class Router {
 public:
  void add(std::string method, std::string pattern, Handler h);
  // Finds a handler; fills req.params. Returns nullptr when nothing matches;
  // `path_matched` tells whether some route had the path (for 405 vs 404).
  const Handler* match(HttpRequest& req, bool& path_matched) const;
  // Consulted before any route: a handler it gives answers instead (a
  // follower server's proxy or redirect to its leader).
  using Gate = std::function<std::optional<Handler>(const HttpRequest&)>;
  void set_gate(Gate g) { gate_ = std::move(g); }
  const Gate& gate() const { return gate_; }

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
  Gate gate_;
};

}  // namespace stele::net
