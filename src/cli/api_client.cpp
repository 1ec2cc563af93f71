#include "cli/api_client.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/names.h"
#include "net/http_client.h"

namespace stele::cli {

namespace {

std::string trim(std::string s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && blank(s[i])) ++i;
  return s.substr(i);
}

std::optional<std::string> read_token_file(const std::string& dir) {
  std::ifstream in(dir + "/token");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = trim(ss.str());
  if (t.empty()) return std::nullopt;
  return t;
}

std::string normalize_one(std::string api) {
  api = trim(std::move(api));
  if (api.find("://") == std::string::npos) api = "http://" + api;
  while (!api.empty() && api.back() == '/') api.pop_back();
  return api;
}

// "a:7070, http://b:7070/" -> "http://a:7070,http://b:7070".
std::string normalize_api(const std::string& list) {
  std::string out;
  for (const auto& one : net::split_url_list(list)) {
    std::string n = normalize_one(one);
    if (n != "http://") out += (out.empty() ? "" : ",") + n;
  }
  return out.empty() ? normalize_one(list) : out;
}

std::string resolve_token(const GlobalFlags& flags, const EnvLookup& env) {
  if (!flags.token.empty()) return flags.token;
  if (auto t = env("STELE_TOKEN")) return *t;
  std::vector<std::string> dirs;
  if (!flags.data_dir.empty()) {
    dirs.push_back(flags.data_dir);
  } else {
    if (auto d = env("STELE_DATA_DIR")) dirs.push_back(*d);
    dirs.push_back("./stele-data");
  }
  for (const auto& d : dirs)
    if (auto t = read_token_file(d)) return *t;
  return "";
}

std::string first_line(std::string_view s, size_t max) {
  std::string line(s.substr(0, s.find('\n')));
  line = trim(std::move(line));
  if (line.size() > max) line = line.substr(0, max) + "...";
  return line;
}

}  // namespace

std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

ClientOptions resolve_options(const GlobalFlags& flags, const EnvLookup& env) {
  ClientOptions o;
  if (!flags.api.empty()) o.api = normalize_api(flags.api);
  else if (auto a = env("STELE_API")) o.api = normalize_api(*a);
  o.token = resolve_token(flags, env);
  if (!flags.ca.empty()) o.ca = flags.ca;
  else if (auto c = env("STELE_CA")) o.ca = *c;
  o.json = flags.json;
  return o;
}

Error error_from_response(int status, std::string_view body) {
  Error e;
  e.code = status;
  auto parsed = parse_json(body);
  Json j = parsed ? std::move(*parsed) : Json();
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    e.message = j["message"].get<std::string>();
    const Json& details = j.contains("details") ? j["details"] : Json();
    if (details.is_array())
      for (const auto& d : details) {
        FieldError f{d.value("path", ""), {}};
        if (d.contains("errors") && d["errors"].is_array())
          for (const auto& m : d["errors"])
            if (m.is_string()) f.errors.push_back(m.get<std::string>());
        e.details.push_back(std::move(f));
      }
  }
  if (e.message.empty()) {
    std::string line = first_line(body, 200);
    e.message = "HTTP " + std::to_string(status) + (line.empty() ? "" : ": " + line);
  }
  return e;
}

Error connection_error(const std::string& api, const Error& transport) {
  const std::string& m = transport.message;
  bool connect = m.rfind("cannot connect to", 0) == 0 || m.rfind("cannot resolve", 0) == 0;
  if (!connect) return transport;
  if (m.find("refused") != std::string::npos)
    return Error{"cannot reach the Stele API at " + api + " (is `stele up` running?)", {}, 0};
  auto colon = m.rfind(": ");
  std::string cause = colon == std::string::npos ? m : m.substr(colon + 2);
  return Error{"cannot reach the Stele API at " + api + ": " + cause, {}, 0};
}

