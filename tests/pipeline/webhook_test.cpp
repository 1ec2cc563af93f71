// X-Hub-Signature-256 verification, against GitHub's documented example.
#include <gtest/gtest.h>

#include "pipeline/pipeline.h"

using stele::pipeline::valid_hub_signature;

namespace {
const std::string kSecret = "It's a Secret to Everybody";
const std::string kBody = "Hello, World!";
const std::string kSig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
}  // namespace

TEST(HubSignature, AcceptsGithubsExample) { EXPECT_TRUE(valid_hub_signature(kSecret, kBody, kSig)); }

TEST(HubSignature, HexCaseDoesNotMatter) {
  std::string upper = kSig;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(toupper(upper[i]));
  EXPECT_TRUE(valid_hub_signature(kSecret, kBody, upper));
}

TEST(HubSignature, RefusesChangedBodyWrongSecretAndMalformedHeaders) {
  EXPECT_FALSE(valid_hub_signature(kSecret, kBody + " ", kSig));
  EXPECT_FALSE(valid_hub_signature("another secret", kBody, kSig));
  EXPECT_FALSE(valid_hub_signature(kSecret, kBody, ""));
  EXPECT_FALSE(valid_hub_signature(kSecret, kBody, kSig.substr(7)));               // no "sha256=" prefix
  EXPECT_FALSE(valid_hub_signature(kSecret, kBody, "sha1=" + kSig.substr(7)));     // the old SHA-1 header
  EXPECT_FALSE(valid_hub_signature(kSecret, kBody, kSig.substr(0, kSig.size() - 1)));  // truncated
}
