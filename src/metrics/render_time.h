// The render API's `from` / `until` values and interval strings, parsed as
// graphite-web 1.1.8 does (webapp/graphite/render/attime.py: parseATTime,
// parseTimeReference, parseTimeOffset, getUnitString), so that a dashboard
// asking Stele and graphite-web for the same range gets the same seconds.
//
// Accepted (after graphite's normalisation: trim, lower-case, drop every
// '_', ',' and ' '):
//   - epoch seconds: all digits, except 8 digits that look like YYYYMMDD;
//   - REF[+|-OFFSET]: the first '+' (else the first '-') splits a time
//     reference from an offset;
//   - REF: "" or "now"; an optional time of day first ("HH:MM" with "am"/"pm",
//     "Xam", "XXpm", "noon", "midnight", "teatime"), then an optional day:
//     "today", "yesterday", "tomorrow", "MM/DD/YY[YY]", "YYYYMMDD",
//     a month name and day ("jan5", "march15"), a weekday ("monday": the most
//     recent one, today included). A time of day alone means today.
//     "HH:MM_YYYYMMDD" is a time of day followed by a YYYYMMDD day.
//   - OFFSET: one or more NUMBER UNIT pairs, all taking the sign in front
//     ("-1h30min"); units by prefix: s* seconds, min* minutes, h* hours,
//     d* days, w* weeks, mon* months (30 days), y* years (365 days).
// graphite's quirks are kept on purpose: "12pm" is midnight, "13am" is 13:00,
// "m" alone is no unit, "-1hours_ago" is -1h (any letters after the prefix).
//
// Wall-clock names ("midnight", "YYYYMMDD", weekdays...) are read in a
// TimeZone: UTC, or the process's own zone (the TZ environment variable, else
// /etc/localtime). graphite's per-request `tz` names (pytz zones) are not
// supported here. A local time that a DST change skips or repeats resolves as
// pytz's localize(is_dst=False) does: the standard-time reading.
//
// Pure apart from reading the process's zone; thread-safe as long as nobody
// changes TZ while it runs (localtime_r reads the zone once).
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace stele::metrics {

enum class TimeZone : uint8_t {
  kUtc,
  kLocal,  // the process's zone: TZ, else /etc/localtime
};

// graphite's parseATTime: `value` as epoch seconds, given the current time
// `now` (epoch seconds). A bad value is a 400 naming it:
// "invalid time '-1x': invalid offset unit 'x'".
Result<int64_t> parse_at_time(std::string_view value, int64_t now, TimeZone tz);

// graphite's parseTimeOffset, used as is for interval arguments ("1h",
// "-7d", "+30min"): case-sensitive, no whitespace, a missing sign is '+'.
// The empty string is 0. Returns seconds.
Result<int64_t> parse_time_offset(std::string_view offset);

struct TimeRange {
  int64_t from = 0;   // inclusive start, epoch seconds
  int64_t until = 0;  // end, epoch seconds; always > from
};

// The render request's range as graphite-web's views.py builds it: `until`
// defaults to now, `from` to "-1d"; the two are swapped when from > until;
// an empty range is refused. Errors name the parameter ("from: invalid
// time ...").
Result<TimeRange> parse_time_range(std::optional<std::string_view> from, std::optional<std::string_view> until,
                                   int64_t now, TimeZone tz);

}  // namespace stele::metrics
