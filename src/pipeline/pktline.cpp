#include "pipeline/pktline.h"

#include "common/hex.h"

#include <algorithm>
#include <cstdlib>

namespace stele::pipeline {

namespace {

// Printable form of up to 4 header bytes for error messages.
std::string printable(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string header(size_t len) {
  static const char* digits = "0123456789abcdef";
  return {digits[(len >> 12) & 15], digits[(len >> 8) & 15], digits[(len >> 4) & 15], digits[len & 15]};
}

}  // namespace

// ---- reader ----------------------------------------------------------------

void PktLineReader::feed(std::string_view bytes) {
  if (error_) return;
  // Drop what was consumed before growing, so the buffer stays about one
  // packet long however long the stream.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<Packet>> PktLineReader::next() {
  if (error_) return fail(*error_);
  std::string_view avail = rest();
  if (avail.size() < 4) return std::optional<Packet>{};
  size_t len = 0;
  for (int i = 0; i < 4; ++i) {
    int v = hex_value(avail[i]);
    if (v < 0) {
      error_ = Error{"bad pkt-line length \"" + printable(avail.substr(0, 4)) + "\" at offset " +
                         std::to_string(consumed_) + ": expected 4 hex digits",
                     {}, 400};
      return fail(*error_);
    }
    len = len * 16 + static_cast<size_t>(v);
  }
  if (len == 3 || len > kPktMaxLength) {
    error_ = Error{"bad pkt-line length " + std::to_string(len) + " (\"" + printable(avail.substr(0, 4)) +
                       "\") at offset " + std::to_string(consumed_) + ": must be 0000-0002 or 4.." +
                       std::to_string(kPktMaxLength),
                   {}, 400};
    return fail(*error_);
  }
  Packet p;
  if (len < 3) {
    p.kind = len == 0 ? Packet::Kind::flush : len == 1 ? Packet::Kind::delim : Packet::Kind::response_end;
    len = 4;
  } else {
    if (avail.size() < len) return std::optional<Packet>{};
    p.payload.assign(avail.substr(4, len - 4));
  }
  pos_ += len;
  consumed_ += len;
  return std::optional<Packet>{std::move(p)};
}

// ---- writers ---------------------------------------------------------------

std::string pkt_line(std::string_view payload) {
  if (payload.size() > kPktMaxPayload) std::abort();  // caller's bug: see header
  std::string out = header(payload.size() + 4);
  out.append(payload);
  return out;
}

std::string pkt_flush() { return "0000"; }
std::string pkt_delim() { return "0001"; }
std::string pkt_response_end() { return "0002"; }

std::string sideband(int channel, std::string_view data, size_t max_data) {
  if (channel < 1 || channel > 3 || max_data == 0 || max_data > kSideband64kMaxData) std::abort();
  std::string out;
  size_t chunks = (data.size() + max_data - 1) / max_data;
  out.reserve(data.size() + chunks * 5);
  for (size_t off = 0; off < data.size(); off += max_data) {
    std::string_view chunk = data.substr(off, max_data);
    out += header(chunk.size() + 5);
    out += static_cast<char>(channel);
    out.append(chunk);
  }
  return out;
}

// ---- receive-pack request ----------------------------------------------------

bool ReceiveRequest::has_capability(std::string_view name) const {
  return std::any_of(capabilities.begin(), capabilities.end(), [&](const std::string& c) {
    return c == name || (c.size() > name.size() && c.compare(0, name.size(), name) == 0 && c[name.size()] == '=');
  });
}

std::optional<std::string> ReceiveRequest::capability_value(std::string_view name) const {
  for (const auto& c : capabilities)
    if (c.size() > name.size() && c.compare(0, name.size(), name) == 0 && c[name.size()] == '=')
      return c.substr(name.size() + 1);
  return std::nullopt;
}

namespace {

tl::unexpected<Error> bad(const std::string& what) { return fail("bad receive-pack request: " + what, 400); }

tl::unexpected<Error> truncated(const char* where) {
  return fail(std::string("receive-pack request ends before the flush-pkt that closes the ") + where, 0);
}

bool is_object_id(std::string_view s) {
  return (s.size() == 40 || s.size() == 64) &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// git's check-ref-format, the parts a server must enforce.
bool valid_ref(std::string_view r) {
  if (r.size() < 6 || r.substr(0, 5) != "refs/" || r.back() == '/' || r.back() == '.') return false;
  if (r.find("..") != std::string_view::npos || r.find("//") != std::string_view::npos ||
      r.find("@{") != std::string_view::npos || r.find("/.") != std::string_view::npos)
    return false;
  if (r.size() >= 5 && r.substr(r.size() - 5) == ".lock") return false;
  return std::none_of(r.begin(), r.end(), [](unsigned char c) {
    return c <= ' ' || c == 0x7f || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' ||
           c == '\\';
  });
}

std::string_view chomp(std::string_view s) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t sp = s.find(' ', i);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > i) out.emplace_back(s.substr(i, sp - i));
    i = sp + 1;
  }
  return out;
}

// "<old> SP <new> SP <ref>" (capabilities already cut off).
Result<RefCommand> parse_command(std::string_view line, size_t n) {
  std::string where = "command " + std::to_string(n + 1);
  size_t a = line.find(' ');
  size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
  if (b == std::string_view::npos) return bad(where + " is not \"<old-id> <new-id> <ref>\"");
  RefCommand c{std::string(line.substr(0, a)), std::string(line.substr(a + 1, b - a - 1)),
               std::string(line.substr(b + 1))};
  if (!is_object_id(c.old_sha) || !is_object_id(c.new_sha))
    return bad(where + ": object ids must be 40 or 64 lowercase hex digits");
  if (c.old_sha.size() != c.new_sha.size()) return bad(where + ": old and new ids differ in length");
  if (c.is_create() && c.is_delete()) return bad(where + ": both ids are zero");
  if (!valid_ref(c.ref)) return bad(where + ": invalid ref name \"" + c.ref + "\"");
  return c;
}

Result<void> check_id_lengths(const ReceiveRequest& r) {
  size_t want = 0;
  if (auto fmt = r.capability_value("object-format")) {
    if (*fmt == "sha1") want = 40;
    else if (*fmt == "sha256") want = 64;
    else return bad("unknown object-format " + *fmt);
  }
  for (const auto& c : r.commands) {
    if (want == 0) want = c.old_sha.size();
    if (c.old_sha.size() != want) return bad("object ids of different lengths in one request");
  }
  return {};
}

// Reads data lines until a flush; appends them (chomped) to `out`.
Result<void> read_until_flush(PktLineReader& reader, std::vector<std::string>& out, const char* where) {
  for (;;) {
    auto p = reader.next();
    if (!p) return bad(p.error().message);
    if (!*p) return truncated(where);
    if ((*p)->kind == Packet::Kind::flush) return {};
    if ((*p)->kind != Packet::Kind::data) return bad(std::string("unexpected delim/response-end in the ") + where);
    out.emplace_back(chomp((*p)->payload));
  }
}

}  // namespace

