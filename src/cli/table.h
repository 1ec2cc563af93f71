// Plain-text output of the `stele` client: aligned tables with a header
// (`docker ps` / `kubectl get` style), aligned "key: value" blocks, and the
// human forms of ages, numbers and sizes. Pure functions, no I/O.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stele::cli {

// Columns are left-aligned, separated by kColumnGap spaces, sized to their
// widest cell (header included); lines carry no trailing blanks. Control
// characters in cells (newlines, tabs) become spaces so one row stays one line.
class Table {
 public:
  static constexpr size_t kColumnGap = 3;

  explicit Table(std::vector<std::string> header);
  // A row shorter than the header is padded with empty cells; extra cells are
  // dropped (a row never widens the table past its header).
  void add_row(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  // The header line then one line per row, each ending in '\n'.
  std::string render() const;

 private:
  std::vector<size_t> widths() const;
  std::string render_line(const std::vector<std::string>& cells, const std::vector<size_t>& widths) const;

  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "Key:   value" lines, values aligned one column past the longest key.
// Pairs with an empty value are skipped.
std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// Columns a string takes on a terminal: UTF-8 code points (no East Asian
// wide-character handling; ids and hostnames are ASCII).
size_t display_width(std::string_view utf8);

// Human duration, two units at most: "0s", "45s", "3m12s", "2h5m", "3d4h".
// Negative durations (clock skew between hosts) read "0s".
std::string format_age(int64_t ms);
// Age of `then_ms` at `now_ms`; "-" when unknown (nullopt or <= 0).
std::string format_since(std::optional<int64_t> then_ms, int64_t now_ms);

// Shortest decimal form with at most two decimals: 4 -> "4", 0.5 -> "0.5",
// 1.257 -> "1.26".
std::string format_number(double v);
// Megabytes (Marathon's unit for mem/disk) for humans: "128M", "7.6G", "1.5T".
std::string format_mem(double mb);

// Bytes for humans: "512B", "12K", "1.5M", "2.1G" (binary units, one
// decimal under 10, none above).
std::string format_bytes(double bytes);
// A step's duration: "0.4s", "12s", "3m12s" (format_age past a minute);
// negative reads "0s".
std::string format_duration_ms(int64_t ms);

// A content digest or image id shortened to 12 hex digits (docker's short
// id): "sha256:0123456789abcdef..." -> "0123456789ab"; "" -> "-"; anything
// that is not a long hex id is returned unchanged.
std::string short_digest(std::string_view digest);

}  // namespace stele::cli
