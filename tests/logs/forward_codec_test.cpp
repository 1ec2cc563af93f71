// Forward protocol codec: hand-made msgpack vectors for every mode and the
// real senders' quirks, byte-split feeding, malformed input, round trips and
// the shared-key handshake.
#include <gtest/gtest.h>
#include <zlib.h>

#include <memory>

#include "logs/forward_codec.h"
#include "logs/msgpack.h"

using namespace stele;
using namespace stele::logs;

namespace {

// "93 a3 61" -> bytes; spaces are ignored.
std::string hex(std::string_view h) {
  std::string out;
  int hi = -1;
  for (char c : h) {
    if (c == ' ' || c == '\n') continue;
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (hi < 0) hi = v;
    else out.push_back(static_cast<char>(hi << 4 | v)), hi = -1;
  }
  return out;
}

// fixstr: a0|len, then the text (test-side, for readable vectors).
std::string fs(std::string_view s) { return std::string(1, static_cast<char>(0xa0 | s.size())) + std::string(s); }

std::string gzip_member(std::string_view in) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

constexpr int64_t kT = 1700000000LL * 1000000000LL;  // 0x6553f100 s

// {"log": "hi"} and {"log": "yo", "n": 1}
const std::string kRec1 = hex("81 a3 6c6f67 a2 6869");
const std::string kRec2 = hex("82 a3 6c6f67 a2 796f a1 6e 01");
// EventTime 1700000000.000000123 as fixext8 and as ext8 of length 8
const std::string kEvtFix = hex("d7 00 6553f100 0000007b");
const std::string kEvtExt8 = hex("c7 08 00 6553f100 0000007b");

// Decodes a whole stream; expects exactly one request. The decoders are kept
// to the end of the test program so the returned views stay valid.
ForwardMessage decode_one(std::string_view bytes, ForwardLimits limits = {}) {
  static std::vector<std::unique_ptr<ForwardDecoder>> keep;
  ForwardDecoder& d = *keep.emplace_back(std::make_unique<ForwardDecoder>(limits));
  d.feed(bytes);
  auto r = d.next();
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  if (!r || !*r) {
    ADD_FAILURE() << "no request decoded";
    return {};
  }
  ForwardMessage m = **r;
  auto again = d.next();
  EXPECT_TRUE(again && *again == nullptr) << "more than one request";
  return m;
}

// Owned copy of what a request carried, to compare across decoders.
struct SeenEntry {
  std::string tag;
  int64_t time_ns;
  std::string record;
  bool operator==(const SeenEntry&) const = default;
};
struct Seen {
  std::string tag;
  std::vector<SeenEntry> entries;
  std::optional<std::string> chunk;
  bool operator==(const Seen&) const = default;
};

Seen own(const ForwardMessage& m) {
  Seen s{std::string(m.tag), {}, {}};
  for (const auto& e : m.entries) s.entries.push_back({std::string(e.tag), e.time_ns, std::string(e.record)});
  if (m.options.chunk) s.chunk = std::string(*m.options.chunk);
  return s;
}

Result<Seen> decode_seen(std::string_view bytes, ForwardLimits limits = {}) {
  ForwardDecoder d(limits);
  d.feed(bytes);
  auto r = d.next();
  if (!r) return tl::unexpected(r.error());
  if (!*r) return fail("need more");
  return own(**r);
}

std::string error_of(std::string_view bytes, ForwardLimits limits = {}) {
  ForwardDecoder d(limits);
  d.feed(bytes);
  for (;;) {
    auto r = d.next();
    if (!r) return r.error().message;
    if (!*r) return "(no error: needs more bytes)";
  }
}

}  // namespace

// ---- the four modes, literal bytes ----

TEST(ForwardDecoder, MessageWithIntegerTime) {
  std::string req = hex("93 a3 617070 ce 6553f100") + kRec1;
  auto s = decode_seen(req);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->entries.size(), 1u);
  EXPECT_EQ(s->tag, "app");
  EXPECT_EQ(s->entries[0].tag, "app");
  EXPECT_EQ(s->entries[0].time_ns, kT);
  EXPECT_EQ(s->entries[0].record, kRec1);  // the raw map bytes, not re-encoded
  EXPECT_FALSE(s->chunk);
}

