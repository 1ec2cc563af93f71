// Slugs: determinism of make_slug, make→unpack round trips, and unpack_slug
// refusing hand-crafted malicious archives.
#include "artifact/slug.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <functional>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace stele::artifact {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/slug_test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

void write(const std::string& p, const std::string& text, unsigned mode = 0644) {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p, std::ios::binary) << text;
  ::chmod(p.c_str(), mode);
}

std::string read(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned mode_of(const std::string& p) {
  struct stat st;
  ::lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

const std::string kLongDir = std::string(120, 'd') + "/" + std::string(90, 'e');
const std::string kLongName = std::string(200, 'n') + "/" + std::string(150, 'm') + ".txt";

// The same logical tree; `reverse` creates it in the opposite order with other
// mtimes, owners and non-exec permission bits.
void make_tree(const std::string& root, bool reverse) {
  std::vector<std::function<void()>> steps = {
      [&] { write(root + "/app.py", "print('hi')\n", reverse ? 0600 : 0644); },
      [&] { write(root + "/bin/run", "#!/bin/sh\necho run\n", reverse ? 0700 : 0755); },
      [&] { write(root + "/lib/a-b.txt", "dash\n"); },
      [&] { write(root + "/lib/a/b.txt", "slash\n"); },
      [&] { fs::create_directories(root + "/empty"); },
      [&] { fs::create_symlink("app.py", root + "/current"); },
      [&] { write(root + "/" + kLongDir + "/f", "long dir\n"); },
      [&] { write(root + "/" + kLongName, "long name\n"); },
  };
  if (reverse) std::reverse(steps.begin(), steps.end());
  for (auto& s : steps) s();
  if (!reverse) return;
  write(root + "/.git/HEAD", "ref: refs/heads/main\n");  // skipped at top level
  for (auto& e : fs::recursive_directory_iterator(root)) {
    ::lchown(e.path().c_str(), 1234, 5678);
    struct timespec ts[2] = {{1000000, 0}, {1000000, 0}};
    ::utimensat(AT_FDCWD, e.path().c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }
}

TEST(SlugTest, SameTreeSameDigestWhateverMtimesOwnersAndOrder) {
  TempDir a, b, out;
  make_tree(a.path, false);
  make_tree(b.path, true);
  auto sa = make_slug(a.path, out.path);
  ASSERT_TRUE(sa) << sa.error().message;
  auto sb = make_slug(b.path, out.path);
  ASSERT_TRUE(sb) << sb.error().message;
  EXPECT_EQ(sa->digest, sb->digest);
  EXPECT_EQ(sa->path, out.path + "/" + sa->digest + ".tar.zst");
  EXPECT_EQ(sa->size, fs::file_size(sa->path));
  EXPECT_EQ(fs::directory_iterator(out.path)->path().filename(), sa->digest + ".tar.zst");
}

TEST(SlugTest, OneChangedByteOrExecBitChangesDigest) {
  TempDir a, out;
  make_tree(a.path, false);
  auto first = make_slug(a.path, out.path);
  ASSERT_TRUE(first);
  write(a.path + "/lib/a/b.txt", "slasH\n");
  auto second = make_slug(a.path, out.path);
  ASSERT_TRUE(second);
  EXPECT_NE(first->digest, second->digest);
  ::chmod((a.path + "/app.py").c_str(), 0744);
  auto third = make_slug(a.path, out.path);
  ASSERT_TRUE(third);
  EXPECT_NE(second->digest, third->digest);
}

TEST(SlugTest, RoundTripKeepsContentsModesAndSymlinks) {
  TempDir a, out, dest;
  make_tree(a.path, false);
  auto s = make_slug(a.path, out.path);
  ASSERT_TRUE(s);
  auto r = unpack_slug(s->path, dest.path + "/app");
  ASSERT_TRUE(r) << r.error().message;
  std::string d = dest.path + "/app";
  EXPECT_EQ(read(d + "/app.py"), "print('hi')\n");
  EXPECT_EQ(mode_of(d + "/app.py"), 0644u);
  EXPECT_EQ(read(d + "/bin/run"), "#!/bin/sh\necho run\n");
  EXPECT_EQ(mode_of(d + "/bin/run"), 0755u);
  EXPECT_EQ(mode_of(d + "/bin"), 0755u);
  EXPECT_TRUE(fs::is_directory(d + "/empty"));
  EXPECT_TRUE(fs::is_symlink(d + "/current"));
  EXPECT_EQ(fs::read_symlink(d + "/current"), "app.py");
  EXPECT_EQ(read(d + "/" + kLongDir + "/f"), "long dir\n");
  EXPECT_EQ(read(d + "/" + kLongName), "long name\n");
  // Repacking the unpacked tree gives the same slug.
  auto again = make_slug(d, out.path);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->digest, s->digest);
}

TEST(SlugTest, LargeFileStreamsThrough) {
  TempDir a, out, dest;
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  write(a.path + "/big.bin", big);
  auto s = make_slug(a.path, out.path);
  ASSERT_TRUE(s);
  ASSERT_TRUE(unpack_slug(s->path, dest.path));
  EXPECT_EQ(read(dest.path + "/big.bin"), big);
}

TEST(SlugTest, RefusesSpecialFilesNamingThem) {
  TempDir a, out;
  write(a.path + "/ok", "x");
  ASSERT_EQ(::mkfifo((a.path + "/pipe").c_str(), 0644), 0);
  auto s = make_slug(a.path, out.path);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("pipe"), std::string::npos) << s.error().message;
  EXPECT_TRUE(fs::is_empty(out.path));  // no temp left behind
}

// ---------- hand-crafted archives ----------

struct RawEntry {
  RawEntry(std::string n, char t, std::string d = "", std::string l = "")
      : name(std::move(n)), type(t), data(std::move(d)), link(std::move(l)) {}
  std::string name;
  char type;
  std::string data;  // contents for files
  std::string link;
};

std::array<char, 512> raw_header(const RawEntry& e) {
  std::array<char, 512> b{};
  std::memcpy(&b[0], e.name.data(), std::min<size_t>(100, e.name.size()));
  std::snprintf(&b[100], 8, "%07o", 0644);
  std::snprintf(&b[108], 8, "%07o", 0);
  std::snprintf(&b[116], 8, "%07o", 0);
  std::snprintf(&b[124], 12, "%011o", static_cast<unsigned>(e.data.size()));
  std::snprintf(&b[136], 12, "%011o", 0);
  b[156] = e.type;
  std::memcpy(&b[157], e.link.data(), std::min<size_t>(100, e.link.size()));
  std::memcpy(&b[257], "ustar\0" "00", 8);
  std::memset(&b[148], ' ', 8);
  unsigned sum = 0;
  for (char c : b) sum += static_cast<unsigned char>(c);
  std::snprintf(&b[148], 8, "%06o", sum);
  return b;
}

std::string write_tar_zst(const std::string& path, const std::vector<RawEntry>& entries) {
  std::string tar;
  for (const auto& e : entries) {
    auto h = raw_header(e);
    tar.append(h.data(), h.size());
    tar += e.data;
    tar.append((512 - e.data.size() % 512) % 512, '\0');
  }
  tar.append(1024, '\0');
  std::string z(ZSTD_compressBound(tar.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), tar.data(), tar.size(), 3));
  std::ofstream(path, std::ios::binary) << z;
  return path;
}

