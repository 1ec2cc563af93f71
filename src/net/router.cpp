#include "net/router.h"

namespace stele::net {

static std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.emplace_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

void Router::add(std::string method, std::string pattern, Handler h) {
  routes_.push_back(Route{std::move(method), split_path(pattern), std::move(h)});
}

static bool match_route(const std::vector<std::string>& pat, const std::vector<std::string>& segs,
                        std::map<std::string, std::string>& params) {
  for (size_t i = 0; i < pat.size(); ++i) {
    const auto& p = pat[i];
    if (p.size() > 3 && p[0] == '{' && p[1] == '*') {
      std::string rest;
      for (size_t k = i; k < segs.size(); ++k) rest += (k > i ? "/" : "") + segs[k];
      params[p.substr(2, p.size() - 3)] = rest;
      return true;
    }
    if (i >= segs.size()) return false;
    if (p.size() > 2 && p.front() == '{' && p.back() == '}')
      params[p.substr(1, p.size() - 2)] = segs[i];
    else if (p != segs[i])
      return false;
  }
  return pat.size() == segs.size();
}

const Handler* Router::match(HttpRequest& req, bool& path_matched) const {
  auto segs = split_path(req.path);
  path_matched = false;
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!match_route(r.segments, segs, params)) continue;
    path_matched = true;
    if (r.method != req.method && !(req.method == "HEAD" && r.method == "GET")) continue;
    req.params = std::move(params);
    return &r.handler;
  }
  return nullptr;
}

}  // namespace stele::net
