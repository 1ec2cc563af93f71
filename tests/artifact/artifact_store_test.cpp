// ArtifactStore: verified, atomic, idempotent puts by digest.
#include "artifact/artifact_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "artifact/sha256.h"

namespace stele::artifact {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/artifact_test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

std::string read(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ArtifactStoreTest : public ::testing::Test {
 protected:
  std::string src(const std::string& bytes) {
    std::string p = work.path + "/src-" + std::to_string(n_++);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  size_t temps() const { return static_cast<size_t>(std::distance(fs::directory_iterator(work.path + "/store/tmp"), {})); }
  TempDir work;
  ArtifactStore store{work.path + "/store"};
  int n_ = 0;
};

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("a"), h.update("bc");
  EXPECT_EQ(h.final(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(ArtifactStoreTest, PutWithRightDigestStoresTheBytes) {
  std::string bytes = "slug bytes\n", digest = sha256_hex(bytes);
  auto p = store.put_file(src(bytes), digest);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, store.path(digest));
  EXPECT_TRUE(store.has(digest));
  EXPECT_EQ(read(store.path(digest)), bytes);
  EXPECT_EQ(store.list(), std::vector<std::string>{digest});
  EXPECT_EQ(temps(), 0u);
}

TEST_F(ArtifactStoreTest, WrongDigestIs422NamingBothAndStoresNothing) {
  std::string claimed = sha256_hex("other"), actual = sha256_hex("bytes");
  auto p = store.put_file(src("bytes"), claimed);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, 422);
  EXPECT_EQ(p.error().message, "digest mismatch: expected " + claimed + ", got " + actual);
  EXPECT_FALSE(store.has(claimed));
  EXPECT_FALSE(store.has(actual));
  EXPECT_TRUE(store.list().empty());
  EXPECT_EQ(temps(), 0u);
}

TEST_F(ArtifactStoreTest, InterleavedDuplicatePutsAreIdempotent) {
  std::string bytes(200000, 'z'), digest = sha256_hex(bytes);
  auto a = store.begin(digest), b = store.begin(digest);
  ASSERT_TRUE(a && b);
  for (size_t i = 0; i < bytes.size(); i += 50000) {
    ASSERT_TRUE(a->write(std::string_view(bytes).substr(i, 50000)));
    ASSERT_TRUE(b->write(std::string_view(bytes).substr(i, 50000)));
  }
  ASSERT_TRUE(a->commit());
  ASSERT_TRUE(b->commit());
  ASSERT_TRUE(store.put_file(src(bytes), digest));
  EXPECT_EQ(read(store.path(digest)), bytes);
  EXPECT_EQ(store.list().size(), 1u);
  EXPECT_EQ(temps(), 0u);
}

TEST_F(ArtifactStoreTest, AbandonedWriterLeavesNothing) {
  {
    auto w = store.begin(sha256_hex("x"));
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->write("x"));
  }
  EXPECT_FALSE(store.has(sha256_hex("x")));
  EXPECT_EQ(temps(), 0u);
}

TEST_F(ArtifactStoreTest, BadDigestStringsAre400) {
  std::string upper = sha256_hex("x");
  for (auto& c : upper) c = static_cast<char>(toupper(c));
  for (const std::string& bad : {std::string("abc"), upper, std::string(64, 'g'), std::string("../") + std::string(61, 'a')}) {
    auto p = store.put_file(src("x"), bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().code, 400) << bad;
    EXPECT_FALSE(store.begin(bad));
    EXPECT_FALSE(store.has(bad));
    EXPECT_EQ(store.remove(bad).error().code, 400);
  }
  EXPECT_TRUE(store.list().empty());
}

TEST_F(ArtifactStoreTest, RemoveDeletesAndUnknownIs404) {
  std::string digest = sha256_hex("gone");
  ASSERT_TRUE(store.put_file(src("gone"), digest));
  ASSERT_TRUE(store.remove(digest));
  EXPECT_FALSE(store.has(digest));
  auto again = store.remove(digest);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, 404);
}

}  // namespace
}  // namespace stele::artifact