TEST(ForwardDecoder, MessageWithEventTimeAsFixext8AndExt8AndChunk) {
  for (const std::string& t : {kEvtFix, kEvtExt8}) {
    std::string req = hex("94 a3 617070") + t + kRec1 + hex("81 a5 6368756e6b a3 616263");
    ForwardMessage m = decode_one(req);
    EXPECT_EQ(m.kind, ForwardKind::kEvents);
    EXPECT_EQ(m.mode, ForwardMode::kMessage);
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].time_ns, kT + 123);
    ASSERT_TRUE(m.options.chunk);
    EXPECT_EQ(*m.options.chunk, "abc");
  }
  // The answer the sender waits for: {"ack": "abc"}.
  EXPECT_EQ(encode_ack("abc"), hex("81 a3 61636b a3 616263"));
}

TEST(ForwardDecoder, ForwardModeWithSizeOption) {
  std::string req = hex("93 a3 617070 92") + "\x92" + kEvtFix + kRec1 + hex("92 ce 6553f100") + kRec2 +
                    hex("82 a4 73697a65 02 a5 6368756e6b a2 7878");
  ForwardMessage m = decode_one(req);
  EXPECT_EQ(m.mode, ForwardMode::kForward);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.entries[0].time_ns, kT + 123);
  EXPECT_EQ(m.entries[1].time_ns, kT);
  EXPECT_EQ(m.entries[1].record, kRec2);
  EXPECT_EQ(m.options.size, 2u);
}

TEST(ForwardDecoder, PackedForwardAsBinAndAsStr) {
  std::string entries = "\x92" + kEvtFix + kRec1 + "\x92" + kEvtExt8 + kRec2;
  std::string len(1, static_cast<char>(entries.size()));
  for (const char* header : {"\xc4", "\xd9"}) {  // bin8, str8
    std::string req = hex("92 a3 617070") + header + len + entries;
    ForwardMessage m = decode_one(req);
    EXPECT_EQ(m.mode, ForwardMode::kPackedForward);
    ASSERT_EQ(m.entries.size(), 2u);
    EXPECT_EQ(m.entries[0].record, kRec1);
    EXPECT_EQ(m.entries[1].record, kRec2);
    EXPECT_EQ(m.entries[1].time_ns, kT + 123);
  }
}

TEST(ForwardDecoder, CompressedPackedForwardWithSeveralGzipMembers) {
  std::string payload = gzip_member("\x92" + kEvtFix + kRec1) + gzip_member("\x92" + kEvtFix + kRec2) +
                        gzip_member(hex("92 ce 6553f100") + kRec1);
  ASSERT_LT(payload.size(), 256u);
  std::string req = hex("93 a3 617070 c4") + std::string(1, static_cast<char>(payload.size())) + payload +
                    hex("82 aa 636f6d70726573736564 a4 677a6970 a5 6368756e6b a1 31");
  ForwardMessage m = decode_one(req);
  EXPECT_EQ(m.mode, ForwardMode::kCompressedPackedForward);
  EXPECT_TRUE(m.options.compressed);
  ASSERT_EQ(m.entries.size(), 3u);
  EXPECT_EQ(m.entries[0].record, kRec1);
  EXPECT_EQ(m.entries[1].record, kRec2);
  EXPECT_EQ(m.entries[2].time_ns, kT);
  EXPECT_EQ(*m.options.chunk, "1");
}

TEST(ForwardDecoder, CompressedTextIsNotCompressed) {
  std::string entries = "\x92" + kEvtFix + kRec1;
  std::string req = hex("93 a3 617070 c4") + std::string(1, static_cast<char>(entries.size())) + entries +
                    hex("81 aa 636f6d70726573736564 a4 74657874");
  ForwardMessage m = decode_one(req);
  EXPECT_EQ(m.mode, ForwardMode::kPackedForward);
  EXPECT_EQ(m.entries.size(), 1u);
}

