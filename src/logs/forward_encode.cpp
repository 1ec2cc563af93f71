// Forward protocol encoders: PackedForward / CompressedPackedForward for the
// agent's shipping and --forward-to, and acks.
#include "logs/forward_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "logs/msgpack.h"

namespace stele::logs {
// ---- encoding ----

namespace {

std::string gzip(std::string_view in) {
  z_stream zs{};
  // Fastest level: the agent ships on the same cores the apps run on.
  deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) std::abort();  // deflateBound is a guarantee
  return out;
}

}  // namespace

std::string encode_packed_forward(std::string_view tag, std::span<const LogEntry> entries,
                                  std::string_view chunk_id, bool compress,
                                  std::optional<int64_t> fluent_signal, bool replicated) {
  std::string body;
  size_t bytes = 0;
  for (const LogEntry& e : entries) bytes += e.record.size() + 11;
  body.reserve(bytes);
  msgpack::Writer b(body);
  for (const LogEntry& e : entries) {
    b.array(2);
    b.event_time(e.time_ns);
    b.raw(e.record);
  }
  if (compress) body = gzip(body);
  std::string out;
  out.reserve(body.size() + tag.size() + chunk_id.size() + 64);
  msgpack::Writer w(out);
  w.array(3);
  w.str(tag);
  w.bin(body);
  w.map(1 + !chunk_id.empty() + compress + fluent_signal.has_value() + replicated);
  if (!chunk_id.empty()) {
    w.str("chunk");
    w.str(chunk_id);
  }
  w.str("size");
  w.uint(entries.size());
  if (compress) {
    w.str("compressed");
    w.str("gzip");
  }
  if (fluent_signal) {
    w.str("fluent_signal");
    w.integer(*fluent_signal);
  }
  if (replicated) {
    w.str("stele_replicated");
    w.boolean(true);
  }
  return out;
}

std::string encode_ack(std::string_view chunk) {
  std::string out;
  msgpack::Writer w(out);
  w.map(1);
  w.str("ack");
  w.str(chunk);
  return out;
}

std::string encode_ack_json(std::string_view chunk) {
  return Json{{"ack", std::string(chunk)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}


}  // namespace stele::logs
