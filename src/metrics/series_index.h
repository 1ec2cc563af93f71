// SeriesIndex: metric name -> series id for the store's ingest path, built
// for lookups whose table does not fit in cache (100,000 series and more).
//
// Open addressing with linear probing, load at most 1/2; a slot is 16 bytes
// (the top 32 bits of the name's hash, the id, where the name sits in the
// index's own name arena, its length), so a lookup costs the slot and the
// name's bytes -- two cache misses, not the three of a node-based map (bucket,
// node, heap string). find_batch() goes further: it hashes the whole batch
// and prefetches every slot, then every candidate's name, before comparing,
// so the misses of a batch overlap instead of queueing one after another.
//
// Names are compared in full; the hash only picks the slot. Not thread-safe
// (the store calls it under its mutex).
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stele::metrics {

class SeriesIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  SeriesIndex() { slots_.resize(16); }

  size_t size() const { return size_; }

  std::optional<uint32_t> find(std::string_view name) const {
    uint32_t id = probe(name, hash(name));
    return id == kNone ? std::nullopt : std::optional<uint32_t>(id);
  }

  // Adds a name that is not in the index yet.
  void insert(std::string_view name, uint32_t id) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    uint64_t h = hash(name);
    Slot s{tag_of(h), id, static_cast<uint32_t>(names_.size()), static_cast<uint32_t>(name.size())};
    names_.append(name);
    place(s, h);
    ++size_;
  }

  // out[i] = the id of name_at(i), or kNone, for i < n. name_at(i) returns
  // a std::string_view and is called a few times per i.
  template <class NameAt>
  void find_batch(size_t n, NameAt&& name_at, uint32_t* out) const {
    constexpr size_t kChunk = 64;
    uint64_t h[kChunk];
    size_t at[kChunk];
    for (size_t base = 0; base < n; base += kChunk) {
      size_t m = std::min(kChunk, n - base);
      for (size_t i = 0; i < m; ++i) {
        h[i] = hash(name_at(base + i));
        at[i] = h[i] & (slots_.size() - 1);
        __builtin_prefetch(&slots_[at[i]]);
      }
      for (size_t i = 0; i < m; ++i) {
        const Slot& s = slots_[at[i]];
        if (s.len || s.id != kNone) __builtin_prefetch(names_.data() + s.off);
      }
      for (size_t i = 0; i < m; ++i) out[base + i] = probe(name_at(base + i), h[i]);
    }
  }

  static uint64_t hash(std::string_view name) { return std::hash<std::string_view>{}(name); }

 private:
  struct Slot {
    uint32_t tag = 0;
    uint32_t id = kNone;  // kNone: empty
    uint32_t off = 0, len = 0;
  };
  static uint32_t tag_of(uint64_t h) { return static_cast<uint32_t>(h >> 32); }

  uint32_t probe(std::string_view name, uint64_t h) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id == kNone) return kNone;
      if (s.tag == tag_of(h) && s.len == name.size() && std::string_view(names_.data() + s.off, s.len) == name)
        return s.id;
    }
  }

  void place(const Slot& s, uint64_t h) {
    size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    while (slots_[i].id != kNone) i = (i + 1) & mask;
    slots_[i] = s;
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old)
      if (s.id != kNone) place(s, hash(std::string_view(names_.data() + s.off, s.len)));
  }

  std::vector<Slot> slots_;
  std::string names_;  // every name, back to back
  size_t size_ = 0;
};

}  // namespace stele::metrics
