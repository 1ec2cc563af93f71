// Fuzz target for pkt-line framing, read straight off `git push` connections:
// the reader never crashes, the packets (and any error) do not depend on how
// the bytes were split into reads, every packet re-encodes to the bytes it
// came from, and the receive-pack command parser either refuses the input or
// gives a pack offset inside it that a prefix ending there parses the same.
// fuzz-sources: src/pipeline/pktline.cpp
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/pktline.h"

using stele::pipeline::Packet;
using stele::pipeline::PktLineReader;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "pktline_fuzz: %s\n", what);
  std::abort();
}

struct Outcome {
  std::vector<Packet> packets;
  std::string error;  // empty when the input ended cleanly or mid-packet
  size_t consumed = 0;
};

void drain(PktLineReader& r, Outcome& out) {
  while (out.error.empty()) {
    auto p = r.next();
    if (!p) {
      out.error = p.error().message;
      return;
    }
    if (!*p) return;
    out.packets.push_back(std::move(**p));
  }
}

// Feeds `data` in pieces of the lengths `cuts` (cycled), draining after each.
Outcome read(std::string_view data, const std::vector<size_t>& cuts) {
  PktLineReader r;
  Outcome out;
  size_t off = 0, i = 0;
  while (off < data.size()) {
    size_t n = cuts.empty() ? data.size() : std::max<size_t>(1, cuts[i++ % cuts.size()]);
    r.feed(data.substr(off, n));
    off += std::min(n, data.size() - off);
    drain(r, out);
  }
  out.consumed = r.consumed();
  if (out.error.empty() && r.consumed() + r.rest().size() != data.size()) violated("bytes lost");
  return out;
}

std::string encode(const Packet& p) {
  switch (p.kind) {
    case Packet::Kind::flush: return stele::pipeline::pkt_flush();
    case Packet::Kind::delim: return stele::pipeline::pkt_delim();
    case Packet::Kind::response_end: return stele::pipeline::pkt_response_end();
    case Packet::Kind::data: break;
  }
  return stele::pipeline::pkt_line(p.payload);
}

void check_receive(std::string_view data) {
  auto req = stele::pipeline::parse_receive_commands(data);
  if (!req) {
    if (req.error().code != 0 && req.error().code != 400) violated("receive error with an unexpected code");
    return;
  }
  if (req->pack_offset > data.size()) violated("pack offset past the input");
  auto prefix = stele::pipeline::parse_receive_commands(data.substr(0, req->pack_offset));
  if (!prefix || prefix->commands != req->commands || prefix->push_options != req->push_options ||
      prefix->pack_offset != req->pack_offset)
    violated("the prefix up to the pack parses differently");
  for (const auto& c : req->commands)
    if (c.ref.rfind("refs/", 0) != 0 || (c.old_sha.size() != 40 && c.old_sha.size() != 64))
      violated("accepted a malformed command");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::vector<size_t> cuts = {data[0], static_cast<size_t>(data[1]) * 7 + 1};
  std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

  Outcome whole = read(text, {});
  Outcome split = read(text, cuts);
  Outcome bytes = read(text, {1});
  for (const Outcome* o : {&split, &bytes})
    if (o->packets != whole.packets || o->error != whole.error || o->consumed != whole.consumed)
      violated("packets depend on how the input was split");

  std::string again;
  for (const auto& p : whole.packets) {
    if (p.kind != Packet::Kind::data && !p.payload.empty()) violated("special packet with a payload");
    again += encode(p);
  }
  if (again.size() != whole.consumed) violated("packets do not add up to the bytes consumed");
  for (size_t i = 0; i < again.size(); ++i) {
    char a = again[i], b = text[i];
    if (a != b && !(a >= 'a' && a <= 'f' && b == a - 'a' + 'A')) violated("re-encoded packets differ from the input");
  }

  check_receive(text);

  // Side-band frames of any data read back as that data.
  size_t max_data = 1 + data[0] % 64;
  PktLineReader sb;
  sb.feed(stele::pipeline::sideband(2, text, max_data));
  std::string joined;
  for (;;) {
    auto p = sb.next();
    if (!p) violated("sideband output does not read back");
    if (!*p) break;
    if ((*p)->payload.empty() || (*p)->payload[0] != '\2' || (*p)->payload.size() > max_data + 1)
      violated("bad sideband packet");
    joined += (*p)->payload.substr(1);
  }
  if (joined != text) violated("sideband changed the data");
  return 0;
}
