// libFuzzer target: metric records (metric_record.h), the msgpack maps agents
// ship over the forward protocol with fluent_signal 1; the server decodes
// whatever arrives on its forward input. Invariants: never crashes; on
// success every point's name passes metric_name_error() and views the input;
// on failure nothing is left appended; an encoded record decodes back.
// fuzz-sources: src/metrics/metric_record.cpp src/metrics/graphite_line.cpp src/metrics/glob.cpp src/logs/msgpack.cpp src/common/json.cpp
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "metrics/metric_record.h"

using namespace stele::metrics;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<Point> out;
  out.push_back(Point{"keep.me", 1, 1});
  auto r = decode_metric_record(in, 1700000000, out);
  if (!r) {
    if (out.size() != 1) std::abort();  // a refused record leaves nothing behind
    return 0;
  }
  if (out.size() != 1 + *r) std::abort();
  std::vector<NamedValue> again;
  for (size_t i = 1; i < out.size(); ++i) {
    const Point& p = out[i];
    if (metric_name_error(p.name)) std::abort();
    if (p.name.data() < in.data() || p.name.data() + p.name.size() > in.data() + in.size()) std::abort();
    again.push_back({std::string(p.name), p.value});
  }
  std::string enc = encode_metric_record(again);
  std::vector<Point> back;
  auto r2 = decode_metric_record(enc, 1700000000, back);
  if (!r2 || *r2 != again.size()) std::abort();
  return 0;
}
