// Fuzz target for the SSE parser agents and the CLI run on what the server
// streams: the events must not depend on how the bytes were split into reads.
// fuzz-sources: src/net/sse.cpp
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/sse.h"

using stele::net::SseEvent;
using stele::net::SseParser;

static std::vector<SseEvent> parse(std::string_view data, size_t split) {
  std::vector<SseEvent> out;
  SseParser p([&](const SseEvent& e) { out.push_back(e); });
  p.feed(data.substr(0, split));
  p.feed(data.substr(split));
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t split = data[0] % size;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto whole = parse(text, text.size());
  auto parts = parse(text, std::min(split, text.size()));
  if (whole.size() != parts.size()) abort();
  for (size_t i = 0; i < whole.size(); ++i)
    if (whole[i].id != parts[i].id || whole[i].event != parts[i].event || whole[i].data != parts[i].data) abort();
  // What we format, we parse back unchanged.
  for (const auto& e : whole) {
    if (e.data.find('\r') != std::string::npos || e.id.find_first_of("\r\n") != std::string::npos ||
        e.event.find_first_of("\r\n") != std::string::npos)
      continue;
    auto again = parse(stele::net::format_sse(e), 0);
    if (again.size() != 1 || again[0].data != e.data || again[0].id != e.id || again[0].event != e.event) abort();
  }
  return 0;
}