// ---- real senders' quirks ----

TEST(ForwardDecoder, FluentBitTimeMetadataPairs) {
  // Forward: [tag, [[[time, {}], record]]]; PackedForward; Message [tag, [time, meta], record].
  std::string entry = hex("92 92") + kEvtFix + hex("81 a1 6b a1 76") + kRec1;
  auto fwd = decode_seen(hex("92 a3 617070 91") + entry);
  ASSERT_TRUE(fwd) << fwd.error().message;
  ASSERT_EQ(fwd->entries.size(), 1u);
  EXPECT_EQ(fwd->entries[0].time_ns, kT + 123);
  EXPECT_EQ(fwd->entries[0].record, kRec1);

  auto packed = decode_seen(hex("92 a3 617070 c4") + std::string(1, static_cast<char>(entry.size())) + entry);
  ASSERT_TRUE(packed) << packed.error().message;
  EXPECT_EQ(packed->entries, fwd->entries);

  auto msg = decode_seen(hex("93 a3 617070 92") + kEvtFix + hex("80") + kRec1);
  ASSERT_TRUE(msg) << msg.error().message;
  EXPECT_EQ(msg->entries, fwd->entries);
}

TEST(ForwardDecoder, NonMinimalHeadersAreAccepted) {
  // array32 of 3, str32 tag, uint64 time, record as map32 with str16/str32 inside.
  std::string rec = hex("df 00000001 da 0003 6c6f67 db 00000002 6869");
  std::string req = hex("dd 00000003 db 00000003 617070 cf 000000006553f100") + rec;
  ForwardMessage m = decode_one(req);
  ASSERT_EQ(m.entries.size(), 1u);
  EXPECT_EQ(m.tag, "app");
  EXPECT_EQ(m.entries[0].time_ns, kT);
  EXPECT_EQ(m.entries[0].record, rec);  // kept exactly as sent
  auto j = msgpack_to_json(m.entries[0].record);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["log"], "hi");
  // ext 16 with length 8 is an EventTime too.
  auto e16 = decode_seen(hex("93 a3 617070 c8 0008 00 6553f100 00000001") + kRec1);
  ASSERT_TRUE(e16) << e16.error().message;
  EXPECT_EQ(e16->entries[0].time_ns, kT + 1);
}

TEST(ForwardDecoder, FluentSignalStaysVisible) {
  std::string entries = "\x92" + kEvtFix + kRec1;
  std::string req = hex("93 a3 617070 c4") + std::string(1, static_cast<char>(entries.size())) + entries +
                    hex("81 ad 666c75656e745f7369676e616c 01");
  ForwardMessage m = decode_one(req);
  EXPECT_EQ(m.options.fluent_signal, 1);
  EXPECT_EQ(m.entries.size(), 1u);
  // Fluent Bit's own metrics payload is a map, not entries: handed over as is.
  std::string blob = hex("81 a4 6d657461 80");
  ForwardMessage opaque = decode_one(hex("93 a3 617070 c4 07") + blob + hex("81 ad 666c75656e745f7369676e616c 01"));
  EXPECT_TRUE(opaque.entries.empty());
  EXPECT_EQ(opaque.payload, blob);
}

TEST(ForwardDecoder, DockerLogDriverRecord) {
  // {"container_id": "abc123", "container_name": "/web", "source": "stdout", "log": "GET /"}
  std::string rec = hex("84") + fs("container_id") + fs("abc123") + fs("container_name") + fs("/web") +
                    fs("source") + fs("stdout") + fs("log") + fs("GET /");
  std::string req = hex("94") + fs("docker.abc123") + kEvtFix + rec + hex("80");
  ForwardMessage m = decode_one(req);
  ASSERT_EQ(m.entries.size(), 1u);
  EXPECT_EQ(m.tag, "docker.abc123");
  auto j = msgpack_to_json(m.entries[0].record);
  ASSERT_TRUE(j);
  EXPECT_EQ(*j, Json::parse(R"({"container_id":"abc123","container_name":"/web","source":"stdout","log":"GET /"})"));
}

