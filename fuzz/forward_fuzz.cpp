// Fuzz target for the Fluentd forward decoder, fed straight off
// --forward-listen connections: it never crashes or leaks, the requests (and
// any error) do not depend on how the bytes were split into reads, every
// record it hands out is one well-formed msgpack map that converts to JSON,
// and every event request re-encodes as PackedForward to the same entries.
// fuzz-sources: src/logs/forward_codec.cpp src/logs/forward_encode.cpp src/logs/forward_handshake.cpp src/logs/msgpack.cpp src/logs/msgpack_json.cpp src/common/json.cpp
// fuzz-libs: -lz -lcrypto
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "logs/forward_codec.h"

using stele::logs::ForwardDecoder;
using stele::logs::ForwardKind;
using stele::logs::ForwardLimits;
using stele::logs::ForwardMessage;
using stele::logs::LogEntry;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "forward_fuzz: %s\n", what);
  std::abort();
}

struct Request {
  int kind;
  std::string tag, chunk, ack;
  std::vector<std::pair<int64_t, std::string>> entries;
  bool operator==(const Request&) const = default;
};

struct Outcome {
  std::vector<Request> requests;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

ForwardLimits limits() {
  ForwardLimits l;
  l.max_request_bytes = 1 << 20;
  l.max_decompressed_bytes = 1 << 20;
  return l;
}

void check_events(const ForwardMessage& m) {
  std::vector<LogEntry> shippable;
  for (const LogEntry& e : m.entries) {
    if (e.tag != m.tag) violated("entry tag differs from the request tag");
    if (!stele::logs::msgpack_to_json(e.record)) violated("a decoded record is not valid msgpack");
    if (e.record.empty() || stele::logs::msgpack::type_of(uint8_t(e.record[0])) != stele::logs::msgpack::Type::kMap)
      violated("a decoded record is not a map");
    // EventTime carries uint32 seconds: only those times survive re-encoding.
    if (e.time_ns >= 0 && e.time_ns < (int64_t(1) << 32) * 1000000000) shippable.push_back(e);
  }
  if (shippable.empty()) return;
  std::string again = stele::logs::encode_packed_forward(m.tag, shippable, "c", shippable.size() % 2 == 0);
  ForwardDecoder d;
  d.feed(again);
  auto r = d.next();
  if (!r || !*r) violated("re-encoded request does not decode");
  const ForwardMessage& back = **r;
  if (back.entries.size() != shippable.size()) violated("re-encoded entry count differs");
  for (size_t i = 0; i < shippable.size(); ++i)
    if (back.entries[i].time_ns != shippable[i].time_ns || back.entries[i].record != shippable[i].record)
      violated("re-encoded entry differs");
}

void drain(ForwardDecoder& d, Outcome& out, bool check) {
  while (out.error.empty()) {
    auto r = d.next();
    if (!r) {
      out.error = r.error().message;
      if (out.error.empty()) violated("empty error message");
      return;
    }
    if (!*r) return;
    const ForwardMessage& m = **r;
    Request q{int(m.kind), std::string(m.tag), std::string(m.options.chunk.value_or("")), std::string(m.ack), {}};
    for (const LogEntry& e : m.entries) q.entries.emplace_back(e.time_ns, std::string(e.record));
    if (check && m.kind == ForwardKind::kEvents) check_events(m);
    out.requests.push_back(std::move(q));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  Outcome whole;
  {
    ForwardDecoder d(limits());
    d.feed(in);
    drain(d, whole, true);
  }

  // Same bytes in pseudo-random reads (seeded by the input), through prepare/commit.
  Outcome split;
  {
    ForwardDecoder d(limits());
    uint32_t seed = 2166136261u;
    for (uint8_t b : in.substr(0, 16)) seed = (seed ^ b) * 16777619u;
    size_t at = 0;
    while (at < in.size() && split.error.empty()) {
      seed = seed * 1103515245u + 12345u;
      size_t n = std::min<size_t>(in.size() - at, 1 + (seed >> 16) % 64);
      auto buf = d.prepare(n);
      std::memcpy(buf.data(), in.data() + at, n);
      d.commit(n);
      at += n;
      drain(d, split, false);
    }
  }
  if (!(whole == split)) violated("outcome depends on how the input was split");
  return 0;
}
