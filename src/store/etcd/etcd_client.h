// A blocking client of etcd v3's JSON gateway (POST /v3/kv/...), over
// Stele's own HTTP client. Keys and values travel base64-encoded; int64s come
// back as strings; zero values are omitted (see the gateway notes in
// docs/architecture.md). Used from one thread, like the Store that owns it.
#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele::store::etcd {

std::string base64(std::string_view raw);
Result<std::string> unbase64(std::string_view text);
// An int64 field of a gateway reply: "123" or 123; 0 when absent.
int64_t int_field(const Json& j, const char* name);
// The range_end that selects every key starting with `prefix`.
std::string prefix_end(std::string prefix);

struct KeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
};

// Appends a range reply's "kvs" (absent: none) decoded; an error names what
// is malformed. Pure (etcd_codec.cpp, fuzzed by fuzz/etcd_reply_fuzz.cpp).
Result<void> decode_kvs(const Json& reply, std::vector<KeyValue>& out);

class EtcdClient {
 public:
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);

  // POST /v3/<method> (e.g. "kv/txn") to the endpoint that last answered,
  // moving on to the next one on a transport error or a 5xx. A 4xx is etcd
  // refusing the request: no other endpoint is asked. Errors name the
  // endpoint(s) and etcd's message.
  Result<Json> call(const std::string& method, const Json& body);

  // Keys in [key, range_end), in key order, at most `limit` (0 = all), asking
  // for `page` keys per request.
  Result<std::vector<KeyValue>> range(std::string key, const std::string& range_end, size_t limit, size_t page,
                                      bool keys_only = false);

 private:
  Result<Json> call_one(const std::string& endpoint, const std::string& method, const std::string& body);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  size_t current_ = 0;  // the endpoint that answered last: asked first
};

}  // namespace stele::store::etcd
