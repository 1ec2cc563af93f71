// PortSet: the free/used state of one agent's port ranges.
//
// A bitmap over the ranges (one bit per port) plus a summary bitmap of the
// words that still have a free port, so taking the lowest free port costs one
// summary word per 4096 ports, not a scan of the range.
#pragma once
#include <cstdint>
#include <vector>

#include "scheduler/scheduler.h"

namespace stele::sched::detail {

class PortSet {
 public:
  // All ports of `ranges` become free. Overlapping ranges are merged, empty
  // ones (end < begin) dropped.
  void reset(const std::vector<PortRange>& ranges);

  int free_count() const { return free_; }
  bool is_free(int port) const;  // false outside the ranges
  // Marks `port` used; false (and no change) if outside the ranges or used.
  bool take(int port);
  // Marks `port` free; no-op outside the ranges.
  void release(int port);
  // Takes the `n` lowest free ports, appending them to `out` ascending.
  // Requires free_count() >= n.
  void take_lowest(int n, std::vector<int>& out);

 private:
  struct Span {
    int begin, end;   // inclusive
    uint32_t offset;  // bit index of `begin`
  };
  int64_t bit_of(int port) const;  // -1 outside the ranges
  int port_of(uint32_t bit) const;
  void set_used(uint32_t bit);
  void set_free(uint32_t bit);

  int free_ = 0;
  std::vector<Span> spans_;
  std::vector<uint64_t> used_;     // 1 = used (bits past the end are set)
  std::vector<uint64_t> nonfull_;  // bit w = used_[w] has a free bit
};

}  // namespace stele::sched::detail
