// The Engine API stream decoders, fed the same bytes split at every offset.
#include "docker/stream_decoders.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace stele::docker {
namespace {

std::string frame(uint8_t stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>(n >> (24 - 8 * i));
  return h + payload;
}

using PerStream = std::map<StreamKind, std::string>;

PerStream decode_split(const std::string& bytes, size_t at) {
  FrameDecoder d;
  PerStream out;
  auto sink = [&](StreamKind k, std::string_view data) { out[k].append(data); };
  EXPECT_TRUE(d.feed(std::string_view(bytes).substr(0, at), sink));
  EXPECT_TRUE(d.feed(std::string_view(bytes).substr(at), sink));
  EXPECT_TRUE(d.at_boundary());
  return out;
}

TEST(FrameDecoder, SeparatesStdoutAndStderrWhereverTheBytesAreSplit) {
  std::string big(70000, 'x');  // a length using three bytes of the header
  std::string head = frame(1, "hello\n") + frame(2, "oops\n") + frame(1, "");
  std::string bytes = head + frame(1, big) + frame(2, "bye");
  size_t big_from = head.size() + 8 + 16, big_to = head.size() + 8 + big.size() - 16;
  for (size_t at = 0; at <= bytes.size(); at += (at > big_from && at < big_to) ? 997 : 1) {
    auto out = decode_split(bytes, at);
    ASSERT_EQ(out[StreamKind::kStdout], "hello\n" + big) << "split at " << at;
    ASSERT_EQ(out[StreamKind::kStderr], "oops\nbye") << "split at " << at;
  }
}

TEST(FrameDecoder, OneByteAtATime) {
  std::string bytes = frame(2, "e1") + frame(1, "o1") + frame(3, "engine trouble");
  FrameDecoder d;
  std::vector<std::pair<StreamKind, std::string>> got;
  for (char c : bytes)
    ASSERT_TRUE(d.feed(std::string_view(&c, 1), [&](StreamKind k, std::string_view s) {
      if (got.empty() || got.back().first != k) got.emplace_back(k, "");
      got.back().second.append(s);
    }));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(StreamKind::kStderr, std::string("e1")));
  EXPECT_EQ(got[1], std::make_pair(StreamKind::kStdout, std::string("o1")));
  EXPECT_EQ(got[2], std::make_pair(StreamKind::kSystemError, std::string("engine trouble")));
}

TEST(FrameDecoder, HalfAFrameIsNotABoundary) {
  FrameDecoder d;
  auto sink = [](StreamKind, std::string_view) {};
  ASSERT_TRUE(d.feed(frame(1, "abc").substr(0, 9), sink));
  EXPECT_FALSE(d.at_boundary());
}

TEST(FrameDecoder, RawTtyBytesAreRefusedAndStayRefused) {
  FrameDecoder d;
  auto sink = [](StreamKind, std::string_view) {};
  auto r = d.feed("hello world\n", sink);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a multiplexed stream"), std::string::npos);
  EXPECT_FALSE(d.feed(frame(1, "ok"), sink));
}

std::vector<Json> lines_split(const std::string& bytes, size_t at) {
  JsonLinesDecoder d;
  std::vector<Json> out;
  auto sink = [&](Json j) { out.push_back(std::move(j)); };
  EXPECT_TRUE(d.feed(std::string_view(bytes).substr(0, at), sink));
  EXPECT_TRUE(d.feed(std::string_view(bytes).substr(at), sink));
  EXPECT_TRUE(d.finish(sink));
  return out;
}

TEST(JsonLinesDecoder, DecodesEveryLineWhereverTheBytesAreSplit) {
  std::string bytes =
      "{\"status\":\"start\",\"id\":\"abc\"}\n\r\n{\"stream\":\"Step 1/2 : FROM x\\n\"}\r\n\n{\"aux\":{\"ID\":\"sha256:1\"}}";
  for (size_t at = 0; at <= bytes.size(); ++at) {
    auto out = lines_split(bytes, at);
    ASSERT_EQ(out.size(), 3u) << "split at " << at;
    EXPECT_EQ(out[0]["status"], "start");
    EXPECT_EQ(out[1]["stream"], "Step 1/2 : FROM x\n");
    EXPECT_EQ(out[2]["aux"]["ID"], "sha256:1");
  }
}

TEST(JsonLinesDecoder, RefusesGarbageAndOverlongLines) {
  JsonLinesDecoder d;
  auto sink = [](Json) {};
  auto r = d.feed("{\"a\":1}\nnot json\n", sink);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("bad JSON line"), std::string::npos);
  EXPECT_FALSE(d.feed("{}\n", sink));

  JsonLinesDecoder small(16);
  auto r2 = small.feed(std::string(10, ' ') + std::string(10, ' '), sink);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("longer than 16 bytes"), std::string::npos);
}

TEST(BuildProgress, DeliversWholeLinesAndTheImageId) {
  std::vector<std::string> lines;
  BuildProgress p([&](std::string_view l) { lines.emplace_back(l); });
  p.on_message(Json{{"stream", "Step 1/2 : FROM stele/busybox:latest\n"}});
  p.on_message(Json{{"stream", " ---> abc"}});
  p.on_message(Json{{"stream", "123\nStep 2/2 : RUN true\n"}});
  p.on_message(Json{{"aux", {{"ID", "sha256:feed"}}}});
  p.on_message(Json{{"stream", "Successfully built feed"}});
  auto id = p.finish();
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, "sha256:feed");
  EXPECT_EQ(lines, (std::vector<std::string>{"Step 1/2 : FROM stele/busybox:latest", " ---> abc123",
                                              "Step 2/2 : RUN true", "Successfully built feed"}));
}

TEST(BuildProgress, TheBuildsErrorIsTheFailure) {
  BuildProgress p(nullptr);
  p.on_message(Json{{"errorDetail", {{"code", 1}, {"message", "The command '/bin/sh -c false' returned a non-zero code: 1"}}},
                    {"error", "The command '/bin/sh -c false' returned a non-zero code: 1"}});
  auto id = p.finish();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().message, "The command '/bin/sh -c false' returned a non-zero code: 1");

  BuildProgress none(nullptr);
  EXPECT_FALSE(none.finish());
}

}  // namespace
}  // namespace stele::docker