TEST(ForwardDecoder, NilOrZeroTimeMeansReceiveTime) {
  for (const char* t : {"c0", "00"}) {
    auto s = decode_seen(hex("93 a3 617070") + hex(t) + kRec1);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->entries[0].time_ns, 0);
  }
  auto f = decode_seen(hex("93 a3 617070 cb 41d954fc40200000") + kRec1);  // 1700000000.5
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->entries[0].time_ns, kT + 500000000);
}

TEST(ForwardDecoder, TagPingWithEventShapeIsAnEvent) {
  ForwardMessage m = decode_one(hex("93") + fs("PING") + hex("ce 6553f100") + kRec1);
  EXPECT_EQ(m.kind, ForwardKind::kEvents);
  EXPECT_EQ(m.tag, "PING");
}

// ---- JSON requests ----

TEST(ForwardDecoder, JsonMessageAndForward) {
  ForwardDecoder d;
  d.feed(R"(["app", 1700000000, {"log": "hi"}, {"chunk": "c1"}] )"
         "\n"
         R"(["web", [[1700000000.5, {"n": 1}], [null, {"n": 2}]]])");
  auto a = d.next();
  ASSERT_TRUE(a && *a) << (a ? "need more" : a.error().message);
  EXPECT_TRUE(d.json());
  EXPECT_TRUE((*a)->json);
  EXPECT_EQ((*a)->tag, "app");
  ASSERT_EQ((*a)->entries.size(), 1u);
  EXPECT_EQ((*a)->entries[0].time_ns, kT);
  EXPECT_EQ((*a)->entries[0].record, kRec1);  // encoded to msgpack
  EXPECT_EQ(*(*a)->options.chunk, "c1");
  EXPECT_EQ(encode_ack_json("c1"), R"({"ack":"c1"})");
  auto b = d.next();
  ASSERT_TRUE(b && *b) << (b ? "need more" : b.error().message);
  EXPECT_EQ((*b)->mode, ForwardMode::kForward);
  ASSERT_EQ((*b)->entries.size(), 2u);
  EXPECT_EQ((*b)->entries[0].time_ns, kT + 500000000);
  EXPECT_EQ((*b)->entries[1].time_ns, 0);
  EXPECT_EQ(*msgpack_to_json((*b)->entries[1].record), Json::parse(R"({"n": 2})"));
  auto c = d.next();
  EXPECT_TRUE(c && *c == nullptr);
}

TEST(ForwardDecoder, JsonErrorsNameTheRequest) {
  EXPECT_NE(error_of(R"(["app", 1, "not a map"])").find("record must be an object"), std::string::npos);
  EXPECT_NE(error_of(R"(["app", 1, {"a": tru}])").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"a": 1})").find("must be an array"), std::string::npos);
  std::string deep = "[\"t\", 1, " + std::string(100, '[') + std::string(100, ']') + "]";
  EXPECT_NE(error_of(deep).find("nested deeper"), std::string::npos);
}

// ---- handshake ----

