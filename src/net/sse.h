// Server-sent events: formatting and an incremental parser.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace stele::net {

struct SseEvent {
  std::string id, event, data;
};

// "id: ..\nevent: ..\ndata: ..\n\n" (data split on newlines).
std::string format_sse(const SseEvent& e);

// Feed bytes as they arrive; calls on_event for each complete event.
class SseParser {
 public:
  explicit SseParser(std::function<void(const SseEvent&)> on_event) : on_event_(std::move(on_event)) {}
  void feed(std::string_view bytes);

 private:
  void line(std::string_view l);
  std::function<void(const SseEvent&)> on_event_;
  std::string buf_;
  SseEvent cur_;
  bool has_data_ = false;
};

}  // namespace stele::net
