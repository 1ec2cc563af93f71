#include "pipeline/pktline.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using namespace std::string_view_literals;
using stele::pipeline::kPktMaxLength;
using stele::pipeline::kPktMaxPayload;
using stele::pipeline::kSideband64kMaxData;
using stele::pipeline::Packet;
using stele::pipeline::parse_receive_commands;
using stele::pipeline::pkt_delim;
using stele::pipeline::pkt_flush;
using stele::pipeline::pkt_line;
using stele::pipeline::pkt_response_end;
using stele::pipeline::PktLineReader;
using stele::pipeline::sideband;

namespace {

// Captured with git 2.39.5: `git push -o ci.skip -o note=x` of a new branch
// to a bare repository with receive.advertisePushOptions (the receive-pack
// side tee'd to a file), cut after the pack's 12-byte header.
constexpr std::string_view kPushWithOptions =
    "00bc0000000000000000000000000000000000000000 e320e6bbb4193e1af89d88a0e1a895f9f439b3cb refs/heads/main\0"
    " report-status-v2 side-band-64k quiet push-options object-format=sha1 agent=git/2.39.5"
    "0000000bci.skip000anote=x0000PACK\0\0\0\x02\0\0\0\x03"sv;

// The second push of the same repository: an update of main plus a new
// branch (two commands, no push options requested).
constexpr std::string_view kPushTwoRefs =
    "00afe320e6bbb4193e1af89d88a0e1a895f9f439b3cb d6c56738926ca6c5aad159b55b03e00621f6685a refs/heads/main\0"
    " report-status-v2 side-band-64k quiet object-format=sha1 agent=git/2.39.5"
    "00660000000000000000000000000000000000000000 d6c56738926ca6c5aad159b55b03e00621f6685a refs/heads/other"
    "0000PACK\0\0\0\x02\0\0\0\x03"sv;

std::vector<Packet> read_all(PktLineReader& r, size_t limit = SIZE_MAX) {
  std::vector<Packet> out;
  while (out.size() < limit) {
    auto p = r.next();
    EXPECT_TRUE(p) << p.error().message;
    if (!p || !*p) return out;
    out.push_back(std::move(**p));
  }
  return out;
}

Packet data(std::string s) { return Packet{Packet::Kind::data, std::move(s)}; }
Packet flush() { return Packet{Packet::Kind::flush, ""}; }

}  // namespace

TEST(PktLine, WritesLengthIncludingHeader) {
  EXPECT_EQ(pkt_line("a\n"), "0006a\n");
  EXPECT_EQ(pkt_line(""), "0004");
  EXPECT_EQ(pkt_line(std::string(kPktMaxPayload, 'x')).substr(0, 4), "fff0");
  EXPECT_EQ(pkt_flush(), "0000");
  EXPECT_EQ(pkt_delim(), "0001");
  EXPECT_EQ(pkt_response_end(), "0002");
}

TEST(PktLine, RoundTripsDataAndSpecialPackets) {
  std::string big(kPktMaxPayload, 'z');
  std::string stream = pkt_line("hello\n") + pkt_line("") + pkt_delim() + pkt_line(std::string("\0bin\xff", 5)) +
                       pkt_response_end() + pkt_line(big) + pkt_flush();
  PktLineReader r;
  r.feed(stream);
  auto packets = read_all(r);
  std::vector<Packet> want = {data("hello\n"), data(""), Packet{Packet::Kind::delim, ""},
                              data(std::string("\0bin\xff", 5)), Packet{Packet::Kind::response_end, ""},
                              data(big), flush()};
  EXPECT_EQ(packets, want);
  EXPECT_EQ(r.consumed(), stream.size());
  EXPECT_TRUE(r.rest().empty());
}

TEST(PktLine, PartialFeedsGiveTheSamePackets) {
  std::string stream = pkt_line("first line\n") + pkt_flush() + pkt_line(std::string(3000, 'q')) + "PACKtail";
  for (size_t step : {1u, 2u, 3u, 5u, 7u, 1000u}) {
    PktLineReader r;
    std::vector<Packet> got;
    for (size_t off = 0; off < stream.size(); off += step) {
      r.feed(std::string_view(stream).substr(off, step));
      auto more = read_all(r, 3 - got.size());  // the caller stops before the raw tail
      got.insert(got.end(), more.begin(), more.end());
    }
    EXPECT_EQ(got, (std::vector<Packet>{data("first line\n"), flush(), data(std::string(3000, 'q'))})) << step;
    EXPECT_EQ(r.rest(), "PACKtail") << step;  // raw bytes after the packets stay unread
  }
}

