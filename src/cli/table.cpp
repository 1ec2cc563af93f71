#include "cli/table.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace stele::cli {

namespace {

std::string sanitize(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

void pad_to(std::string& s, size_t width) {
  size_t w = display_width(s);
  if (w < width) s.append(width - w, ' ');
}

void strip_trailing_blanks(std::string& s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
}

}  // namespace

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {
  for (auto& h : header_) h = sanitize(std::move(h));
}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(header_.size());
  for (auto& c : cells) c = sanitize(std::move(c));
  rows_.push_back(std::move(cells));
}

std::vector<size_t> Table::widths() const {
  std::vector<size_t> w;
  for (const auto& h : header_) w.push_back(display_width(h));
  for (const auto& row : rows_)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], display_width(row[i]));
  return w;
}

std::string Table::render_line(const std::vector<std::string>& cells, const std::vector<size_t>& widths) const {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line.append(widths[i] - display_width(cells[i]) + kColumnGap, ' ');
  }
  strip_trailing_blanks(line);
  return line + "\n";
}

std::string Table::render() const {
  auto w = widths();
  std::string out = render_line(header_, w);
  for (const auto& row : rows_) out += render_line(row, w);
  return out;
}

std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t key_width = 0;
  for (const auto& [k, v] : fields)
    if (!v.empty()) key_width = std::max(key_width, display_width(k) + 1);
  std::string out;
  for (const auto& [k, v] : fields) {
    if (v.empty()) continue;
    std::string line = sanitize(k) + ":";
    pad_to(line, key_width + 2);
    out += line + sanitize(v) + "\n";
  }
  return out;
}

size_t display_width(std::string_view utf8) {
  size_t n = 0;
  for (unsigned char c : utf8)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string format_age(int64_t ms) {
  int64_t s = ms > 0 ? ms / 1000 : 0;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{}h", s / 86400, s % 86400 / 3600);
}

std::string format_since(std::optional<int64_t> then_ms, int64_t now_ms) {
  if (!then_ms || *then_ms <= 0) return "-";
  return format_age(now_ms - *then_ms);
}

std::string format_number(double v) {
  if (!std::isfinite(v)) return "-";
  std::string s = fmt::format("{:.2f}", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string format_mem(double mb) {
  if (mb < 1024) return format_number(std::round(mb)) + "M";
  double gb = mb / 1024;
  if (gb < 1024) return fmt::format("{:.1f}G", gb);
  return fmt::format("{:.1f}T", gb / 1024);
}

std::string format_bytes(double bytes) {
  if (!std::isfinite(bytes) || bytes < 0) return "-";
  if (bytes < 1024) return fmt::format("{}B", static_cast<int64_t>(bytes));
  const char* units[] = {"K", "M", "G", "T"};
  double v = bytes / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  return v < 10 ? fmt::format("{:.1f}{}", v, units[u]) : fmt::format("{:.0f}{}", v, units[u]);
}

std::string format_duration_ms(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 10'000) return fmt::format("{:.1f}s", ms / 1000.0);
  return format_age(ms);
}

std::string short_digest(std::string_view digest) {
  if (digest.empty()) return "-";
  std::string_view d = digest;
  if (auto colon = d.find(':'); colon != std::string_view::npos) d.remove_prefix(colon + 1);
  bool hex = d.size() > 12 && std::all_of(d.begin(), d.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
  return hex ? std::string(d.substr(0, 12)) : std::string(digest);
}

}  // namespace stele::cli
