#include "net/sse.h"

namespace stele::net {

std::string format_sse(const SseEvent& e) {
  std::string out;
  if (!e.id.empty()) out += "id: " + e.id + "\n";
  if (!e.event.empty()) out += "event: " + e.event + "\n";
  size_t i = 0;
  for (;;) {
    size_t j = e.data.find('\n', i);
    out += "data: " + e.data.substr(i, j == std::string::npos ? std::string::npos : j - i) + "\n";
    if (j == std::string::npos) break;
    i = j + 1;
  }
  out += "\n";
  return out;
}

void SseParser::feed(std::string_view bytes) {
  buf_.append(bytes);
  size_t start = 0;
  for (;;) {
    size_t nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view l(buf_.data() + start, nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    line(l);
    start = nl + 1;
  }
  buf_.erase(0, start);
}

void SseParser::line(std::string_view l) {
  if (l.empty()) {
    if (has_data_) on_event_(cur_);
    cur_ = SseEvent{};
    has_data_ = false;
    return;
  }
  if (l[0] == ':') return;  // comment / keepalive
  auto colon = l.find(':');
  std::string_view field = l.substr(0, colon), value;
  if (colon != std::string_view::npos) {
    value = l.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "id") cur_.id = value;
  else if (field == "event") cur_.event = value;
  else if (field == "data") {
    if (has_data_) cur_.data += "\n";
    cur_.data += value;
    has_data_ = true;
  }
}

}  // namespace stele::net