TEST(Handshake, Sha512KnownAnswers) {
  EXPECT_EQ(sha512_hex("abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  // Expected values computed with Python's hashlib.
  EXPECT_EQ(shared_key_digest("salt1", "client.example", "NONCE-0123456789", "secret"),
            "4a7d02e66f13d584cbb795c1869f8417ab078af7d277053a3003d3103e8ee6aa"
            "28205905ff24e2356458e0a9d91543952dfcaf6d119149c217d770b59ac73d57");
  EXPECT_EQ(password_digest("authsalt", "alice", "pw"),
            "7e9223ca4b94fd4ac777d3928fa140b036c186e31a6b397907ae96db320b1ece"
            "fbdef809ae83d8a744f8a96a461cd89d39aa36350b876c9f639a66b761af2537");
}

TEST(Handshake, ServerVerifiesALiteralPing) {
  const std::string digest =
      "4a7d02e66f13d584cbb795c1869f8417ab078af7d277053a3003d3103e8ee6aa"
      "28205905ff24e2356458e0a9d91543952dfcaf6d119149c217d770b59ac73d57";
  std::string ping = hex("96") + fs("PING") + fs("client.example") + fs("salt1") + hex("d9 80") + digest + fs("") + fs("");
  ForwardMessage m = decode_one(ping);
  ASSERT_EQ(m.kind, ForwardKind::kPing);
  EXPECT_EQ(m.ping.hostname, "client.example");
  EXPECT_EQ(m.ping.shared_key_salt, "salt1");
  EXPECT_TRUE(verify_ping(m.ping, "NONCE-0123456789", "secret"));
  auto wrong = verify_ping(m.ping, "NONCE-0123456789", "other");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "shared_key mismatch");
  // Our answer carries the digest of the server's hostname with the client's salt.
  std::string pong = encode_pong(true, "", "server.example", m.ping, "NONCE-0123456789", "secret");
  ForwardMessage p = decode_one(pong);
  ASSERT_EQ(p.kind, ForwardKind::kPong);
  EXPECT_TRUE(p.pong.auth_ok);
  EXPECT_EQ(p.pong.shared_key_digest,
            "f26eeb9ee0094005db9d12d085054913de0f610cee9fd8298b40b450e4d18f7e"
            "13aebbb3707e4dc18428a0201250ed9aaa87ab1f4c25b7e8f609046f900ed924");
  EXPECT_TRUE(verify_pong(p.pong, "salt1", "NONCE-0123456789", "secret"));
  EXPECT_FALSE(verify_pong(p.pong, "salt1", "NONCE-0123456789", "other"));
}

TEST(Handshake, ClientSideHeloPingWithUserAuth) {
  ForwardMessage h = decode_one(encode_helo("NONCE-0123456789", "authsalt", true));
  ASSERT_EQ(h.kind, ForwardKind::kHelo);
  EXPECT_EQ(h.helo.nonce, "NONCE-0123456789");
  EXPECT_EQ(h.helo.auth_salt, "authsalt");
  EXPECT_TRUE(h.helo.keepalive);
  ForwardMessage p = decode_one(encode_ping("client.example", "salt1", h.helo, "secret", "alice", "pw"));
  ASSERT_EQ(p.kind, ForwardKind::kPing);
  EXPECT_EQ(p.ping.username, "alice");
  EXPECT_TRUE(verify_ping(p.ping, "NONCE-0123456789", "secret", "authsalt", "pw"));
  auto bad = verify_ping(p.ping, "NONCE-0123456789", "secret", "authsalt", "nope");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "username/password mismatch");
  EXPECT_FALSE(verify_ping(p.ping, "NONCE-0123456789", "secret", "authsalt", std::nullopt));
  // A refused PONG carries the reason to the client.
  ForwardMessage refused = decode_one(encode_pong(false, "username/password mismatch", "srv", p.ping, "n", "k"));
  auto why = verify_pong(refused.pong, "salt1", "n", "k");
  ASSERT_FALSE(why);
  EXPECT_NE(why.error().message.find("username/password mismatch"), std::string::npos);
}

TEST(ForwardDecoder, AckAnswer) {
  ForwardMessage m = decode_one(hex("81 a3 61636b a3 616263"));
  EXPECT_EQ(m.kind, ForwardKind::kAck);
  EXPECT_EQ(m.ack, "abc");
}

// ---- split feeding ----

class SplitFeeding : public ::testing::TestWithParam<std::string> {};

std::string packed_request() {
  std::string entries = "\x92" + kEvtFix + kRec1 + hex("92 92") + kEvtFix + hex("80") + kRec2;
  return hex("93 a3 617070 c4") + std::string(1, static_cast<char>(entries.size())) + entries +
         hex("81 a5 6368756e6b a1 31");
}

std::string compressed_request() {
  std::string payload = gzip_member("\x92" + kEvtFix + kRec1) + gzip_member("\x92" + kEvtExt8 + kRec2);
  return hex("93 a3 617070 c4") + std::string(1, static_cast<char>(payload.size())) + payload +
         hex("81 aa 636f6d70726573736564 a4 677a6970");
}

