#include "artifact/tar_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace stele::artifact {
namespace fs = std::filesystem;

namespace {

constexpr size_t kBlock = 512;
constexpr size_t kChunk = 128 * 1024;
constexpr uint64_t kMaxOctal11 = 077777777777ULL;

using Block = std::array<char, kBlock>;

std::string errno_text() { return std::strerror(errno); }

Result<TreeEntry> entry_for(const fs::path& abs, const std::string& rel, const std::string& label) {
  struct stat st;
  if (::lstat(abs.c_str(), &st) != 0) return fail(label + ": cannot stat " + rel + ": " + errno_text());
  TreeEntry e;
  e.rel = rel;
  if (S_ISDIR(st.st_mode)) {
    e.type = '5', e.mode = 0755;
  } else if (S_ISREG(st.st_mode)) {
    e.type = '0', e.mode = (st.st_mode & 0111) ? 0755 : 0644, e.size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    e.type = '2', e.mode = 0777, e.link = fs::read_symlink(abs, ec).string();
    if (ec) return fail(label + ": cannot read symlink " + rel + ": " + ec.message());
  } else {
    return fail(label + ": " + rel + " is not a regular file, directory or symlink (sockets, fifos and devices "
                "cannot be packed)");
  }
  return e;
}

Result<void> collect_under(const fs::path& root, const std::string& prefix, const std::string& label,
                           std::vector<TreeEntry>& out) {
  std::error_code ec;
  for (fs::directory_iterator it(root / prefix, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (prefix.empty() && name == ".git") continue;
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    auto e = entry_for(it->path(), rel, label);
    if (!e) return fail(e.error());
    bool dir = e->type == '5';
    out.push_back(std::move(*e));
    if (dir)
      if (auto r = collect_under(root, rel, label, out); !r) return r;
  }
  if (ec) return fail(label + ": cannot list " + (root / prefix).string() + ": " + ec.message());
  return {};
}

// Zero-padded octal filling len-1 digits, then NUL.
void put_octal(char* field, size_t len, uint64_t v) {
  for (size_t i = len - 1; i-- > 0; v >>= 3) field[i] = static_cast<char>('0' + (v & 7));
  field[len - 1] = '\0';
}

void put_str(char* field, size_t len, const std::string& s) { std::memcpy(field, s.data(), std::min(len, s.size())); }

void seal(Block& b) {
  std::memset(&b[148], ' ', 8);
  unsigned sum = 0;
  for (char c : b) sum += static_cast<unsigned char>(c);
  put_octal(&b[148], 7, sum);
  b[155] = ' ';
}

Block header(const std::string& name, const std::string& prefix, char type, unsigned mode, uint64_t size,
             const std::string& link) {
  Block b{};
  put_str(&b[0], 100, name);
  put_octal(&b[100], 8, mode);
  put_octal(&b[108], 8, 0);
  put_octal(&b[116], 8, 0);
  put_octal(&b[124], 12, size > kMaxOctal11 ? 0 : size);
  put_octal(&b[136], 12, 0);
  b[156] = type;
  put_str(&b[157], 100, link);
  std::memcpy(&b[257], "ustar\0" "00", 8);
  put_str(&b[345], 155, prefix);
  seal(b);
  return b;
}

// Splits a path into ustar prefix/name; false when it cannot fit.
bool split_ustar(const std::string& p, std::string& prefix, std::string& name) {
  if (p.size() <= 100) return prefix.clear(), name = p, true;
  for (size_t i = p.find('/'); i != std::string::npos; i = p.find('/', i + 1)) {
    if (i <= 155 && p.size() - i - 1 <= 100 && p.size() - i - 1 > 0)
      return prefix = p.substr(0, i), name = p.substr(i + 1), true;
  }
  return false;
}

void pax_record(std::string& out, const std::string& key, const std::string& value) {
  size_t body = key.size() + value.size() + 3;  // ' ' '=' '\n'
  size_t len = body + std::to_string(body).size();
  if (std::to_string(len).size() + body != len) ++len;
  out += std::to_string(len) + " " + key + "=" + value + "\n";
}

}  // namespace

Result<void> collect_tree(const fs::path& root, const std::string& label, std::vector<TreeEntry>& out) {
  return collect_under(root, "", label, out);
}

Result<void> TarWriter::add(const TreeEntry& e, const fs::path& root) {
  std::string path = e.type == '5' ? e.rel + "/" : e.rel, prefix, name, pax;
  if (!split_ustar(path, prefix, name)) pax_record(pax, "path", path), name = path.substr(0, 100), prefix.clear();
  if (e.link.size() > 100) pax_record(pax, "linkpath", e.link);
  if (e.size > kMaxOctal11) pax_record(pax, "size", std::to_string(e.size));
  if (!pax.empty())
    if (auto r = write_pax(pax); !r) return r;
  Block h = header(name, prefix, e.type, e.mode, e.size, e.link);
  if (auto r = sink_.write(h.data(), h.size()); !r) return r;
  return e.type == '0' ? copy_file(root / e.rel, e) : Result<void>{};
}

Result<void> TarWriter::finish() {
  static const char zeros[2 * kBlock] = {};
  return sink_.write(zeros, sizeof zeros);
}

Result<void> TarWriter::write_pax(const std::string& pax) {
  Block h = header("././@PaxHeader", "", 'x', 0644, pax.size(), "");
  if (auto r = sink_.write(h.data(), h.size()); !r) return r;
  return data(pax.data(), pax.size(), pax.size());
}

Result<void> TarWriter::data(const char* p, size_t n, uint64_t total) {
  if (auto r = sink_.write(p, n); !r) return r;
  size_t pad = (kBlock - total % kBlock) % kBlock;
  static const char zeros[kBlock] = {};
  return sink_.write(zeros, pad);
}

Result<void> TarWriter::copy_file(const fs::path& abs, const TreeEntry& e) {
  int fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(label_ + ": cannot open " + e.rel + ": " + errno_text());
  std::vector<char> buf(kChunk);
  uint64_t done = 0;
  Result<void> r;
  while (r && done < e.size) {
    ssize_t n = ::read(fd, buf.data(), std::min<uint64_t>(buf.size(), e.size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) r = fail(label_ + ": " + e.rel + " shrank or could not be read while packing");
    else r = sink_.write(buf.data(), static_cast<size_t>(n)), done += static_cast<uint64_t>(n);
  }
  char extra;
  if (r && ::read(fd, &extra, 1) > 0) r = fail(label_ + ": " + e.rel + " grew while packing");
  ::close(fd);
  return r ? data(nullptr, 0, e.size) : r;
}

}  // namespace stele::artifact
