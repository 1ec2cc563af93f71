// LTSV formatting of access records (access_log.h).
#include "router/access_log.h"

#include <cstdio>
#include <ctime>
#include <utility>

namespace stele::router {

namespace {

void append_value(std::string& out, std::string_view v) {
  if (v.empty()) {
    out += '-';
    return;
  }
  for (char c : v) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
}

// "2026-11-27T03:09:09.123Z"; the date part is formatted once per second.
void append_time(std::string& out, int64_t ms) {
  thread_local int64_t cached_s = -1;
  thread_local char prefix[64];
  int64_t s = ms / 1000;
  if (s != cached_s) {
    time_t t = static_cast<time_t>(s);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_s = s;
  }
  char millis[8];
  snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ms % 1000));
  out += prefix;
  out += millis;
}

}  // namespace

void append_ltsv(const AccessRecord& r, std::string& out) {
  char status[16], size[24], reqtime[32];
  snprintf(status, sizeof status, "%d", r.status);
  snprintf(size, sizeof size, "%llu", static_cast<unsigned long long>(r.bytes_sent));
  snprintf(reqtime, sizeof reqtime, "%.3f", r.request_time_s);
  out += "time:";
  append_time(out, r.time_ms);
  const std::pair<const char*, std::string_view> fields[] = {
      {"\thost:", r.host},     {"\tmethod:", r.method},     {"\tpath:", r.path},
      {"\tstatus:", status},   {"\tsize:", size},           {"\treqtime:", reqtime},
      {"\tupstream:", r.upstream}, {"\tapp:", r.app},       {"\ttask:", r.task},
      {"\tscheme:", r.scheme},
  };
  for (const auto& [key, value] : fields) {
    out += key;
    append_value(out, value);
  }
}

std::string format_ltsv(const AccessRecord& r) {
  std::string out;
  out.reserve(160 + r.path.size() + r.host.size());
  append_ltsv(r, out);
  return out;
}

}  // namespace stele::router
