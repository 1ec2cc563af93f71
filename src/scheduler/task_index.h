// TaskIndex: task id -> task Index, an open-addressing (linear probing) hash
// table whose 8-byte slots hold a 32-bit hash and the Index; the ids
// themselves stay in the task records. Why not std::unordered_map: with a
// million tasks its lookup costs a bucket, a node and a heap key (a cache miss
// each), plus a node allocation per insert; that was a fifth of placement
// time. Here a new id costs one slot probe and no allocation.
#pragma once
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "scheduler/constraints.h"  // Index, kNone

namespace stele::sched::detail {

class TaskIndex {
 public:
  // `key_of(Index) -> std::string_view` gives the id of an indexed task.
  template <class KeyOf>
  Index find(std::string_view id, const KeyOf& key_of) const {
    if (slots_.empty()) return kNone;
    const uint32_t h = hash(id);
    for (size_t i = h & mask(); slots_[i] != 0; i = (i + 1) & mask())
      if (tag(slots_[i]) == h && key_of(index(slots_[i])) == id) return index(slots_[i]);
    return kNone;
  }

  // Adds id -> t unless id is already there; false (no change) then.
  template <class KeyOf>
  bool insert(std::string_view id, Index t, const KeyOf& key_of) {
    if ((size_ + 1) * 10 > slots_.size() * 7) grow();
    const uint32_t h = hash(id);
    size_t i = h & mask();
    for (; slots_[i] != 0; i = (i + 1) & mask())
      if (tag(slots_[i]) == h && key_of(index(slots_[i])) == id) return false;
    slots_[i] = slot(h, t);
    ++size_;
    return true;
  }

  // Removes id; no-op if absent. Later entries of the probe run move back
  // into the gap (no tombstones).
  template <class KeyOf>
  void erase(std::string_view id, const KeyOf& key_of) {
    if (slots_.empty()) return;
    const uint32_t h = hash(id);
    size_t i = h & mask();
    for (; slots_[i] != 0; i = (i + 1) & mask())
      if (tag(slots_[i]) == h && key_of(index(slots_[i])) == id) break;
    if (slots_[i] == 0) return;
    close_gap(i);
    --size_;
  }

  size_t size() const { return size_; }

 private:
  static uint32_t hash(std::string_view id) {
    return static_cast<uint32_t>(std::hash<std::string_view>{}(id) >> 16);
  }
  static uint64_t slot(uint32_t h, Index t) { return uint64_t{h} << 32 | (uint64_t{t} + 1); }
  static uint32_t tag(uint64_t s) { return static_cast<uint32_t>(s >> 32); }
  static Index index(uint64_t s) { return static_cast<Index>((s & 0xffffffff) - 1); }
  size_t mask() const { return slots_.size() - 1; }

  void grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
    for (uint64_t s : old) {
      if (s == 0) continue;
      size_t i = tag(s) & mask();
      while (slots_[i] != 0) i = (i + 1) & mask();
      slots_[i] = s;
    }
  }

  void close_gap(size_t gap) {
    for (size_t j = (gap + 1) & mask(); slots_[j] != 0; j = (j + 1) & mask()) {
      const size_t home = tag(slots_[j]) & mask();
      if (((j - home) & mask()) < ((j - gap) & mask())) continue;  // may not move before its home
      slots_[gap] = slots_[j];
      gap = j;
    }
    slots_[gap] = 0;
  }

  std::vector<uint64_t> slots_;  // 0 = empty; else hash << 32 | (index + 1); size a power of 2
  size_t size_ = 0;
};

}  // namespace stele::sched::detail
