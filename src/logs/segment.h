// On-disk pieces of the log store: checksummed frames, the record encoding
// inside them, zstd blocks, and small POSIX file helpers. Pure functions and
// value types; no locking (the LogStore serialises writers).
//
// Frame (little-endian):  u32 body_len | u32 crc32(type, body) | u8 type | body
//   kRecords (wal):  u16 chunk_len | chunk id | records...
//   kChunks  (wal):  u32 n | n x (u16 len | chunk id)   -- dedup window carried over a wal rewrite
//   kBlock   (segment): BlockHeader (44 bytes) | zstd(records...)
// Record:  u64 seq | i64 time_ns | varint tag_len | tag | varint rec_len | msgpack map
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "logs/record.h"

namespace stele::logs {

enum class FrameType : uint8_t { kRecords = 1, kChunks = 2, kBlock = 3 };

inline constexpr size_t kFrameHeaderBytes = 9;
inline constexpr uint32_t kMaxFrameBody = 64u << 20;

// Appends one framed body to `out`.
void append_frame(std::string& out, FrameType type, std::string_view body);
// The same, built in place (no copy of the body): begin_frame() reserves the
// header and returns where it starts; append the body to `out`, then
// end_frame() fills in length and checksum.
size_t begin_frame(std::string& out);
void end_frame(std::string& out, size_t start, FrameType type);

struct Frame {
  FrameType type{};
  std::string_view body;
  size_t size = 0;  // header + body
};

// Parses the frame at the start of `data`; nullopt when it is incomplete,
// oversized, of an unknown type or fails its checksum (a torn tail).
std::optional<Frame> parse_frame(std::string_view data);

// A decoded record: views into a block's or frame's bytes.
struct StoredRecord {
  uint64_t seq = 0;
  int64_t time_ns = 0;
  std::string_view tag;
  std::string_view record;
};

void append_record(std::string& out, uint64_t seq, const LogEntry& e);
// Calls fn(StoredRecord) for each record; false if the bytes are malformed.
template <class Fn>
bool for_each_record(std::string_view data, Fn&& fn);
// Out-of-line worker for for_each_record: decodes one record at `pos`.
bool decode_record(std::string_view data, size_t& pos, StoredRecord& out);

template <class Fn>
bool for_each_record(std::string_view data, Fn&& fn) {
  size_t pos = 0;
  StoredRecord r;
  while (pos < data.size()) {
    if (!decode_record(data, pos, r)) return false;
    fn(r);
  }
  return true;
}

// Sparse index entry of one block; the header is stored uncompressed so an
// index is built by reading headers only.
struct BlockHeader {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  int64_t min_time_ns = 0;
  int64_t max_time_ns = 0;
  int64_t write_ms = 0;  // store clock when written (retention by age)
  uint32_t count = 0;
};
inline constexpr size_t kBlockHeaderBytes = 44;

// Compresses `records` (record encoding) into a kBlock frame body.
std::string encode_block(const BlockHeader& h, std::string_view records, int zstd_level);
Result<BlockHeader> decode_block_header(std::string_view body);
// Decompresses a kBlock body's records.
Result<std::string> decode_block_records(std::string_view body);

// Body of a kRecords frame (chunk id + pre-encoded records).
std::string records_body(std::string_view chunk_id, std::string_view records);
// Appends the start of a kRecords body (the chunk id) to `out`; the records follow it.
void begin_records_body(std::string& out, std::string_view chunk_id);
struct RecordsBody {
  std::string_view chunk_id;
  std::string_view records;
};
std::optional<RecordsBody> parse_records_body(std::string_view body);

std::string chunks_body(const std::vector<std::string>& ids);
std::optional<std::vector<std::string>> parse_chunks_body(std::string_view body);

// POSIX helpers: errors name the path and errno text.
Result<std::string> read_file(const std::string& path);
Result<void> write_all(int fd, std::string_view data, const std::string& path);
Result<void> sync_data(int fd, const std::string& path);
Result<void> sync_dir(const std::string& dir);

}  // namespace stele::logs
