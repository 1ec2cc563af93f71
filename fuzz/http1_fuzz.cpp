// Fuzz target for the router's HTTP/1.x head parser and chunked boundary
// finder (src/router/http1.cpp), which see every byte clients and upstreams
// send. It never crashes or reads out of bounds; a parsed head's views lie
// inside the input, names are tokens and values hold no CR/LF; the head
// length does not depend on how the bytes arrived (byte-by-byte feeding with
// the `scanned` carry gives the same answer as one call; every shorter prefix
// needs more); the chunked decoder finds the same end and payload size
// however the input is split, never consumes past it, and errors stick.
// fuzz-sources: src/router/http1.cpp
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "router/http1.h"

using namespace stele::router::http1;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "http1_fuzz: %s\n", what);
  std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

template <class Head>
void check_headers(const Head& h, std::string_view in) {
  if (h.head_len == 0 || h.head_len > in.size()) violated("head length out of range");
  if (h.num_headers > kMaxHeaders) violated("too many headers");
  for (size_t i = 0; i < h.num_headers; ++i) {
    const Header& f = h.headers[i];
    if (f.name.empty() || !inside(f.name, in.substr(0, h.head_len)) || !inside(f.value, in.substr(0, h.head_len)))
      violated("header view outside the head");
    for (char c : f.name)
      if (c == ':' || c == ' ' || c == '\r' || c == '\n') violated("bad character in a header name");
    for (char c : f.value)
      if (c == '\r' || c == '\n') violated("CR/LF in a header value");
    if (!f.value.empty() && (f.value.front() == ' ' || f.value.back() == ' ')) violated("untrimmed value");
  }
}

template <class Head, class Parse>
void check_head(std::string_view in, size_t max_head, Parse parse) {
  auto whole = std::make_unique<Head>();
  ParseError err;
  size_t scanned = 0;
  ParseStatus st = parse(in, max_head, scanned, *whole, err);
  if (st == ParseStatus::kError && (err.reason == nullptr || err.reason[0] == '\0')) violated("error without reason");
  if (st == ParseStatus::kError && err.status != 400 && err.status != 431 && err.status != 505)
    violated("unexpected error status");
  if (st == ParseStatus::kDone) check_headers(*whole, in);

  // Arriving byte by byte: the same outcome at the same point.
  auto part = std::make_unique<Head>();
  ParseError perr;
  size_t pscanned = 0;
  for (size_t n = 1; n <= in.size(); ++n) {
    ParseStatus ps = parse(in.substr(0, n), max_head, pscanned, *part, perr);
    if (ps == ParseStatus::kNeedMore) continue;
    if (ps != st) violated("status depends on how the bytes arrived");
    if (ps == ParseStatus::kDone && (part->head_len != whole->head_len || n != whole->head_len))
      violated("head found at a different place when fed byte by byte");
    if (ps == ParseStatus::kError && perr.status != err.status) violated("error depends on how the bytes arrived");
    return;
  }
  if (st != ParseStatus::kNeedMore) violated("incremental parse never finished");
}

void check_info(std::string_view in) {
  auto req = std::make_unique<RequestHead>();
  ParseError err;
  size_t scanned = 0;
  if (parse_request(in, 1 << 16, scanned, *req, err) == ParseStatus::kDone) {
    MessageInfo info;
    if (request_info(*req, info, err)) {
      if (info.body == BodyKind::kUntilClose) violated("a request body until close");
      if (info.body == BodyKind::kLength && info.length == 0) violated("zero length body not kNone");
      if (!inside(info.host, in)) violated("host view outside the input");
    }
    for (size_t i = 0; i < req->num_headers; ++i) (void)is_hop_by_hop(req->headers[i].name, req->headers, req->num_headers);
    (void)is_idempotent(req->method);
  }
  auto resp = std::make_unique<ResponseHead>();
  scanned = 0;
  if (parse_response(in, 1 << 16, scanned, *resp, err) == ParseStatus::kDone) {
    MessageInfo info;
    if (response_info(*resp, false, info, err) && info.body == BodyKind::kUntilClose && info.keep_alive)
      violated("keep-alive with a close-delimited body");
    if (resp->status < 100 || resp->status > 999) violated("status out of range");
  }
}

struct ChunkOutcome {
  ChunkedDecoder::Status status = ChunkedDecoder::Status::kMore;
  size_t used = 0;
  uint64_t payload = 0;
};

ChunkOutcome run_chunked(std::string_view in, uint32_t seed) {
  ChunkedDecoder d;
  ChunkOutcome o;
  size_t at = 0;
  while (at < in.size() && o.status == ChunkedDecoder::Status::kMore) {
    size_t n = in.size() - at;
    if (seed) {
      seed = seed * 1103515245u + 12345u;
      n = std::min<size_t>(n, 1 + (seed >> 16) % 17);
    }
    size_t used = d.feed(in.substr(at, n), o.status);
    if (used > n) violated("decoder consumed more than it was given");
    if (o.status == ChunkedDecoder::Status::kMore && used != n) violated("decoder stopped early without a reason");
    o.used += used;
    at += n;
  }
  if (o.status == ChunkedDecoder::Status::kError) {
    ChunkedDecoder::Status again;
    if (d.feed("0\r\n\r\n", again) != 0 || again != ChunkedDecoder::Status::kError) violated("error does not stick");
  }
  if (o.status == ChunkedDecoder::Status::kDone && !d.done()) violated("done() disagrees");
  o.payload = d.payload_bytes();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t max_head = size > 0 && (data[0] & 1) ? 64 : 4096;  // small limits reach the 431 paths
  check_head<RequestHead>(in, max_head, parse_request);
  check_head<ResponseHead>(in, max_head, parse_response);
  check_info(in);

  ChunkOutcome whole = run_chunked(in, 0);
  uint32_t seed = 2166136261u;
  for (uint8_t b : in.substr(0, 16)) seed = (seed ^ b) * 16777619u;
  ChunkOutcome split = run_chunked(in, seed | 1);
  if (whole.status != split.status) violated("chunked status depends on the split");
  if (whole.status == ChunkedDecoder::Status::kDone && (whole.used != split.used || whole.payload != split.payload))
    violated("chunked end depends on the split");
  if (whole.payload > in.size()) violated("more payload than input");
  return 0;
}
