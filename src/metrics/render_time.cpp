// graphite-web 1.1.8's attime.py, step by step; each block names the Python
// it follows. Python's datetime limits (years 1-9999, timedelta up to
// 999999999 days) become "out of range" errors here, as they raise there.
#include "metrics/render_time.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <string>

namespace stele::metrics {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kMaxDeltaSeconds = 999999999 * kDay;  // Python's timedelta.max
constexpr int64_t kMinEpoch = -62135596800;             // 0001-01-01T00:00:00Z
constexpr int64_t kMaxEpoch = 253402300799;             // 9999-12-31T23:59:59Z

constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                      "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kWeekdays = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// str.isspace() for ASCII.
bool is_py_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); }

// str.isdigit(): non-empty and all digits.
bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// int(s) for the short strings attime.py converts: surrounding whitespace, an
// optional sign, ASCII digits. nullopt where Python raises ValueError, and
// past int64 (every caller then fails on a datetime range anyway).
std::optional<int64_t> py_int(std::string_view s) {
  while (!s.empty() && is_py_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_py_space(s.back())) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (!all_digits(s)) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (v > (INT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return negative ? -v : v;
}

// --- civil calendar (proleptic Gregorian), as Python's datetime counts ---

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month, day;
};

Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = int(doy - (153 * mp + 2) / 5 + 1);
  const int m = int(mp < 10 ? mp + 3 : mp - 9);
  return {era * 400 + yoe + (m <= 2), m, d};
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// A naive (zone-less) date and time of day, like a datetime without tzinfo.
struct Wall {
  int64_t days = 0;  // since 1970-01-01
  int hour = 0, minute = 0, second = 0;
  int64_t seconds() const { return days * kDay + hour * 3600 + minute * 60 + second; }
};

// datetime(year, month, day, hour, minute): the checks Python makes.
Result<Wall> make_wall(int64_t y, int64_t m, int64_t d, int hour, int minute) {
  if (y < 1 || y > 9999) return fail("year " + std::to_string(y) + " is out of range", 400);
  if (m < 1 || m > 12) return fail("month must be in 1..12", 400);
  if (d < 1 || d > days_in_month(y, int(m))) return fail("day is out of range for month", 400);
  return Wall{days_from_civil(y, m, d), hour, minute, 0};
}

// --- zones ---

struct LocalOffset {
  int64_t gmtoff;
  bool dst;
};

std::optional<LocalOffset> local_offset(int64_t t) {
  time_t tt = time_t(t);
  struct tm out {};
  if (!localtime_r(&tt, &out)) return std::nullopt;
  return LocalOffset{out.tm_gmtoff, out.tm_isdst > 0};
}

// datetime.fromtimestamp(t, tz), without the sub-second part.
std::optional<Wall> wall_of(int64_t t, TimeZone tz) {
  int64_t local = t;
  if (tz == TimeZone::kLocal) {
    auto o = local_offset(t);
    if (!o) return std::nullopt;
    local += o->gmtoff;
  }
  Wall w;
  w.days = local >= 0 ? local / kDay : -((-local + kDay - 1) / kDay);
  int64_t rest = local - w.days * kDay;
  w.hour = int(rest / 3600);
  w.minute = int(rest / 60 % 60);
  w.second = int(rest % 60);
  return w;
}

// tz.localize(w) with pytz's default is_dst=False: a time that exists once
// maps to it; one repeated by a DST change takes its standard-time reading;
// one skipped takes the offset from before the change.
int64_t localize(const Wall& w, TimeZone tz) {
  const int64_t wall = w.seconds();
  if (tz == TimeZone::kUtc) return wall;
  auto before = local_offset(wall - kDay), after = local_offset(wall + kDay);
  if (!before || !after) return wall;
  struct Candidate {
    int64_t t;
    bool dst;
  };
  std::optional<Candidate> best;
  for (const LocalOffset& o : {*before, *after}) {
    const int64_t t = wall - o.gmtoff;
    auto at = local_offset(t);
    if (!at || at->gmtoff != o.gmtoff) continue;
    Candidate c{t, at->dst};
    if (!best || (best->dst && !c.dst) || (best->dst == c.dst && c.t > best->t)) best = c;
  }
  return best ? best->t : wall - before->gmtoff;
}

// --- attime.py ---

// getUnitString, in seconds per unit (months and years as 30 and 365 days).
std::optional<int64_t> unit_seconds(std::string_view unit) {
  if (unit.starts_with("s")) return 1;
  if (unit.starts_with("min")) return 60;
  if (unit.starts_with("h")) return 3600;
  if (unit.starts_with("d")) return kDay;
  if (unit.starts_with("w")) return 7 * kDay;
  if (unit.starts_with("mon")) return 30 * kDay;
  if (unit.starts_with("y")) return 365 * kDay;
  return std::nullopt;
}

// The time-of-day half of parseTimeReference: consumes "HH:MM[am|pm]",
// "Xam"/"XXpm", "noon", "midnight" or "teatime" from the front of `ref`.
Result<Wall> time_of_day(std::string_view& ref, int64_t days) {
  int64_t hour = 0, minute = 0;
  if (size_t i = ref.find(':'); i != std::string_view::npos && i > 0 && i < 3) {
    auto h = py_int(ref.substr(0, i)), m = py_int(ref.substr(i + 1, 2));
    if (!h || !m) return fail("invalid time of day", 400);
    hour = *h, minute = *m;
    ref = ref.substr(std::min(ref.size(), i + 3));
    if (ref.starts_with("am")) {
      ref.remove_prefix(2);
    } else if (ref.starts_with("pm")) {
      hour = (hour + 12) % 24;
      ref.remove_prefix(2);
    }
  }
  // Xam, XXam, Xpm, XXpm (12pm is midnight, as in graphite).
  for (std::string_view suffix : {"am", "pm"}) {
    size_t i = ref.find(suffix);
    if (i == std::string_view::npos || i == 0 || i >= 3) continue;
    auto h = py_int(ref.substr(0, i));
    if (!h) return fail("invalid hour", 400);
    hour = suffix == "am" ? *h : (*h + 12) % 24;
    ref = ref.substr(i + 2);
  }
  if (ref.starts_with("noon")) {
    hour = 12, minute = 0, ref.remove_prefix(4);
  } else if (ref.starts_with("midnight")) {
    hour = 0, minute = 0, ref.remove_prefix(8);
  } else if (ref.starts_with("teatime")) {
    hour = 16, minute = 0, ref.remove_prefix(7);
  }
  if (hour < 0 || hour > 23) return fail("hour must be in 0..23", 400);
  if (minute < 0 || minute > 59) return fail("minute must be in 0..59", 400);
  return Wall{days, int(hour), int(minute), 0};
}

// The day half: `date` holds today at the time of day; a day reference
// moves it or replaces its date.
Result<Wall> day_reference(std::string_view ref, Wall date) {
  if (ref.empty() || ref == "today") return date;
  if (ref == "yesterday" || ref == "tomorrow") {
    date.days += ref == "yesterday" ? -1 : 1;
    return date;
  }
  if (std::count(ref.begin(), ref.end(), '/') == 2) {  // MM/DD/YY[YY]
    size_t a = ref.find('/'), b = ref.find('/', a + 1);
    auto m = py_int(ref.substr(0, a)), d = py_int(ref.substr(a + 1, b - a - 1)), y = py_int(ref.substr(b + 1));
    if (!m || !d || !y) return fail("invalid MM/DD/YY date", 400);
    int64_t year = *y;
    if (year < 1900) year += 1900;
    if (year < 1970) year += 100;
    return make_wall(year, *m, *d, date.hour, date.minute);
  }
  if (ref.size() == 8 && all_digits(ref))  // YYYYMMDD
    return make_wall(*py_int(ref.substr(0, 4)), *py_int(ref.substr(4, 2)), *py_int(ref.substr(6, 2)), date.hour,
                     date.minute);
  if (auto month = std::find(kMonths.begin(), kMonths.end(), ref.substr(0, 3)); month != kMonths.end()) {
    std::optional<int64_t> day;  // the last two characters, else the last one
    if (all_digits(ref.substr(ref.size() - 2))) {
      day = py_int(ref.substr(ref.size() - 2));
    } else if (all_digits(ref.substr(ref.size() - 1))) {
      day = py_int(ref.substr(ref.size() - 1));
    } else {
      return fail("day of month required after month name", 400);
    }
    return make_wall(civil_from_days(date.days).year, month - kMonths.begin() + 1, *day, date.hour, date.minute);
  }
  if (auto wd = std::find(kWeekdays.begin(), kWeekdays.end(), ref.substr(0, 3)); wd != kWeekdays.end()) {
    const int64_t today = ((date.days + 4) % 7 + 7) % 7;  // 1970-01-01 was a Thursday (sun = 0)
    int64_t back = today - (wd - kWeekdays.begin());
    date.days -= back < 0 ? back + 7 : back;
    return date;
  }
  return fail("unknown day reference", 400);
}

// parseTimeReference: the instant a reference such as "noon yesterday" names.
Result<int64_t> parse_reference(std::string_view ref, int64_t now, TimeZone tz) {
  if (ref.empty() || ref == "now") return now;
  auto today = wall_of(now, tz);
  if (!today) return fail("now is out of range", 400);
  auto at = time_of_day(ref, today->days);
  if (!at) return fail(at.error());
  auto date = day_reference(ref, *at);
  if (!date) return fail(date.error());
  if (Civil c = civil_from_days(date->days); c.year < 1 || c.year > 9999) return fail("date is out of range", 400);
  return localize(*date, tz);
}

// "invalid time '<value>': <why>".
tl::unexpected<Error> bad_time(std::string_view value, std::string_view why) {
  return fail("invalid time '" + std::string(value) + "': " + std::string(why), 400);
}

}  // namespace

