// Fuzz target for the decoders of the Docker Engine API's streams (the
// multiplexed stdout/stderr frames of logs/attach, and the JSON lines of
// events and builds): what they deliver must not depend on how the bytes were
// split into reads, and a refusal must be the same either way.
// fuzz-sources: src/docker/stream_decoders.cpp src/common/json.cpp
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "docker/stream_decoders.h"

using stele::Json;
using stele::docker::BuildProgress;
using stele::docker::FrameDecoder;
using stele::docker::JsonLinesDecoder;
using stele::docker::StreamKind;

struct Frames {
  std::string out[4];
  bool ok = true, boundary = false;
};

static Frames frames(std::string_view data, size_t split) {
  Frames f;
  FrameDecoder d;
  auto sink = [&](StreamKind k, std::string_view s) { f.out[static_cast<int>(k)].append(s); };
  f.ok = d.feed(data.substr(0, split), sink) && d.feed(data.substr(split), sink);
  f.boundary = d.at_boundary();
  return f;
}

struct Lines {
  std::vector<std::string> docs, build_lines;
  bool ok = true;
};

static Lines lines(std::string_view data, size_t split) {
  Lines l;
  JsonLinesDecoder d(4096);
  BuildProgress progress([&](std::string_view s) { l.build_lines.emplace_back(s); });
  auto sink = [&](Json j) {
    progress.on_message(j);
    l.docs.push_back(j.dump());
  };
  l.ok = d.feed(data.substr(0, split), sink) && d.feed(data.substr(split), sink) && d.finish(sink);
  (void)progress.finish();
  return l;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t split = std::min<size_t>(data[0] * 7u, text.size());
  auto whole = frames(text, text.size()), parts = frames(text, split);
  if (whole.ok != parts.ok) abort();
  if (whole.ok) {
    for (int i = 0; i < 4; ++i)
      if (whole.out[i] != parts.out[i]) abort();
    if (whole.boundary != parts.boundary) abort();
  }
  auto a = lines(text, text.size()), b = lines(text, split);
  if (a.ok != b.ok) abort();
  if (a.ok && (a.docs != b.docs || a.build_lines != b.build_lines)) abort();
  return 0;
}