Result<ReceiveRequest> parse_receive_commands(std::string_view body_prefix) {
  PktLineReader reader;
  reader.feed(body_prefix);
  std::vector<std::string> lines;
  if (auto r = read_until_flush(reader, lines, "command list"); !r) return fail(r.error());

  ReceiveRequest req;
  size_t i = 0;
  for (; i < lines.size() && lines[i].rfind("shallow ", 0) == 0; ++i) {
    std::string id = lines[i].substr(8);
    if (!is_object_id(id)) return bad("shallow line " + std::to_string(i + 1) + " has no valid object id");
    req.shallow.push_back(std::move(id));
  }
  if (i < lines.size() && lines[i].rfind("push-cert", 0) == 0) return bad("push certificates are not supported");
  for (size_t n = 0; i < lines.size(); ++i, ++n) {
    std::string_view line = lines[i];
    if (n == 0) {
      size_t nul = line.find('\0');
      if (nul != std::string_view::npos) {
        req.capabilities = split_spaces(line.substr(nul + 1));
        line = line.substr(0, nul);
      }
    } else if (line.find('\0') != std::string_view::npos) {
      return bad("command " + std::to_string(n + 1) + " carries capabilities; only the first may");
    }
    auto c = parse_command(line, n);
    if (!c) return fail(c.error());
    req.commands.push_back(std::move(*c));
  }
  if (!req.shallow.empty() && req.commands.empty()) return bad("shallow lines without commands");
  if (auto r = check_id_lengths(req); !r) return fail(r.error());
  if (!req.commands.empty() && req.has_capability("push-options"))
    if (auto r = read_until_flush(reader, req.push_options, "push options"); !r) return fail(r.error());
  req.pack_offset = reader.consumed();
  return req;
}

}  // namespace stele::pipeline