TEST_P(SplitFeeding, EverySplitPointGivesTheSameRequest) {
  const std::string req = GetParam();
  auto whole = decode_seen(req);
  ASSERT_TRUE(whole) << whole.error().message;
  for (size_t cut = 0; cut <= req.size(); ++cut) {
    ForwardDecoder d;
    d.feed(req.substr(0, cut));
    if (cut < req.size()) {
      auto early = d.next();
      ASSERT_TRUE(early) << "cut " << cut << ": " << early.error().message;
      ASSERT_EQ(*early, nullptr) << "cut " << cut;
    }
    d.feed(req.substr(cut));
    auto r = d.next();
    ASSERT_TRUE(r && *r) << "cut " << cut;
    EXPECT_EQ(own(**r), *whole) << "cut " << cut;
  }
  // Byte by byte, twice in a row on one connection.
  ForwardDecoder d;
  int got = 0;
  std::string twice = req + (req[0] == '[' ? "\n" : "") + req;
  for (char c : twice) {
    d.feed(std::string_view(&c, 1));
    auto r = d.next();
    ASSERT_TRUE(r) << r.error().message;
    if (*r) {
      EXPECT_EQ(own(**r), *whole);
      ++got;
    }
  }
  EXPECT_EQ(got, 2);
  EXPECT_EQ(d.consumed(), twice.size());
}

INSTANTIATE_TEST_SUITE_P(
    Modes, SplitFeeding,
    ::testing::Values(hex("94 a3 617070") + kEvtFix + kRec1 + hex("81 a5 6368756e6b a1 31"),   // Message
                      hex("92 a3 617070 92") + "\x92" + kEvtExt8 + kRec1 + hex("92 92 01 80") + kRec2,  // Forward
                      packed_request(), compressed_request(),
                      std::string(R"(["app", [[1700000000, {"log": "a]\"["}]], {"chunk": "x"}])")));

// ---- malformed input ----

TEST(ForwardDecoder, MalformedRequestsSayWhatAndWhere) {
  struct Case {
    std::string bytes, expect;
  };
  std::string entries = "\x92" + kEvtFix + kRec1;
  std::vector<Case> cases = {
      {hex("93 01 ce 6553f100") + kRec1, "tag: expected str or bin, got int"},
      {hex("93 a3 617070 ce 6553f100 92 01 02"), "record: expected map, got array"},
      {hex("94 a3 617070 a1 78 80 80"), "PackedForward must have 2 or 3 elements"},
      {hex("93 a3 617070 c3") + kRec1, "second element must be a time"},
      {hex("93 a3 617070 d7 01 6553f100 00000000") + kRec1, "ext type 1 of 8 bytes is not EventTime"},
      {hex("93 a3 617070 c7 04 00 6553f100") + kRec1, "ext type 0 of 4 bytes is not EventTime"},
      {hex("93 a3 617070 d7 00 6553f100 ffffffff") + kRec1, "nanoseconds"},
      {hex("91 a3 617070"), "needs at least 2"},
      {hex("93 a0 01") + kRec1, "tag is empty"},
      {hex("93 a3 617070 c1 80"), "0xc1"},
      {hex("05"), "expected array"},
      {hex("92 a3 617070 c4 03 92 01 90"), "entry 0: record: expected map, got array"},
      // The packed payload ends inside an entry: truncation inside the request.
      {hex("92 a3 617070 c4 04 92 01 81 a1"), "truncated"},
      {hex("93 a3 617070 c4") + std::string(1, char(entries.size())) + entries +
           hex("81 aa 636f6d70726573736564 a4 7a737464"),
       "unsupported \"zstd\""},
      {hex("93 a3 617070 c4 04 01020304 81 aa 636f6d70726573736564 a4 677a6970"), "gzip: "},
      {hex("94 a3 617070 ce 6553f100") + kRec1 + hex("81 a5 6368756e6b 01"), "option chunk: expected str or bin"},
      {hex("81 a1 78 01"), "map without \"ack\""},
  };
  for (const auto& c : cases) {
    std::string err = error_of(c.bytes);
    EXPECT_NE(err.find(c.expect), std::string::npos) << "got: " << err << "\nwanted: " << c.expect;
    EXPECT_NE(err.find("byte "), std::string::npos) << err;
  }
}

