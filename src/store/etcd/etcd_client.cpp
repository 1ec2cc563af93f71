#include "store/etcd/etcd_client.h"

#include "net/http_client.h"

namespace stele::store::etcd {

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {}

Result<Json> EtcdClient::call_one(const std::string& endpoint, const std::string& method, const std::string& body) {
  auto r = net::http_request_sync("POST", "http://" + endpoint + "/v3/" + method, body, {}, timeout_);
  if (!r) return fail("etcd " + endpoint + ": " + r.error().message);
  auto j = r->json();
  if (r->status == 200 && j && j->is_object()) return std::move(*j);
  std::string message = j && j->is_object() ? j->value("message", std::string()) : std::string();
  if (message.empty()) message = r->body.substr(0, 200);
  return fail("etcd " + endpoint + ": HTTP " + std::to_string(r->status) + ": " + message, r->status);
}

Result<Json> EtcdClient::call(const std::string& method, const Json& body) {
  std::string text = body.dump();
  std::string errors;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    size_t at = (current_ + i) % endpoints_.size();
    auto r = call_one(endpoints_[at], method, text);
    if (r) {
      current_ = at;
      return r;
    }
    if (r.error().code >= 400 && r.error().code < 500) return r;  // etcd refused it: no use asking another
    errors += (errors.empty() ? "" : "; ") + r.error().message;
  }
  return fail(endpoints_.size() == 1 ? errors : "no etcd endpoint answered: " + errors, 503);
}

Result<std::vector<KeyValue>> EtcdClient::range(std::string key, const std::string& range_end, size_t limit,
                                                size_t page, bool keys_only) {
  std::vector<KeyValue> out;
  for (;;) {
    size_t want = limit ? std::min(page, limit - out.size()) : page;
    Json req{{"key", base64(key)}, {"range_end", base64(range_end)}, {"limit", std::to_string(want)}};
    if (keys_only) req["keys_only"] = true;
    auto r = call("kv/range", req);
    if (!r) return fail(r.error());
    if (auto decoded = decode_kvs(*r, out); !decoded) return fail(decoded.error());
    if (!r->value("more", false) || out.empty() || (limit && out.size() >= limit)) return out;
    key = out.back().key + '\0';  // the next key after the last one seen
  }
}

}  // namespace stele::store::etcd
