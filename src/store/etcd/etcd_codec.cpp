#include "store/etcd/etcd_client.h"

#include <algorithm>

#include "common/clock.h"
#include "store/election.h"

#include <boost/beast/core/detail/base64.hpp>

namespace stele::store::etcd {

namespace b64 = boost::beast::detail::base64;

std::string base64(std::string_view raw) {
  std::string out(b64::encoded_size(raw.size()), '\0');
  out.resize(b64::encode(out.data(), raw.data(), raw.size()));
  return out;
}

Result<std::string> unbase64(std::string_view text) {
  // etcd sends padded base64; Beast's decoder would also write past
  // decoded_size() for a length that is not a multiple of 4.
  if (text.size() % 4 != 0)
    return fail("etcd sent bad base64: its length " + std::to_string(text.size()) + " is not a multiple of 4");
  std::string out(b64::decoded_size(text.size()), '\0');
  auto [written, read] = b64::decode(out.data(), text.data(), text.size());
  size_t padding = text.size() - std::min(text.find_last_not_of('=') + 1, text.size());
  if (read + padding != text.size() || padding > 2) return fail("etcd sent bad base64 at byte " + std::to_string(read));
  out.resize(written);
  return out;
}

int64_t int_field(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) return std::strtoll(it->get<std::string>().c_str(), nullptr, 10);
  return 0;
}

std::string prefix_end(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::string(1, '\0');  // every key
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

Result<void> decode_kvs(const Json& reply, std::vector<KeyValue>& out) {
  if (!reply.is_object()) return fail(std::string("etcd sent a reply that is not an object"));
  auto kvs = reply.find("kvs");
  if (kvs == reply.end()) return {};
  if (!kvs->is_array()) return fail(std::string("etcd sent \"kvs\" that is not an array"));
  for (const auto& kv : *kvs) {
    if (!kv.is_object()) return fail(std::string("etcd sent a key-value that is not an object"));
    auto text = [&](const char* name) {
      auto it = kv.find(name);
      return it != kv.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto k = unbase64(text("key"));
    auto v = unbase64(text("value"));
    if (!k || !v) return fail(k ? v.error() : k.error());
    out.push_back({std::move(*k), std::move(*v), int_field(kv, "mod_revision")});
  }
  return {};
}

}  // namespace stele::store::etcd

namespace stele::store {

// The leader key's value (store/election.h): pure, fuzzed with the replies.
Json LeaderInfo::to_json() const { return Json{{"id", id}, {"url", url}, {"since", iso8601(since_ms)}}; }

Result<LeaderInfo> parse_leader(const std::string& text) {
  auto j = parse_json(text);
  if (!j) return fail("leader key: " + j.error().message);
  if (!j->is_object() || !(*j)["id"].is_string() || !(*j)["url"].is_string())
    return fail("leader key: expected {\"id\": string, \"url\": string, \"since\"}");
  LeaderInfo l;
  l.id = (*j)["id"].get<std::string>();
  l.url = (*j)["url"].get<std::string>();
  if (auto s = j->find("since"); s != j->end() && s->is_string()) l.since_ms = std::max<int64_t>(0, parse_iso8601(*s));
  return l;
}

}  // namespace stele::store
