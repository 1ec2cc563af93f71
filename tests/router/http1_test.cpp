#include "router/http1.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "router/access_log.h"
#include "router/messages.h"

namespace stele::router::http1 {
namespace {

struct Parsed {
  ParseStatus status;
  ParseError err;
  std::unique_ptr<RequestHead> head = std::make_unique<RequestHead>();
};

Parsed parse(std::string_view in, size_t max_head = 8192) {
  Parsed p;
  size_t scanned = 0;
  p.status = parse_request(in, max_head, scanned, *p.head, p.err);
  return p;
}

TEST(Http1Request, ParsesLineHeadersAndHeadLength) {
  std::string in = "GET /a?b=1 HTTP/1.1\r\nHost: web.localhost\r\nX-A:  v  \r\n\r\nBODY";
  auto p = parse(in);
  ASSERT_EQ(p.status, ParseStatus::kDone) << p.err.reason;
  EXPECT_EQ(p.head->method, "GET");
  EXPECT_EQ(p.head->target, "/a?b=1");
  EXPECT_EQ(p.head->minor_version, 1);
  ASSERT_EQ(p.head->num_headers, 2u);
  EXPECT_EQ(p.head->headers[1].name, "X-A");
  EXPECT_EQ(p.head->headers[1].value, "v");
  EXPECT_EQ(p.head->head_len, in.size() - 4);
}

TEST(Http1Request, BareLfLineEndingsAreAccepted) {
  auto p = parse("GET / HTTP/1.0\nHost: x\n\n");
  ASSERT_EQ(p.status, ParseStatus::kDone) << p.err.reason;
  EXPECT_EQ(p.head->minor_version, 0);
}

TEST(Http1Request, EveryPrefixNeedsMoreAndByteByByteGivesTheSameHead) {
  std::string in = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
  RequestHead h;
  ParseError err;
  size_t scanned = 0;
  for (size_t n = 0; n < in.size(); ++n)
    ASSERT_EQ(parse_request(std::string_view(in).substr(0, n), 8192, scanned, h, err), ParseStatus::kNeedMore) << n;
  ASSERT_EQ(parse_request(in, 8192, scanned, h, err), ParseStatus::kDone);
  EXPECT_EQ(h.head_len, in.size());
  EXPECT_EQ(h.headers[1].value, "3");
}

TEST(Http1Request, OversizedHeadIs431EvenBeforeItEnds) {
  std::string in = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(10000, 'a');
  auto p = parse(in, 8192);
  ASSERT_EQ(p.status, ParseStatus::kError);
  EXPECT_EQ(p.err.status, 431);
}

TEST(Http1Request, MalformedHeadsAre400WithAReason) {
  const char* bad[] = {
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",            // two spaces
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",            // space before colon
      "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",  // obs-fold
      "GET / HTTP/1.1\r\nHost h\r\n\r\n",              // no colon
      "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",          // bare CR
      "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",         // control char in target
      "GET / HTTX/1.1\r\nHost: h\r\n\r\n",
  };
  for (const char* in : bad) {
    auto p = parse(in);
    EXPECT_EQ(p.status, ParseStatus::kError) << in;
    EXPECT_EQ(p.err.status, 400) << in;
    EXPECT_STRNE(p.err.reason, "") << in;
  }
  auto v2 = parse("GET / HTTP/2.0\r\nHost: h\r\n\r\n");
  EXPECT_EQ(v2.err.status, 505);
}

TEST(Http1Request, TooManyHeadersIs431) {
  std::string in = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) in += "X-" + std::to_string(i) + ": v\r\n";
  auto p = parse(in + "\r\n", 1 << 20);
  EXPECT_EQ(p.err.status, 431);
}

MessageInfo info_of(std::string_view in, bool& ok, ParseError& err) {  // in: a literal
  auto p = parse(in);
  EXPECT_EQ(p.status, ParseStatus::kDone) << in;
  MessageInfo info;
  ok = request_info(*p.head, info, err);
  return info;
}

TEST(Http1Request, FramingAndKeepAlive) {
  bool ok;
  ParseError err;
  auto i = info_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n", ok, err);
  EXPECT_TRUE(ok);
  EXPECT_EQ(i.body, BodyKind::kLength);
  EXPECT_EQ(i.length, 12u);
  EXPECT_TRUE(i.keep_alive);
  i = info_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n", ok, err);
  EXPECT_EQ(i.body, BodyKind::kChunked);
  EXPECT_FALSE(i.keep_alive);
  i = info_of("GET / HTTP/1.0\r\n\r\n", ok, err);
  EXPECT_TRUE(ok);
  EXPECT_FALSE(i.keep_alive);
  i = info_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", ok, err);
  EXPECT_TRUE(i.keep_alive);
  i = info_of("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", ok, err);
  EXPECT_TRUE(i.upgrade);
  EXPECT_EQ(i.upgrade_protocol, "websocket");
}

TEST(Http1Request, SmugglingShapesAreRefused) {
  const char* bad[] = {
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",  // no Host
  };
  for (const char* in : bad) {
    bool ok = true;
    ParseError err;
    info_of(in, ok, err);
    EXPECT_FALSE(ok) << in;
    EXPECT_EQ(err.status, 400) << in;
  }
}

TEST(Http1Response, FramingByStatusAndHeaders) {
  auto check = [](std::string in, bool head, BodyKind want, bool keep) {
    ResponseHead h;
    ParseError err;
    size_t scanned = 0;
    ASSERT_EQ(parse_response(in, 8192, scanned, h, err), ParseStatus::kDone) << in << err.reason;
    MessageInfo info;
    ASSERT_TRUE(response_info(h, head, info, err));
    EXPECT_EQ(info.body, want) << in;
    EXPECT_EQ(info.keep_alive, keep) << in;
  };
  check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, BodyKind::kLength, true);
  check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, BodyKind::kNone, true);
  check("HTTP/1.1 204 No Content\r\n\r\n", false, BodyKind::kNone, true);
  check("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, BodyKind::kNone, true);
  check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyKind::kChunked, true);
  check("HTTP/1.1 200 OK\r\n\r\n", false, BodyKind::kUntilClose, false);
  check("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, BodyKind::kLength, false);
  check("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", false, BodyKind::kLength, true);
  check("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, BodyKind::kNone, true);  // no reason phrase
}

TEST(Http1, HopByHopIncludesFieldsNamedByConnection) {
  Header hs[] = {{"Connection", "close, X-Secret"}, {"X-Secret", "1"}, {"X-Other", "2"}};
  EXPECT_TRUE(is_hop_by_hop("x-secret", hs, 3));
  EXPECT_TRUE(is_hop_by_hop("Keep-Alive", hs, 3));
  EXPECT_FALSE(is_hop_by_hop("X-Other", hs, 3));
  EXPECT_FALSE(is_hop_by_hop("Transfer-Encoding", hs, 3));
  EXPECT_TRUE(is_idempotent("PUT"));
  EXPECT_FALSE(is_idempotent("POST"));
}

TEST(ChunkedDecoder, FindsTheEndAcrossAnySplitAndLeavesTheRest) {
  std::string body = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n";
  std::string in = body + "GET /next";
  for (size_t step = 1; step <= in.size(); ++step) {
    ChunkedDecoder d;
    size_t used = 0;
    ChunkedDecoder::Status st = ChunkedDecoder::Status::kMore;
    for (size_t at = 0; at < in.size() && st == ChunkedDecoder::Status::kMore; at += step) {
      size_t n = d.feed(std::string_view(in).substr(at, step), st);
      used += n;
      if (st == ChunkedDecoder::Status::kMore) ASSERT_EQ(n, std::min(step, in.size() - at));
    }
    ASSERT_EQ(st, ChunkedDecoder::Status::kDone) << step;
    EXPECT_EQ(used, body.size()) << step;
    EXPECT_EQ(d.payload_bytes(), 31u);
  }
}

TEST(ChunkedDecoder, RefusesBadFraming) {
  for (const char* in : {"x\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "10000000000000000\r\n", "\r\n"}) {
    ChunkedDecoder d;
    ChunkedDecoder::Status st;
    d.feed(in, st);
    EXPECT_EQ(st, ChunkedDecoder::Status::kError) << in;
    EXPECT_STRNE(d.error(), "");
  }
}

TEST(Messages, UpstreamHeadDropsHopByHopAndAppendsForwardedFor) {
  std::string in =
      "GET /p HTTP/1.1\r\nHost: web.localhost\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
      "Keep-Alive: 5\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n\r\n";
  auto p = parse(in);
  MessageInfo info;
  ParseError err;
  ASSERT_TRUE(request_info(*p.head, info, err));
  std::string out;
  write_upstream_head(*p.head, info, "/p", ForwardedFor{"127.0.0.1", "web.localhost", false}, out);
  EXPECT_EQ(out,
            "GET /p HTTP/1.1\r\nHost: web.localhost\r\nAccept: */*\r\n"
            "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: web.localhost\r\n\r\n");
}

TEST(Messages, ErrorPageEscapesAndHasLength) {
  std::string out;
  write_error_response(503, "/shop/web", "no route for host '<x>'", false, out);
  EXPECT_NE(out.find("HTTP/1.1 503 Service Unavailable\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(out.find("&lt;x&gt;"), std::string::npos);
  EXPECT_NE(out.find("/shop/web"), std::string::npos);
  size_t body = out.find("\r\n\r\n") + 4;
  EXPECT_NE(out.find("Content-Length: " + std::to_string(out.size() - body)), std::string::npos);
}

TEST(AccessLog, LtsvHasTheKeysInOrder) {
  AccessRecord r;
  r.time_ms = 1'700'000'000'123;
  r.host = "web.localhost";
  r.method = "GET";
  r.path = "/a\tb";
  r.status = 200;
  r.bytes_sent = 42;
  r.request_time_s = 0.0125;
  r.upstream = "127.0.0.1:31000";
  r.app = "/web";
  r.scheme = "https";
  EXPECT_EQ(format_ltsv(r),
            "time:2023-11-14T22:13:20.123Z\thost:web.localhost\tmethod:GET\tpath:/a b\tstatus:200\tsize:42\t"
            "reqtime:0.013\tupstream:127.0.0.1:31000\tapp:/web\ttask:-\tscheme:https");
}

}  // namespace
}  // namespace stele::router::http1