TEST(PktLine, IncompleteHeaderOrPayloadWaits) {
  PktLineReader r;
  r.feed("00");
  EXPECT_FALSE(*r.next());
  r.feed("0ahello");
  EXPECT_FALSE(*r.next());  // 10 bytes announced, 9 here
  r.feed("!");
  auto p = r.next();
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->payload, "hello!");
}

TEST(PktLine, BadHexIsAnErrorNamingTheBytesAndOffset) {
  PktLineReader r;
  r.feed(pkt_line("ok") + "00g1rest");
  ASSERT_TRUE(*r.next());
  auto p = r.next();
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("\"00g1\""), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("offset 6"), std::string::npos) << p.error().message;
  EXPECT_EQ(p.error().code, 400);
  r.feed("0000");
  EXPECT_FALSE(r.next());  // the error sticks
}

TEST(PktLine, NonPrintableHeaderBytesAreEscaped) {
  PktLineReader r;
  r.feed(std::string("\x01\x02zz", 4));
  auto p = r.next();
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("\\x01\\x02zz"), std::string::npos) << p.error().message;
}

TEST(PktLine, TooLongAndLengthThreeAreRefused) {
  for (std::string_view h : {"fff1"sv, "ffff"sv, "0003"sv}) {
    PktLineReader r;
    r.feed(h);
    auto p = r.next();
    ASSERT_FALSE(p) << h;
    EXPECT_NE(p.error().message.find("65520"), std::string::npos) << p.error().message;
  }
  PktLineReader ok;
  ok.feed("fff0");  // the longest allowed: waits for its payload
  EXPECT_TRUE(ok.next());
}

TEST(PktLine, UppercaseHexIsRead) {
  PktLineReader r;
  r.feed("000Ahello!");
  auto p = r.next();
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->payload, "hello!");
}

TEST(Sideband, SplitsA200kPayloadIntoMaximalPackets) {
  std::string payload;
  for (size_t i = 0; i < 200 * 1024; ++i) payload += static_cast<char>('a' + i % 26);
  std::string framed = sideband(2, payload);
  PktLineReader r;
  r.feed(framed);
  auto packets = read_all(r);
  ASSERT_EQ(packets.size(), 4u);  // 3 × 65515 + 8355
  std::string joined;
  for (const auto& p : packets) {
    ASSERT_EQ(p.kind, Packet::Kind::data);
    ASSERT_GE(p.payload.size(), 2u);
    EXPECT_EQ(p.payload[0], '\2');
    EXPECT_LE(p.payload.size() + 4, kPktMaxLength);
    joined += p.payload.substr(1);
  }
  EXPECT_EQ(packets[0].payload.size(), kSideband64kMaxData + 1);
  EXPECT_EQ(packets[3].payload.size(), payload.size() - 3 * kSideband64kMaxData + 1);
  EXPECT_EQ(joined, payload);
  EXPECT_EQ(framed.substr(0, 4), "fff0");
}

TEST(Sideband, ChannelsAndSmallLimit) {
  EXPECT_EQ(sideband(1, "PACK"), std::string("0009\1PACK"));
  EXPECT_EQ(sideband(3, "boom\n"), std::string("000a\3boom\n"));
  EXPECT_EQ(sideband(2, ""), "");
  EXPECT_EQ(sideband(2, "abcde", 2), std::string("0007\2ab0007\2cd0006\2e"));
}

TEST(ReceiveCommands, RealPushWithPushOptions) {
  auto r = parse_receive_commands(kPushWithOptions);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->commands.size(), 1u);
  EXPECT_EQ(r->commands[0].old_sha, std::string(40, '0'));
  EXPECT_EQ(r->commands[0].new_sha, "e320e6bbb4193e1af89d88a0e1a895f9f439b3cb");
  EXPECT_EQ(r->commands[0].ref, "refs/heads/main");
  EXPECT_TRUE(r->commands[0].is_create());
  EXPECT_FALSE(r->commands[0].is_delete());
  EXPECT_EQ(r->capabilities, (std::vector<std::string>{"report-status-v2", "side-band-64k", "quiet", "push-options",
                                                         "object-format=sha1", "agent=git/2.39.5"}));
  EXPECT_TRUE(r->has_capability("side-band-64k"));
  EXPECT_TRUE(r->has_capability("agent"));
  EXPECT_FALSE(r->has_capability("side-band"));
  EXPECT_EQ(r->capability_value("agent"), "git/2.39.5");
  EXPECT_EQ(r->push_options, (std::vector<std::string>{"ci.skip", "note=x"}));
  EXPECT_EQ(kPushWithOptions.substr(r->pack_offset, 4), "PACK");
}

