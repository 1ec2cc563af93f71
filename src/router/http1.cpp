// HTTP/1.x head parsing, framing and the chunked boundary finder (http1.h).
#include "router/http1.h"

#include "common/hex.h"

#include <array>
#include <cstring>

namespace stele::router::http1 {

namespace {

// tchar (RFC 9110 5.6.2).
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kToken = make_token_table();

bool is_token(char c) { return kToken[static_cast<unsigned char>(c)]; }
bool is_ctl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }
bool is_ows(char c) { return c == ' ' || c == '\t'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// Offset just past the blank line ending the head, or 0 when there is none
// yet. Searches from `scanned` (bytes already known to hold no end) and
// updates it.
size_t find_head_end(std::string_view buf, size_t& scanned) {
  size_t at = scanned;
  while (at < buf.size()) {
    const void* hit = std::memchr(buf.data() + at, '\n', buf.size() - at);
    if (!hit) break;
    size_t nl = static_cast<const char*>(hit) - buf.data();
    if (nl + 1 < buf.size() && buf[nl + 1] == '\n') return nl + 2;
    if (nl + 2 < buf.size() && buf[nl + 1] == '\r' && buf[nl + 2] == '\n') return nl + 3;
    if (nl + 2 >= buf.size()) {  // the blank line may still be arriving
      scanned = nl;
      return 0;
    }
    at = nl + 1;
  }
  scanned = buf.size();
  return 0;
}

// A cursor over one complete head; every line is known to end in '\n'.
struct Cursor {
  const char* p;
  const char* end;

  // Consumes a line ending (CRLF or LF) or fails.
  bool eol() {
    if (p < end && *p == '\r') ++p;
    if (p < end && *p == '\n') {
      ++p;
      return true;
    }
    return false;
  }
  std::string_view take_while(bool (*pred)(char)) {
    const char* s = p;
    while (p < end && pred(*p)) ++p;
    return {s, static_cast<size_t>(p - s)};
  }
  bool skip(char c) {
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  }
};

bool fail(ParseError& err, int status, const char* reason) {
  err = ParseError{status, reason};
  return false;
}

bool parse_version(Cursor& c, int& minor, ParseError& err) {
  if (c.end - c.p < 8 || std::memcmp(c.p, "HTTP/", 5) != 0) return fail(err, 400, "malformed HTTP version");
  char major = c.p[5], dot = c.p[6], m = c.p[7];
  if (major < '0' || major > '9' || dot != '.' || m < '0' || m > '9')
    return fail(err, 400, "malformed HTTP version");
  c.p += 8;
  if (major != '1' || (m != '0' && m != '1')) return fail(err, 505, "HTTP version not supported");
  minor = m - '0';
  return true;
}

bool is_value_char(char c) { return c == '\t' || !is_ctl(c); }

bool parse_headers(Cursor& c, Header* headers, size_t& n, ParseError& err) {
  n = 0;
  for (;;) {
    if (c.eol()) return true;  // the blank line
    if (c.p < c.end && is_ows(*c.p)) return fail(err, 400, "obsolete line folding in headers");
    std::string_view name = c.take_while(is_token);
    if (name.empty()) return fail(err, 400, "malformed header name");
    if (!c.skip(':')) return fail(err, 400, "malformed header line (no colon after the name)");
    c.take_while(is_ows);
    std::string_view value = c.take_while(is_value_char);
    if (!c.eol()) return fail(err, 400, "control character in a header value");
    while (!value.empty() && is_ows(value.back())) value.remove_suffix(1);
    if (n == kMaxHeaders) return fail(err, 431, "too many header fields");
    headers[n++] = Header{name, value};
  }
}

bool is_target_char(char c) { return !is_ctl(c) && c != ' '; }

bool parse_request_head(Cursor& c, RequestHead& out, ParseError& err) {
  out.method = c.take_while(is_token);
  if (out.method.empty() || !c.skip(' ')) return fail(err, 400, "malformed request line (method)");
  out.target = c.take_while(is_target_char);
  if (out.target.empty() || !c.skip(' ')) return fail(err, 400, "malformed request line (target)");
  if (!parse_version(c, out.minor_version, err)) return false;
  if (!c.eol()) return fail(err, 400, "malformed request line (after the version)");
  return parse_headers(c, out.headers, out.num_headers, err);
}

bool is_reason_char(char c) { return c == '\t' || !is_ctl(c); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool parse_response_head(Cursor& c, ResponseHead& out, ParseError& err) {
  if (!parse_version(c, out.minor_version, err)) return false;
  if (!c.skip(' ')) return fail(err, 400, "malformed status line");
  std::string_view code = c.take_while(is_digit);
  if (code.size() != 3 || code[0] == '0') return fail(err, 400, "malformed status code");
  out.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  out.reason = {};
  if (c.skip(' ')) out.reason = c.take_while(is_reason_char);
  if (!c.eol()) return fail(err, 400, "malformed status line");
  return parse_headers(c, out.headers, out.num_headers, err);
}

template <class Head, class ParseHead>
ParseStatus parse_head(std::string_view buf, size_t max_head, size_t& scanned, Head& out, ParseError& err,
                       ParseHead parse) {
  size_t end = find_head_end(buf, scanned);
  if (end == 0) {
    if (buf.size() > max_head) return fail(err, 431, "head larger than the limit"), ParseStatus::kError;
    return ParseStatus::kNeedMore;
  }
  if (end > max_head) return fail(err, 431, "head larger than the limit"), ParseStatus::kError;
  // A leading blank line before a request is tolerated by RFC 9112 2.2, but
  // nothing needs it; refusing keeps one meaning for every byte.
  Cursor c{buf.data(), buf.data() + end};
  if (!parse(c, out, err)) return ParseStatus::kError;
  out.head_len = end;
  return ParseStatus::kDone;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f(item) for each trimmed item of a comma-separated list until f
// returns false; returns whether every call returned true.
template <class F>
bool each_list_item(std::string_view list, F f) {
  for (size_t i = 0;;) {
    size_t comma = list.find(',', i);
    if (!f(trim(list.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i)))) return false;
    if (comma == std::string_view::npos) return true;
    i = comma + 1;
  }
}

// Parses a Content-Length value; repeated identical values ("5, 5") are
// allowed, as RFC 9110 8.6 permits.
bool parse_length(std::string_view v, uint64_t& out) {
  bool any = false;
  return each_list_item(v, [&](std::string_view part) {
    if (part.empty() || part.size() > 18) return false;
    uint64_t n = 0;
    for (char ch : part) {
      if (!is_digit(ch)) return false;
      n = n * 10 + static_cast<uint64_t>(ch - '0');
    }
    if (any && n != out) return false;
    out = n;
    any = true;
    return true;
  });
}

// Whether the last coding of a Transfer-Encoding list is "chunked".
bool last_coding_chunked(std::string_view v) {
  size_t comma = v.rfind(',');
  return iequals(trim(comma == std::string_view::npos ? v : v.substr(comma + 1)), "chunked");
}

// Fields shared by requests and responses.
struct Scan {
  bool has_length = false;
  uint64_t length = 0;
  int te_count = 0;
  bool chunked = false;
  bool close = false;
  bool keep_alive = false;
  bool conn_upgrade = false;
  int host_count = 0;
  std::string_view host;
  std::string_view upgrade;
  bool expect_continue = false;
};

bool scan_fields(const Header* hs, size_t n, Scan& s, ParseError& err) {
  for (size_t i = 0; i < n; ++i) {
    const Header& h = hs[i];
    if (iequals(h.name, "content-length")) {
      uint64_t v = 0;
      if (!parse_length(h.value, v)) return fail(err, 400, "malformed Content-Length");
      if (s.has_length && v != s.length) return fail(err, 400, "conflicting Content-Length headers");
      s.has_length = true;
      s.length = v;
    } else if (iequals(h.name, "transfer-encoding")) {
      ++s.te_count;
      s.chunked = last_coding_chunked(h.value);  // the last header's last coding counts
    } else if (iequals(h.name, "connection")) {
      s.close = s.close || has_token(h.value, "close");
      s.keep_alive = s.keep_alive || has_token(h.value, "keep-alive");
      s.conn_upgrade = s.conn_upgrade || has_token(h.value, "upgrade");
    } else if (iequals(h.name, "host")) {
      ++s.host_count;
      s.host = h.value;
    } else if (iequals(h.name, "upgrade")) {
      s.upgrade = h.value;
    } else if (iequals(h.name, "expect")) {
      s.expect_continue = iequals(h.value, "100-continue");
    }
  }
  return true;
}

void fill_connection(const Scan& s, int minor, MessageInfo& out) {
  out.keep_alive = minor >= 1 ? !s.close : (s.keep_alive && !s.close);
  out.upgrade = s.conn_upgrade && !s.upgrade.empty();
  out.upgrade_protocol = out.upgrade ? s.upgrade : std::string_view{};
}

}  // namespace

ParseStatus parse_request(std::string_view buf, size_t max_head, size_t& scanned, RequestHead& out,
                          ParseError& err) {
  return parse_head(buf, max_head, scanned, out, err, parse_request_head);
}

ParseStatus parse_response(std::string_view buf, size_t max_head, size_t& scanned, ResponseHead& out,
                           ParseError& err) {
  return parse_head(buf, max_head, scanned, out, err, parse_response_head);
}

bool request_info(const RequestHead& h, MessageInfo& out, ParseError& err) {
  Scan s;
  if (!scan_fields(h.headers, h.num_headers, s, err)) return false;
  out = MessageInfo{};
  if (s.host_count > 1) return fail(err, 400, "more than one Host header");
  if (h.minor_version >= 1 && s.host_count == 0) return fail(err, 400, "missing Host header");
  if (s.te_count > 0) {
    if (h.minor_version == 0) return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (s.has_length) return fail(err, 400, "both Transfer-Encoding and Content-Length");
    if (!s.chunked) return fail(err, 400, "Transfer-Encoding whose final coding is not chunked");
    out.body = BodyKind::kChunked;
  } else if (s.has_length && s.length > 0) {
    out.body = BodyKind::kLength;
    out.length = s.length;
  }
  fill_connection(s, h.minor_version, out);
  out.host = s.host;
  out.expect_continue = s.expect_continue;
  return true;
}

bool response_info(const ResponseHead& h, bool request_was_head, MessageInfo& out, ParseError& err) {
  Scan s;
  if (!scan_fields(h.headers, h.num_headers, s, err)) return false;
  out = MessageInfo{};
  fill_connection(s, h.minor_version, out);
  if (request_was_head || h.status < 200 || h.status == 204 || h.status == 304) return true;
  if (s.te_count > 0) {
    if (s.chunked) {
      out.body = BodyKind::kChunked;
    } else {
      out.body = BodyKind::kUntilClose;
      out.keep_alive = false;
    }
  } else if (s.has_length) {
    out.body = s.length > 0 ? BodyKind::kLength : BodyKind::kNone;
    out.length = s.length;
  } else {
    out.body = BodyKind::kUntilClose;
    out.keep_alive = false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool has_token(std::string_view list, std::string_view token) {
  return !each_list_item(list, [&](std::string_view item) { return !iequals(item, token); });
}

bool is_hop_by_hop(std::string_view name, const Header* headers, size_t num_headers) {
  static constexpr std::string_view kFixed[] = {"connection", "keep-alive", "proxy-connection",
                                                "te", "trailer", "upgrade"};
  for (std::string_view f : kFixed)
    if (iequals(name, f)) return true;
  for (size_t i = 0; i < num_headers; ++i)
    if (iequals(headers[i].name, "connection") && has_token(headers[i].value, name)) return true;
  return false;
}

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

// ---- ChunkedDecoder ---------------------------------------------------------

size_t ChunkedDecoder::fail(const char* why, size_t consumed, Status& status) {
  state_ = State::kError;
  error_ = why;
  status = Status::kError;
  return consumed;
}


size_t ChunkedDecoder::feed(std::string_view data, Status& status) {
  size_t i = 0;
  status = Status::kMore;
  if (state_ == State::kError) return fail(error_, 0, status);
  while (i < data.size() && state_ != State::kDone) {
    char c = data[i];
    switch (state_) {
      case State::kSize: {
        int v = hex_value(c);
        if (v >= 0) {
          if (++digits_ > 15) return fail("chunk size too large", i, status);
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
          break;
        }
        if (digits_ == 0) return fail("malformed chunk size", i, status);
        if (c == ';') {
          state_ = State::kExtension;
          side_bytes_ = 0;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return fail("malformed chunk size", i, status);
        }
        ++i;
        break;
      }
      case State::kExtension:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (is_ctl(c) && c != '\t') {
          return fail("control character in a chunk extension", i, status);
        } else if (++side_bytes_ > kMaxExtension) {
          return fail("chunk extension too long", i, status);
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return fail("chunk size line not ended by CRLF", i, status);
        ++i;
        digits_ = 0;
        side_bytes_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        break;
      case State::kData: {
        size_t n = data.size() - i < remaining_ ? data.size() - i : static_cast<size_t>(remaining_);
        i += n;
        remaining_ -= n;
        payload_ += n;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return fail("chunk data not followed by CRLF", i, status);
        ++i;
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return fail("chunk data not followed by CRLF", i, status);
        ++i;
        state_ = State::kSize;
        break;
      case State::kTrailerStart:
        ++i;
        state_ = c == '\r' ? State::kFinalLf : State::kTrailerLine;
        if (c != '\r' && (is_ctl(c) || ++side_bytes_ > kMaxTrailers))
          return fail("malformed trailer section", i - 1, status);
        break;
      case State::kTrailerLine:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if ((is_ctl(c) && c != '\t') || ++side_bytes_ > kMaxTrailers) {
          return fail("malformed trailer section", i, status);
        }
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return fail("trailer line not ended by CRLF", i, status);
        ++i;
        state_ = State::kTrailerStart;
        break;
      case State::kFinalLf:
        if (c != '\n') return fail("chunked body not ended by CRLF", i, status);
        ++i;
        state_ = State::kDone;
        break;
      case State::kDone:
      case State::kError:
        break;
    }
  }
  if (state_ == State::kDone) status = Status::kDone;
  return i;
}

}  // namespace stele::router::http1