std::string format_error(const Error& e) {
  std::string out = "stele: " + (e.message.empty() ? std::string("unknown error") : e.message);
  std::string sep = ": ";
  for (const auto& d : e.details) {
    out += sep + (d.path.empty() ? "/" : d.path);
    if (!d.errors.empty()) out += ":";
    for (size_t i = 0; i < d.errors.size(); ++i) out += (i ? ", " : " ") + d.errors[i];
    sep = "; ";
  }
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

std::string app_path(std::string_view app_id) {
  return "/api/v1/apps" + net::percent_encode(canonical_app_id(app_id));
}

net::Headers ApiClient::headers() const {
  net::Headers h;
  if (!opts_.token.empty()) h.emplace_back("Authorization", "Bearer " + opts_.token);
  return h;
}

Error ApiClient::http_error(int status, std::string_view body) const {
  Error e = error_from_response(status, body);
  if (status == 401 || status == 403)
    e.message += opts_.token.empty() ? " (no token: pass --token, set STELE_TOKEN or --data-dir)"
                                     : " (check the token given by --token, STELE_TOKEN or the data dir)";
  return e;
}

Result<Json> ApiClient::get(const std::string& path) const { return send("GET", path, Json()); }

const std::string& ApiClient::base() const {
  if (!base_.empty()) return base_;
  auto servers = net::split_url_list(opts_.api);
  base_ = servers.empty() ? opts_.api : servers.front();
  if (servers.size() < 2) return base_;
  for (const auto& s : servers) {  // the first that answers tells who leads
    auto r = net::http_request_sync("GET", s + "/api/v1/leader", "", headers(), std::chrono::seconds(3));
    if (!r || r->status != 200) continue;
    auto j = r->json();
    if (!j || !j->is_object()) continue;
    if (j->value("self", false)) {
      base_ = s;
      break;
    }
    const Json& l = (*j)["leader"];
    if (l.is_object() && l.value("url", std::string()) != "") {
      base_ = l["url"].get<std::string>();
      break;
    }
  }
  return base_;
}

bool ApiClient::follow_leader(const net::ClientResponse& r) const {
  auto leader = net::leader_redirect(r);
  if (!leader || *leader == base_) return false;
  base_ = *leader;
  return true;
}

Result<Json> ApiClient::send(const std::string& method, const std::string& path, const Json& body) const {
  std::string text = body.is_null() ? std::string() : body.dump();
  net::Headers h = headers();
  h.emplace_back("Accept", "application/json");
  auto r = net::http_request_sync(method, url(path), text, h);
  if (r && follow_leader(*r)) r = net::http_request_sync(method, url(path), text, h);
  if (!r) return fail(connection_error(base(), r.error()));
  if (r->status < 200 || r->status >= 300) return fail(http_error(r->status, r->body));
  if (r->body.empty()) return Json::object();
  auto j = r->json();
  if (!j) return fail("unexpected answer from " + url(path) + ": " + j.error().message);
  return j;
}

Result<std::string> ApiClient::get_text(const std::string& path) const {
  net::Headers h = headers();
  h.emplace_back("Accept", "text/plain");
  auto r = net::http_request_sync("GET", url(path), "", h);
  if (r && follow_leader(*r)) r = net::http_request_sync("GET", url(path), "", h);
  if (!r) return fail(connection_error(base(), r.error()));
  if (r->status < 200 || r->status >= 300) return fail(http_error(r->status, r->body));
  return std::move(r->body);
}

Result<int> ApiClient::stream(const std::string& path, const net::Headers& extra,
                              const std::function<bool(std::string_view)>& on_data,
                              std::chrono::milliseconds idle_timeout) const {
  return stream_request("GET", path, "", "text/event-stream", extra, on_data, idle_timeout);
}

Result<int> ApiClient::stream_request(const std::string& method, const std::string& path, const std::string& body,
                                      const std::string& accept, const net::Headers& extra,
                                      const std::function<bool(std::string_view)>& on_data,
                                      std::chrono::milliseconds idle_timeout) const {
  net::Headers h = headers();
  h.insert(h.end(), extra.begin(), extra.end());
  h.emplace_back("Accept", accept);
  auto r = net::http_stream_sync(method, url(path), body, h, on_data, idle_timeout);
  if (!r) return fail(connection_error(base(), r.error()));
  return r;
}

}  // namespace stele::cli
