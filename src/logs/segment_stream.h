// StreamFiles: one stream's files on disk -- the wal (uncompressed tail,
// fdatasync'ed once per group commit) and its segments of zstd blocks -- with
// recovery, block cutting, segment rollover and retention deletes. Internal
// to LogStore.
//
// Layout: <store>/<stream key>/wal and <store>/<stream key>/<first seq, 20 digits>.seg
// Invariant: every record of the stream is in a segment block or in the wal;
// the wal is only replaced (wal.new + rename) after the segments it no longer
// covers are fdatasync'ed.
//
// Thread-safety: writer methods (write_wal, commit, cut_blocks,
// rewrite_wal_if_big, flush, roll_if_old, delete_segment) need the store's
// writer mutex (sync_wal: see below); `mu` guards `segments` and the pending
// tail for readers (snapshot()).
#pragma once
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "logs/segment.h"

namespace stele::logs {

struct BlockRef {
  uint64_t offset = 0;
  uint32_t size = 0;  // whole frame
  BlockHeader h;
};

struct SegmentInfo {
  std::string path;
  uint64_t bytes = 0;
  std::vector<BlockRef> blocks;  // sparse index, in file order
  int64_t first_write_ms() const { return blocks.empty() ? 0 : blocks.front().h.write_ms; }
  int64_t last_write_ms() const { return blocks.empty() ? 0 : blocks.back().h.write_ms; }
};

// What a reader needs from one stream, copied under its mutex.
struct StreamSnapshot {
  struct Block {
    std::string path;
    BlockRef ref;
  };
  std::vector<Block> blocks;
  std::string pending;  // encoded records not yet in a block
  BlockHeader pending_h;
};

struct StreamLimits {
  size_t block_bytes;
  uint64_t segment_bytes;
  int64_t segment_age_ms;
  size_t dedup_window;
  uint64_t wal_rewrite_bytes;
  int zstd_level;
};

class StreamFiles {
 public:
  StreamFiles(std::string key, std::string dir, StreamLimits limits);
  ~StreamFiles();
  StreamFiles(const StreamFiles&) = delete;
  StreamFiles& operator=(const StreamFiles&) = delete;

  const std::string& key() const { return key_; }
  // Creates (new stream) or recovers (existing) the files; torn tails are truncated.
  Result<void> open(bool create);
  uint64_t last_seq() const { return last_seq_; }

  bool seen_chunk(std::string_view id) const { return chunk_set_.count(id) != 0; }
  // An append is four steps (group commit: several requests per step 1-2):
  // 1. write_wal: appends whole kRecords frames to the wal. On a failed
  //    write the wal is cut back to where it was.
  Result<void> write_wal(std::string_view frames);
  // 2. sync_wal: fdatasyncs the wal. Touches only the wal's fd, so another
  //    thread may run it while the writer runs cut_blocks (same stream too).
  Result<void> sync_wal() const;
  // 3. commit: one frame's records (seqs h.first_seq..h.last_seq), now
  //    durable, become visible to readers; chunk_id joins the dedup window.
  void commit(std::string_view records, const BlockHeader& h, std::string_view chunk_id);
  // 4. later, compaction: cut_blocks compresses a tail that reached
  //    block_bytes into segment blocks; rewrite_wal_if_big rewrites an
  //    oversized wal (3 more fsyncs). Failures are logged: they only delay it.
  bool wants_cut() const { return pending_.size() >= lim_.block_bytes; }
  bool wants_wal_rewrite() const { return wal_bytes_ > 4 * lim_.block_bytes + lim_.wal_rewrite_bytes; }
  void cut_blocks(int64_t now_ms);
  void rewrite_wal_if_big();
  // Compresses the pending tail into a block and rewrites the wal.
  Result<void> flush(int64_t now_ms);
  // Closes the active segment when it is past segment_age_ms (retention can then delete it).
  Result<void> roll_if_old(int64_t now_ms);

  // Retention: segments other than the active one, oldest first.
  struct Deletable {
    std::string path;
    uint64_t bytes;
    int64_t last_write_ms;
  };
  std::vector<Deletable> deletable() const;
  Result<void> delete_segment(const std::string& path);
  uint64_t disk_bytes() const;

  StreamSnapshot snapshot(bool (*keep)(const BlockHeader&, const void*), const void* arg) const;
  std::vector<std::string> segment_paths() const;

 private:
  Result<void> recover_segments();
  Result<void> recover_wal();
  Result<void> cut_block(int64_t now_ms);
  Result<void> ensure_segment(int64_t now_ms, uint64_t first_seq);
  Result<void> close_active();
  Result<void> rewrite_wal();
  void remember_chunk(std::string_view id);

  std::string key_, dir_, wal_path_;
  StreamLimits lim_;
  // Writer-only state.
  int wal_fd_ = -1;
  uint64_t wal_bytes_ = 0;
  int seg_fd_ = -1;          // active segment = segments_.back() when >= 0
  bool seg_dirty_ = false;   // blocks written but not yet fdatasync'ed
  uint64_t last_seq_ = 0;
  std::deque<std::string> chunks_;
  struct Hash {  // lets seen_chunk look up a string_view without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> chunk_set_;

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<SegmentInfo>> segments_;  // GUARDED_BY(mu_)
  std::string pending_;                                 // GUARDED_BY(mu_)
  BlockHeader pending_h_;                               // GUARDED_BY(mu_)
};

}  // namespace stele::logs