Result<int64_t> parse_time_offset(std::string_view offset) {
  if (offset.empty()) return 0;
  int64_t sign = 1;
  if (!is_digit(offset[0])) {
    if (offset[0] != '+' && offset[0] != '-') return fail("invalid offset '" + std::string(offset) + "'", 400);
    sign = offset[0] == '-' ? -1 : 1;
    offset.remove_prefix(1);
  }
  int64_t total = 0;
  while (!offset.empty()) {
    size_t n = 0;
    while (n < offset.size() && is_digit(offset[n])) ++n;
    auto num = py_int(offset.substr(0, n));
    if (!num) return fail("invalid offset '" + std::string(offset) + "': a number must come first", 400);
    offset.remove_prefix(n);
    size_t u = 0;
    while (u < offset.size() && is_alpha(offset[u])) ++u;
    std::string_view unit = offset.substr(0, u);
    offset.remove_prefix(u);
    auto per = unit_seconds(unit);
    if (!per) return fail("invalid offset unit '" + std::string(unit) + "'", 400);
    if (*num > kMaxDeltaSeconds / *per) return fail("offset is out of range", 400);
    total += sign * *num * *per;
    if (total > kMaxDeltaSeconds || total < -kMaxDeltaSeconds) return fail("offset is out of range", 400);
  }
  return total;
}

