#include "api/api_impl.h"

namespace stele::api {

net::HttpResponse change_answer(const Result<deploy::ChangeResult>& r, int ok_status) {
  if (!r) return net::HttpResponse::error(r.error(), 400);
  Json j = {{"deploymentId", r->deployment_id.empty() ? Json() : Json(r->deployment_id)}};
  if (r->release) j["release"] = r->release;
  return net::HttpResponse::json(ok_status, j);
}

std::string app_id_from(const std::string& rest) { return canonical_app_id(rest); }

AppPath split_app_path(const std::string& rest, const std::vector<std::string>& verbs) {
  std::vector<std::string> segs;
  size_t i = 0;
  while (i <= rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    if (j > i) segs.push_back(rest.substr(i, j - i));
    i = j + 1;
  }
  AppPath p;
  // The first segment (from the right) that is a verb starts the tail.
  for (size_t k = segs.size(); k-- > 1;) {
    if (std::find(verbs.begin(), verbs.end(), segs[k]) != verbs.end()) {
      p.tail.assign(segs.begin() + k, segs.end());
      segs.resize(k);
      break;
    }
  }
  std::string id;
  for (auto& s : segs) id += "/" + s;
  p.id = id.empty() ? "/" : id;
  return p;
}

}  // namespace stele::api

namespace stele::api {
Result<Json> body_json(const net::HttpRequest& req) {
  if (req.body.empty()) return Json::object();
  return parse_json(req.body);
}
}  // namespace stele::api
