// views.py's text renderers and the Python number spellings they rely on.
#include "metrics/render_format.h"

#include <stdio.h>
#include <time.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace stele::metrics {
namespace {

// --- Python json.dumps (ensure_ascii, default separators or indent=2) ---

void append_hex4(std::string& out, uint32_t u) {
  static const char* kHex = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(u >> shift) & 0xf];
}

// Decodes one UTF-8 sequence at s[i]; an invalid byte reads as U+FFFD.
uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 1 || len == 0 || i + len > s.size()) {
    ++i;
    return len == 1 ? b : 0xfffd;
  }
  uint32_t cp = b & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xc0) != 0x80) {
      ++i;
      return 0xfffd;
    }
    cp = (cp << 6) | (c & 0x3f);
  }
  i += len;
  return cp;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = next_code_point(s, i);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      append_hex4(out, cp);
    } else {
      append_hex4(out, 0xd800 + ((cp - 0x10000) >> 10));
      append_hex4(out, 0xdc00 + ((cp - 0x10000) & 0x3ff));
    }
  }
  out += '"';
}

// Containers and separators the way json.dumps lays them out: ", " and ": "
// on one line, or one item per line indented by two spaces a level.
class PyJsonWriter {
 public:
  explicit PyJsonWriter(bool pretty) : pretty_(pretty) {}

  void open(char bracket) {
    out_ += bracket;
    first_.push_back(true);
  }
  void close(char bracket) {
    const bool empty = first_.back();
    first_.pop_back();
    if (pretty_ && !empty) newline();
    out_ += bracket;
  }
  void item() {
    if (!first_.back()) out_ += pretty_ ? "," : ", ";
    first_.back() = false;
    if (pretty_) newline();
  }
  void key(std::string_view k) {
    item();
    append_json_string(out_, k);
    out_ += ": ";
  }
  std::string& out() { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void newline() {
    out_ += '\n';
    out_.append(2 * first_.size(), ' ');
  }
  bool pretty_;
  std::vector<bool> first_;
  std::string out_;
};

void append_tags(PyJsonWriter& w, const Series& s) {
  w.open('{');
  if (auto it = s.tags.find("name"); it != s.tags.end()) {
    w.key("name");
    append_json_string(w.out(), it->second);
  }
  for (const auto& [k, v] : s.tags) {
    if (k == "name") continue;
    w.key(k);
    append_json_string(w.out(), v);
  }
  w.close('}');
}

// How many of range(start, end + 1, step) there are.
size_t timestamp_count(const Series& s) {
  if (s.step <= 0 || s.end + 1 <= s.start) return 0;
  return static_cast<size_t>((s.end + 1 - s.start + s.step - 1) / s.step);
}

// json.dumps of a float, None being null.
std::string json_float(double v) {
  if (Series::is_none(v)) return "null";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(v);
}

bool append_series(PyJsonWriter& w, const Series& s, const JsonOptions& options) {
  const size_t n = std::min(s.values.size(), timestamp_count(s));
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) kept += !Series::is_none(s.values[i]);
  if (options.no_null_points && kept == 0) return false;
  w.item();
  w.open('{');
  w.key("target");
  append_json_string(w.out(), s.name);
  w.key("tags");
  append_tags(w, s);
  w.key("datapoints");
  w.open('[');
  for (size_t i = 0; i < n; ++i) {
    const double v = s.values[i];
    if (options.no_null_points && Series::is_none(v)) continue;
    w.item();
    w.open('[');
    w.item();
    w.out() += json_float(v);
    w.item();
    w.out() += std::to_string(s.start + static_cast<int64_t>(i) * s.step);
    w.close(']');
  }
  w.close(']');
  w.close('}');
  return true;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
    out.append(s, pos, hit - pos).append(to);
  if (pos == 0) return;
  out.append(s, pos);
  s = std::move(out);
}

// --- csv (Python's csv module, excel dialect) ---

void append_csv_field(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += field;
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void append_timestamp(std::string& out, int64_t ts, TimeZone tz) {
  const time_t t = static_cast<time_t>(ts);
  struct tm tm {};
  const bool ok = tz == TimeZone::kUtc ? gmtime_r(&t, &tm) != nullptr : localtime_r(&t, &tm) != nullptr;
  char buf[64];
  const size_t n = ok ? strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm) : 0;
  out.append(buf, n);
}

}  // namespace

std::optional<RenderFormat> parse_render_format(std::string_view name) {
  if (name == "json") return RenderFormat::kJson;
  if (name == "csv") return RenderFormat::kCsv;
  if (name == "raw") return RenderFormat::kRaw;
  return std::nullopt;
}

std::string_view render_content_type(RenderFormat f, bool jsonp) {
  switch (f) {
    case RenderFormat::kJson: return jsonp ? "text/javascript" : "application/json";
    case RenderFormat::kCsv: return "text/csv";
    case RenderFormat::kRaw: return "text/plain";
  }
  return "text/plain";
}

std::string format_json(const std::vector<Series>& series, const JsonOptions& options) {
  PyJsonWriter w(options.pretty);
  w.open('[');
  bool any = false;
  for (const Series& s : series) any = any || !s.values.empty();
  if (any)
    for (const Series& s : series) append_series(w, s, options);
  w.close(']');
  std::string out = w.take();
  replace_all(out, "NaN,", "null,");
  replace_all(out, "Infinity,", "1e9999,");
  if (!options.jsonp.empty()) out = options.jsonp + "(" + out + ")";
  return out;
}

std::string format_csv(const std::vector<Series>& series, TimeZone tz) {
  std::string out;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.values.size(); ++i) {
      append_csv_field(out, s.name);
      out += ',';
      append_timestamp(out, s.start + static_cast<int64_t>(i) * s.step, tz);
      out += ',';
      if (!Series::is_none(s.values[i])) out += python_float_repr(s.values[i]);
      out += "\r\n";
    }
  }
  return out;
}

std::string format_raw(const std::vector<Series>& series) {
  std::string out;
  for (const Series& s : series) {
    out += s.name;
    out += ',' + std::to_string(s.start) + ',' + std::to_string(s.end) + ',' + std::to_string(s.step) + '|';
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (i) out += ',';
      out += Series::is_none(s.values[i]) ? std::string("None") : python_float_repr(s.values[i]);
    }
    out += '\n';
  }
  return out;
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "-1.2345e+02"
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  const int exp10 = std::atoi(std::string(sci.substr(e + 1)).c_str());
  const int decpt = exp10 + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return out + "0." + std::string(-decpt, '0') + digits;
    if (decpt >= n) return out + digits + std::string(decpt - n, '0') + ".0";
    return out + digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  out += digits[0];
  if (n > 1) out += "." + digits.substr(1);
  const int x = decpt - 1;
  char ebuf[16];
  snprintf(ebuf, sizeof ebuf, "e%c%02d", x < 0 ? '-' : '+', std::abs(x));
  return out + ebuf;
}

std::string python_percent_g(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string python_number_str(double v, bool integer) {
  if (!integer || !std::isfinite(v)) return python_float_repr(v);
  char buf[400];
  snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace stele::metrics
