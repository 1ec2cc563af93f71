#include "docker/stream_decoders.h"

#include <algorithm>

namespace stele::docker {

const char* stream_name(StreamKind k) {
  switch (k) {
    case StreamKind::kStdin: return "stdin";
    case StreamKind::kStdout: return "stdout";
    case StreamKind::kStderr: return "stderr";
    case StreamKind::kSystemError: return "system error";
  }
  return "?";
}

Result<void> FrameDecoder::feed(std::string_view chunk, const Sink& sink) {
  if (error_) return fail(*error_);
  while (!chunk.empty()) {
    if (remaining_ == 0) {
      size_t take = std::min(chunk.size(), header_.size() - header_len_);
      std::copy_n(chunk.begin(), take, header_.begin() + header_len_);
      header_len_ += take, chunk.remove_prefix(take);
      if (header_len_ < header_.size()) break;
      header_len_ = 0;
      if (header_[0] > 3) {
        error_ = "docker: not a multiplexed stream (frame header names stream " + std::to_string(header_[0]) + ")";
        return fail(*error_);
      }
      kind_ = static_cast<StreamKind>(header_[0]);
      remaining_ = uint32_t(header_[4]) << 24 | uint32_t(header_[5]) << 16 | uint32_t(header_[6]) << 8 | header_[7];
      continue;
    }
    size_t take = std::min<size_t>(chunk.size(), remaining_);
    sink(kind_, chunk.substr(0, take));
    remaining_ -= static_cast<uint32_t>(take), chunk.remove_prefix(take);
  }
  return {};
}

Result<void> JsonLinesDecoder::feed(std::string_view chunk, const Sink& sink) {
  if (error_) return fail(*error_);
  for (size_t nl; (nl = chunk.find('\n')) != std::string_view::npos; chunk.remove_prefix(nl + 1)) {
    Result<void> r;
    if (partial_.empty()) {
      r = line(chunk.substr(0, nl), sink);
    } else {
      partial_.append(chunk.substr(0, nl));
      r = line(partial_, sink);
      partial_.clear();
    }
    if (!r) return r;
  }
  if (partial_.size() + chunk.size() > max_line_) {
    error_ = "docker: JSON line longer than " + std::to_string(max_line_) + " bytes";
    return fail(*error_);
  }
  partial_.append(chunk);
  return {};
}

Result<void> JsonLinesDecoder::finish(const Sink& sink) {
  if (error_) return fail(*error_);
  std::string last = std::move(partial_);
  partial_.clear();
  return line(last, sink);
}

Result<void> JsonLinesDecoder::line(std::string_view text, const Sink& sink) {
  if (text.size() > max_line_) {  // before trimming: the same limit feed() applies to a partial line
    error_ = "docker: JSON line longer than " + std::to_string(max_line_) + " bytes";
    return fail(*error_);
  }
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return {};
  auto j = parse_json(text);
  if (!j) {
    error_ = "docker: bad JSON line in stream: " + j.error().message;
    return fail(*error_);
  }
  sink(std::move(*j));
  return {};
}

void BuildProgress::on_message(const Json& m) {
  if (!m.is_object()) return;
  if (auto s = m.find("stream"); s != m.end() && s->is_string()) {
    partial_ += s->get<std::string>();
    for (size_t nl; (nl = partial_.find('\n')) != std::string::npos; partial_.erase(0, nl + 1))
      if (nl > 0 && on_line_) on_line_(std::string_view(partial_).substr(0, nl));
  }
  if (auto a = m.find("aux"); a != m.end() && a->is_object()) {
    if (auto id = a->find("ID"); id != a->end() && id->is_string()) image_id_ = id->get<std::string>();
  }
  auto e = m.find("error");
  if (e != m.end() && e->is_string() && !error_) error_ = e->get<std::string>();
  auto d = m.find("errorDetail");
  if (!error_ && d != m.end() && d->is_object() && d->contains("message") && (*d)["message"].is_string())
    error_ = (*d)["message"].get<std::string>();
}

Result<std::string> BuildProgress::finish() {
  if (!partial_.empty() && on_line_) on_line_(partial_);
  partial_.clear();
  if (error_) return fail(*error_);
  if (image_id_.empty()) return fail("the engine reported no image id");
  return image_id_;
}

}  // namespace stele::docker
