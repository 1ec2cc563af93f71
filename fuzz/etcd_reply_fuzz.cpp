// Fuzz target for what the etcd store reads from etcd's JSON gateway: range
// replies ("kvs" with base64 keys and values, int64s as strings) must decode
// or fail with an error, never crash; base64 must round-trip; prefix_end
// must bound every key with the prefix; the leader key's value parses or
// fails, and what parsed survives a round trip.
// fuzz-sources: src/store/etcd/etcd_codec.cpp src/common/json.cpp src/common/clock.cpp
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/json.h"
#include "store/election.h"
#include "store/etcd/etcd_client.h"

using namespace stele::store::etcd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto j = stele::parse_json(text)) {
    std::vector<KeyValue> kvs;
    (void)decode_kvs(*j, kvs);
  }
  if (auto l = stele::store::parse_leader(std::string(text))) {
    auto again = stele::store::parse_leader(l->to_json().dump());
    if (!again || again->id != l->id || again->url != l->url) abort();
  }
  (void)unbase64(text);
  auto again = unbase64(base64(text));
  if (!again || *again != text) abort();
  std::string prefix(text.substr(0, 64));
  std::string end = prefix_end(prefix);
  std::string key = prefix + "x";
  if (prefix.find_first_not_of('\xff') != std::string::npos && !(key < end)) abort();
  return 0;
}