class MaliciousSlugTest : public ::testing::Test {
 protected:
  Result<void> unpack(const std::vector<RawEntry>& entries) {
    return unpack_slug(write_tar_zst(work.path + "/evil.tar.zst", entries), work.path + "/dest");
  }
  TempDir work;
};

TEST_F(MaliciousSlugTest, RefusesDotDot) {
  auto r = unpack({{"ok.txt", '0', "fine"}, {"../x", '0', "escaped"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(".."), std::string::npos);
  EXPECT_FALSE(fs::exists(work.path + "/x"));
  auto nested = unpack({{"a/../../y", '0', "escaped"}});
  ASSERT_FALSE(nested);
  EXPECT_FALSE(fs::exists(work.path + "/y"));
}

TEST_F(MaliciousSlugTest, RefusesAbsolutePath) {
  std::string target = work.path + "/abs.txt";
  auto r = unpack({{target, '0', "escaped"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("absolute"), std::string::npos);
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(MaliciousSlugTest, RefusesWritingThroughSymlinkDirectory) {
  fs::create_directories(work.path + "/outside");
  auto r = unpack({{"link", '2', "", work.path + "/outside"}, {"link/pwned", '0', "escaped"}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("symlink"), std::string::npos);
  EXPECT_FALSE(fs::exists(work.path + "/outside/pwned"));
}

TEST_F(MaliciousSlugTest, RefusesOverwritingThroughSymlinkFile) {
  write(work.path + "/victim", "original");
  auto r = unpack({{"link", '2', "", work.path + "/victim"}, {"link", '0', "overwritten"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(read(work.path + "/victim"), "original");
}

TEST_F(MaliciousSlugTest, SymlinkMayPointAnywhereAndHardLinksAreRefused) {
  ASSERT_TRUE(unpack({{"etc", '2', "", "/etc"}}));
  EXPECT_EQ(fs::read_symlink(work.path + "/dest/etc"), "/etc");
  auto r = unpack({{"hard", '1', "", "/etc/passwd"}});
  ASSERT_FALSE(r);
  EXPECT_FALSE(fs::exists(work.path + "/dest/hard"));
}

TEST_F(MaliciousSlugTest, TruncatedArchiveFails) {
  std::string p = write_tar_zst(work.path + "/t.tar.zst", {{"a", '0', std::string(5000, 'a')}});
  fs::resize_file(p, fs::file_size(p) / 2);
  EXPECT_FALSE(unpack_slug(p, work.path + "/dest"));
}

}  // namespace
}  // namespace stele::artifact
