#include "metrics/ingest.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "metrics/carbon_relay.h"

namespace stele::metrics {

Tsdb::AppendResult MetricsIngest::append(std::span<const Point> points, int64_t now, std::string_view source,
                                         bool external) {
  auto r = tsdb_.append(points, now);
  if (relay_) relay_->enqueue(points);
  if (external && replicate_ && !points.empty()) replicate_(points);
  if (r.refused) {
    int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now().time_since_epoch())
                     .count();
    std::lock_guard<std::mutex> lk(log_mu_);
    auto d = log_.admit(ms);
    if (d.emit)
      spdlog::warn("metrics: {} point(s) from {} refused: {}{}", r.refused, source, r.error,
                   d.suppressed ? " (" + std::to_string(d.suppressed) + " similar messages suppressed)" : "");
  }
  return r;
}

}  // namespace stele::metrics