TEST(ForwardDecoder, ErrorOffsetsCountFromTheStreamStart) {
  std::string good = hex("93 a3 617070 ce 6553f100") + kRec1;
  std::string bad = hex("93 a3 617070 ce 6553f100 92 01 02");  // record at offset 10 of the request
  std::string err = error_of(good + bad);
  EXPECT_NE(err.find("byte " + std::to_string(good.size() + 10) + " "), std::string::npos) << err;
  // And the decoder stays failed: the connection is closed.
  ForwardDecoder d;
  d.feed(bad);
  EXPECT_FALSE(d.next());
  d.feed(good);
  EXPECT_FALSE(d.next());
}

TEST(ForwardDecoder, CorruptAndTruncatedGzip) {
  std::string member = gzip_member("\x92" + kEvtFix + kRec1);
  std::string opts = hex("81 aa 636f6d70726573736564 a4 677a6970");
  auto req = [&](std::string payload) {
    return hex("93 a3 617070 c4") + std::string(1, char(payload.size())) + payload + opts;
  };
  EXPECT_NE(error_of(req(member.substr(0, member.size() - 6))).find("ends inside a gzip member"), std::string::npos);
  std::string flipped = member;
  flipped[12] ^= 0x55;
  EXPECT_NE(error_of(req(flipped)).find("gzip: "), std::string::npos);
  EXPECT_NE(error_of(req(member + "junk")).find("gzip: "), std::string::npos);
  EXPECT_NE(error_of(req("")).find("empty"), std::string::npos);
}

TEST(ForwardDecoder, GzipBombIsRefused) {
  // 4 MiB of one record repeated compresses to a few KiB.
  std::string entries;
  while (entries.size() < (4u << 20)) entries += "\x92" + kEvtFix + kRec1;
  std::string payload = gzip_member(entries);
  ASSERT_LT(payload.size(), 65536u);
  std::string req = hex("93 a3 617070 c5") + std::string{char(payload.size() >> 8), char(payload.size() & 0xff)} +
                    payload + hex("81 aa 636f6d70726573736564 a4 677a6970");
  ForwardLimits small;
  small.max_decompressed_bytes = 1 << 20;
  EXPECT_NE(error_of(req, small).find("exceeds 1048576 bytes"), std::string::npos);
  auto ok = decode_seen(req);  // the default limit (64 MiB) takes it
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->entries.size(), entries.size() / (1 + kEvtFix.size() + kRec1.size()));
}

TEST(ForwardDecoder, HostileSizesAreRefusedBeforeBuffering) {
  ForwardLimits limits;
  limits.max_request_bytes = 1 << 20;
  // bin32 declaring 4 GiB: refused from its 5-byte header, not after 4 GiB.
  ForwardDecoder d(limits);
  d.feed(hex("92 a3 617070 c6 ffffffff"));
  auto r = d.next();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("goes past the 1048576-byte limit"), std::string::npos) << r.error().message;
  // An array claiming 2^32-1 elements.
  EXPECT_NE(error_of(hex("dd ffffffff"), limits).find("elements"), std::string::npos);
  // A request that just keeps growing.
  ForwardDecoder g(limits);
  g.feed(hex("92 a3 617070 dd 0007a120"));  // 500000 elements of 32 bytes each
  std::string filler;
  while (filler.size() < (1u << 16)) filler += "\xbf" + std::string(31, 'a');
  Result<const ForwardMessage*> last = nullptr;
  for (int i = 0; i < 20 && last && !*last; ++i) {
    g.feed(filler);
    last = g.next();
  }
  ASSERT_FALSE(last);
  EXPECT_NE(last.error().message.find("1048576-byte limit"), std::string::npos)
      << last.error().message;
}

