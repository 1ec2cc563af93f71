#include "scheduler/port_set.h"

#include <algorithm>
#include <bit>

namespace stele::sched::detail {
namespace {

std::vector<PortRange> merged(std::vector<PortRange> ranges) {
  std::erase_if(ranges, [](const PortRange& r) { return r.end < r.begin; });
  std::sort(ranges.begin(), ranges.end(),
            [](const PortRange& a, const PortRange& b) { return a.begin < b.begin; });
  std::vector<PortRange> out;
  for (const PortRange& r : ranges) {
    if (!out.empty() && r.begin <= out.back().end + 1)
      out.back().end = std::max(out.back().end, r.end);
    else
      out.push_back(r);
  }
  return out;
}

}  // namespace

void PortSet::reset(const std::vector<PortRange>& ranges) {
  spans_.clear();
  uint32_t size = 0;
  for (const PortRange& r : merged(ranges)) {
    spans_.push_back({r.begin, r.end, size});
    size += static_cast<uint32_t>(r.end - r.begin + 1);
  }
  const size_t words = (size + 63) / 64;
  used_.assign(words, 0);
  if (size % 64 != 0) used_.back() = ~uint64_t{0} << (size % 64);  // bits past the end: never free
  nonfull_.assign((words + 63) / 64, 0);
  for (size_t w = 0; w < words; ++w)
    if (~used_[w] != 0) nonfull_[w / 64] |= uint64_t{1} << (w % 64);
  free_ = static_cast<int>(size);
}

int64_t PortSet::bit_of(int port) const {
  auto it = std::upper_bound(spans_.begin(), spans_.end(), port,
                             [](int p, const Span& s) { return p < s.begin; });
  if (it == spans_.begin()) return -1;
  --it;
  if (port > it->end) return -1;
  return it->offset + static_cast<uint32_t>(port - it->begin);
}

int PortSet::port_of(uint32_t bit) const {
  auto it = std::upper_bound(spans_.begin(), spans_.end(), bit,
                             [](uint32_t b, const Span& s) { return b < s.offset; });
  --it;
  return it->begin + static_cast<int>(bit - it->offset);
}

void PortSet::set_used(uint32_t bit) {
  uint64_t& word = used_[bit / 64];
  word |= uint64_t{1} << (bit % 64);
  if (~word == 0) nonfull_[bit / 4096] &= ~(uint64_t{1} << (bit / 64 % 64));
  --free_;
}

void PortSet::set_free(uint32_t bit) {
  used_[bit / 64] &= ~(uint64_t{1} << (bit % 64));
  nonfull_[bit / 4096] |= uint64_t{1} << (bit / 64 % 64);
  ++free_;
}

bool PortSet::is_free(int port) const {
  const int64_t bit = bit_of(port);
  return bit >= 0 && !(used_[bit / 64] >> (bit % 64) & 1);
}

bool PortSet::take(int port) {
  if (!is_free(port)) return false;
  set_used(static_cast<uint32_t>(bit_of(port)));
  return true;
}

void PortSet::release(int port) {
  const int64_t bit = bit_of(port);
  if (bit >= 0 && (used_[bit / 64] >> (bit % 64) & 1)) set_free(static_cast<uint32_t>(bit));
}

void PortSet::take_lowest(int n, std::vector<int>& out) {
  size_t summary = 0;
  for (int i = 0; i < n && free_ > 0; ++i) {
    while (nonfull_[summary] == 0) ++summary;  // free_ >= n guarantees one ahead
    const size_t word = summary * 64 + static_cast<size_t>(std::countr_zero(nonfull_[summary]));
    const auto bit = static_cast<uint32_t>(word * 64 + std::countr_one(used_[word]));
    set_used(bit);
    out.push_back(port_of(bit));
  }
}

}  // namespace stele::sched::detail
