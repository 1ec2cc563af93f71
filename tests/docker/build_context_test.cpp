// The build context tar, read back by GNU tar.
#include "docker/build_context.h"

#include "temp_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace stele::docker {
namespace {

namespace fs = std::filesystem;

std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  char buf[4096];
  for (size_t n; f && (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  if (f) ::pclose(f);
  return out;
}

TEST(BuildContext, GnuTarExtractsTheSameTree) {
  TempDir src, out;
  const std::string long_path = std::string(120, 'd') + "/" + std::string(130, 'n') + ".txt";
  write_file(src.path + "/Dockerfile", "FROM stele/busybox:latest\nCOPY . /app\n");
  write_file(src.path + "/bin/run", "#!/bin/sh\necho run\n", 0700);
  write_file(src.path + "/" + long_path, "long\n");
  write_file(src.path + "/.git/HEAD", "ref: refs/heads/main\n");
  fs::create_symlink("bin/run", src.path + "/current");
  fs::create_directories(src.path + "/empty");
  std::string tar = out.path + "/ctx.tar";
  auto r = write_build_context(src.path, tar);
  ASSERT_TRUE(r) << r.error().message;

  std::string listing = run("tar -tvf " + tar + " 2>&1");
  EXPECT_NE(listing.find("-rwxr-xr-x 0/0"), std::string::npos) << listing;
  EXPECT_NE(listing.find("current -> bin/run"), std::string::npos) << listing;
  EXPECT_EQ(listing.find(".git"), std::string::npos) << listing;

  fs::create_directories(out.path + "/x");
  ASSERT_EQ(run("tar -xf " + tar + " -C " + out.path + "/x 2>&1"), "");
  EXPECT_EQ(read_file(out.path + "/x/Dockerfile"), read_file(src.path + "/Dockerfile"));
  EXPECT_EQ(read_file(out.path + "/x/" + long_path), "long\n");
  EXPECT_EQ(fs::read_symlink(out.path + "/x/current"), "bin/run");
  EXPECT_TRUE(fs::is_directory(out.path + "/x/empty"));
  struct stat st;
  ASSERT_EQ(::stat((out.path + "/x/bin/run").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
}

TEST(BuildContext, RefusesASocketNamingIt) {
  TempDir src, out;
  write_file(src.path + "/Dockerfile", "FROM scratch\n");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string sock = src.path + "/agent.sock";
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  auto r = write_build_context(src.path, out.path + "/ctx.tar");
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("docker build context: agent.sock is not a regular file"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace stele::docker