Result<int64_t> parse_at_time(std::string_view value, int64_t now, TimeZone tz) {
  // s.strip().lower().replace('_','').replace(',','').replace(' ','')
  std::string_view trimmed = value;
  while (!trimmed.empty() && is_py_space(trimmed.front())) trimmed.remove_prefix(1);
  while (!trimmed.empty() && is_py_space(trimmed.back())) trimmed.remove_suffix(1);
  std::string s;
  s.reserve(trimmed.size());
  for (char c : trimmed) {
    if (c == '_' || c == ',' || c == ' ') continue;
    s.push_back(c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c);
  }

  if (all_digits(s)) {
    const bool yyyymmdd =
        s.size() == 8 && *py_int(s.substr(0, 4)) > 1900 && *py_int(s.substr(4, 2)) < 13 && *py_int(s.substr(6, 2)) < 32;
    if (!yyyymmdd) {  // epoch seconds
      auto t = py_int(s);
      if (!t || *t > kMaxEpoch) return bad_time(value, "timestamp out of range");
      if (auto w = wall_of(*t, tz); !w || civil_from_days(w->days).year > 9999)
        return bad_time(value, "timestamp out of range");
      return *t;
    }
  }

  std::string_view ref = s, offset;
  if (size_t plus = s.find('+'); plus != std::string::npos) {
    ref = std::string_view(s).substr(0, plus), offset = std::string_view(s).substr(plus);
  } else if (size_t minus = s.find('-'); minus != std::string::npos) {
    ref = std::string_view(s).substr(0, minus), offset = std::string_view(s).substr(minus);
  }
  auto base = parse_reference(ref, now, tz);
  if (!base) return bad_time(value, base.error().message);
  auto delta = parse_time_offset(offset);
  if (!delta) return bad_time(value, delta.error().message);
  const int64_t t = *base + *delta;
  if (t < kMinEpoch || t > kMaxEpoch) return bad_time(value, "date is out of range");
  return t;
}

Result<TimeRange> parse_time_range(std::optional<std::string_view> from, std::optional<std::string_view> until,
                                   int64_t now, TimeZone tz) {
  int64_t end = now;
  if (until) {
    auto t = parse_at_time(*until, now, tz);
    if (!t) return fail("until: " + t.error().message, 400);
    end = *t;
  }
  auto start = parse_at_time(from ? *from : "-1d", now, tz);
  if (!start) return fail("from: " + start.error().message, 400);
  TimeRange r{std::min(*start, end), std::max(*start, end)};
  if (r.from == r.until) return fail("from and until give an empty time range", 400);
  return r;
}

}  // namespace stele::metrics