TEST(ReceiveCommands, RealPushOfTwoRefs) {
  auto r = parse_receive_commands(kPushTwoRefs);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->commands.size(), 2u);
  EXPECT_EQ(r->commands[0].old_sha, "e320e6bbb4193e1af89d88a0e1a895f9f439b3cb");
  EXPECT_EQ(r->commands[0].new_sha, "d6c56738926ca6c5aad159b55b03e00621f6685a");
  EXPECT_FALSE(r->commands[0].is_create());
  EXPECT_EQ(r->commands[1].ref, "refs/heads/other");
  EXPECT_TRUE(r->commands[1].is_create());
  EXPECT_TRUE(r->push_options.empty());
  EXPECT_EQ(kPushTwoRefs.substr(r->pack_offset, 4), "PACK");
}

TEST(ReceiveCommands, TruncatedPrefixAsksForMore) {
  for (size_t n : {0u, 3u, 50u, 190u, 200u}) {  // before the first, within, before the options' flush
    auto r = parse_receive_commands(kPushWithOptions.substr(0, n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code, 0) << n << ": " << r.error().message;
  }
  EXPECT_TRUE(parse_receive_commands(kPushWithOptions.substr(0, 217)));  // up to the pack exactly
}

TEST(ReceiveCommands, DeleteSha256AndLf) {
  std::string old64(64, 'a'), zero64(64, '0');
  std::string body = pkt_line(old64 + " " + zero64 + " refs/heads/gone\0 report-status object-format=sha256\n"s) +
                     pkt_flush();
  auto r = parse_receive_commands(body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->commands[0].is_delete());
  EXPECT_EQ(r->commands[0].ref, "refs/heads/gone");
  EXPECT_EQ(r->capabilities.back(), "object-format=sha256");
  EXPECT_EQ(r->pack_offset, body.size());
}

TEST(ReceiveCommands, EmptyPushIsJustAFlush) {
  auto r = parse_receive_commands("0000");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->commands.empty());
  EXPECT_EQ(r->pack_offset, 4u);
}

TEST(ReceiveCommands, MalformedRequestsAreRefusedNamingTheProblem) {
  std::string a(40, 'a'), b(40, 'b'), z(40, '0');
  struct Case {
    std::string body;
    std::string says;
  } cases[] = {
      {pkt_line(a + " " + b) + pkt_flush(), "command 1"},
      {pkt_line(a + " XYZ refs/heads/x") + pkt_flush(), "object ids"},
      {pkt_line(a + " " + std::string(64, 'b') + " refs/heads/x") + pkt_flush(), "length"},
      {pkt_line(z + " " + z + " refs/heads/x") + pkt_flush(), "both ids are zero"},
      {pkt_line(a + " " + b + " refs/heads/../x") + pkt_flush(), "invalid ref name"},
      {pkt_line(a + " " + b + " main") + pkt_flush(), "invalid ref name"},
      {pkt_line(a + " " + b + " refs/heads/x\0 object-format=sha256"s) + pkt_flush(), "different lengths"},
      {pkt_line(a + " " + b + " refs/heads/x") + pkt_line(a + " " + b + " refs/heads/y\0 quiet"s) + pkt_flush(),
       "only the first"},
      {pkt_line("push-cert\0 report-status"s) + pkt_flush(), "push certificates"},
      {pkt_line("shallow " + a) + pkt_flush(), "shallow"},
      {pkt_line(a + " " + b + " refs/heads/x") + pkt_delim() + pkt_flush(), "unexpected delim"},
      {"zzzz", "bad pkt-line length"},
  };
  for (const auto& c : cases) {
    auto r = parse_receive_commands(c.body);
    ASSERT_FALSE(r) << c.says;
    EXPECT_EQ(r.error().code, 400) << c.says;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
}

TEST(ReceiveCommands, ShallowLinesAreRecorded) {
  std::string a(40, 'a'), b(40, 'b'), c(40, 'c');
  auto r = parse_receive_commands(pkt_line("shallow " + c) + pkt_line(a + " " + b + " refs/heads/x") + pkt_flush());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->shallow, std::vector<std::string>{c});
  EXPECT_EQ(r->commands.size(), 1u);
}
