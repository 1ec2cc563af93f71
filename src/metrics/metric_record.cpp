#include "metrics/metric_record.h"

#include <cmath>

#include "logs/msgpack.h"

namespace stele::metrics {

namespace mp = logs::msgpack;

std::string encode_metric_record(const std::vector<NamedValue>& points) {
  std::string out;
  out.reserve(16 + points.size() * 48);
  mp::Writer w(out);
  w.map(1);
  w.str("metrics");
  w.map(static_cast<uint32_t>(points.size()));
  for (const auto& p : points) {
    w.str(p.path);
    w.float64(p.value);
  }
  return out;
}

Result<size_t> decode_metric_record(std::string_view record, int64_t time_s, std::vector<Point>& out) {
  mp::Reader r(record);
  size_t first = out.size();
  auto bad = [&](std::string what) -> Result<size_t> {
    out.resize(first);
    return fail("metrics record: " + what, 400);
  };
  uint32_t n = 0;
  if (!r.read_map(n)) return bad(r.error().what);
  bool found = false;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.read_str_or_bin(key)) return bad(r.error().what);
    if (key != "metrics") {
      if (!r.skip()) return bad(r.error().what);
      continue;
    }
    found = true;
    uint32_t m = 0;
    if (!r.read_map(m)) return bad("'metrics': " + r.error().what);
    for (uint32_t j = 0; j < m; ++j) {
      std::string_view path;
      if (!r.read_str_or_bin(path)) return bad("'metrics' key: " + r.error().what);
      if (auto e = metric_name_error(path)) return bad("bad path '" + std::string(path.substr(0, 200)) + "': " + *e);
      double v = 0;
      mp::Type t = r.peek();
      if (t == mp::Type::kFloat) {
        if (!r.read_double(v)) return bad(r.error().what);
      } else if (t == mp::Type::kInt) {
        if (static_cast<uint8_t>(record[r.pos()]) == 0xcf) {  // uint64 may exceed int64
          uint64_t uv = 0;
          if (!r.read_uint(uv)) return bad(r.error().what);
          v = double(uv);
        } else {
          int64_t iv = 0;
          if (!r.read_int(iv)) return bad(r.error().what);
          v = double(iv);
        }
      } else {
        return bad("value of '" + std::string(path.substr(0, 200)) + "' is a " + mp::type_name(t) +
                   ", expected a number");
      }
      if (std::isnan(v)) continue;
      out.push_back(Point{path, v, time_s});
    }
  }
  if (!found) return bad("key 'metrics' missing");
  if (!r.at_end()) return bad("trailing bytes after the record");
  return out.size() - first;
}

}  // namespace stele::metrics