TEST(ForwardDecoder, DeepNestingIsRefused) {
  std::string rec = std::string(40, '\x91') + "\x01";  // [[[[...1]]]]
  std::string req = hex("93 a3 617070 01 81 a1 78") + rec;
  EXPECT_NE(error_of(req).find("nested deeper than 32"), std::string::npos);
  std::string endless(100000, '\x91');  // never completes; refused at depth 33, not at 100000
  EXPECT_NE(error_of(endless).find("nested deeper"), std::string::npos);
}

// ---- encoder round trips ----

TEST(ForwardEncoder, PackedForwardRoundTrips) {
  std::vector<OwnedLogEntry> owned = {
      {"stele.shop_web.stdout", kT + 1, kRec1},
      {"stele.shop_web.stdout", kT + 999999999, kRec2},
      {"stele.shop_web.stdout", 0, hex("80")},
  };
  std::vector<LogEntry> views;
  for (const auto& e : owned) views.push_back(e.view());
  for (bool compress : {false, true}) {
    std::string req = encode_packed_forward("stele.shop_web.stdout", views, "chunk-1", compress, 1);
    ForwardMessage m = decode_one(req);
    EXPECT_EQ(m.mode, compress ? ForwardMode::kCompressedPackedForward : ForwardMode::kPackedForward);
    EXPECT_EQ(m.options.size, 3u);
    EXPECT_EQ(m.options.fluent_signal, 1);
    Seen s = own(m);
    EXPECT_EQ(s.chunk, "chunk-1");
    ASSERT_EQ(s.entries.size(), owned.size());
    for (size_t i = 0; i < owned.size(); ++i)
      EXPECT_EQ(s.entries[i], (SeenEntry{owned[i].tag, owned[i].time_ns, owned[i].record})) << i;
  }
  ForwardMessage no_ack = decode_one(encode_packed_forward("t", views, "", false));
  EXPECT_FALSE(no_ack.options.chunk);
  EXPECT_FALSE(no_ack.options.fluent_signal);
}

TEST(ForwardEncoder, LargeBatchUsesBin32AndKeepsEveryEntry) {
  std::string big(300, 'x');
  std::string rec = hex("81 a3 6c6f67 d9") + std::string(1, char(200)) + big.substr(0, 200);
  std::vector<LogEntry> views(1000, LogEntry{"t", kT, rec});
  std::string req = encode_packed_forward("t", views, "c", false);
  ForwardMessage m = decode_one(req);
  ASSERT_EQ(m.entries.size(), 1000u);
  EXPECT_EQ(m.entries[999].record, rec);
}

// ---- msgpack -> JSON ----

TEST(MsgpackToJson, ConvertsTimesBytesAndOddKeys) {
  // {"t": EventTime, "b": bin "\xff", 1: [nil, true, -1, 1.5], "u": uint64 max}
  std::string m = hex("84 a1 74") + kEvtFix + hex("a1 62 c4 01 ff 01 94 c0 c3 ff cb 3ff8000000000000 a1 75 cf ffffffffffffffff");
  auto j = msgpack_to_json(m);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ((*j)["t"], "2023-11-14T22:13:20.000000123Z");
  EXPECT_EQ((*j)["b"], "\xef\xbf\xbd");  // invalid UTF-8 replaced, dump() never throws
  EXPECT_EQ((*j)["1"], Json::parse("[null, true, -1, 1.5]"));
  EXPECT_EQ((*j)["u"].get<uint64_t>(), UINT64_MAX);
  EXPECT_NO_THROW(j->dump());
}

TEST(MsgpackToJson, RefusesBrokenInput) {
  EXPECT_NE(msgpack_to_json(hex("82 a1 61 01")).error().message.find("truncated"), std::string::npos);
  EXPECT_NE(msgpack_to_json(hex("01 02")).error().message.find("trailing"), std::string::npos);
  EXPECT_NE(msgpack_to_json(std::string(100, '\x91') + "\x01").error().message.find("nested deeper"),
            std::string::npos);
  EXPECT_FALSE(msgpack_to_json(""));
}
