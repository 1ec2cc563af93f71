// LineSplitter: turns a byte stream (pipe reads split anywhere) into lines,
// as a task's executor does with its stdout/stderr (issue 4 point 1).
// Partial lines are joined across feeds; a line longer than max_line keeps
// its first max_line bytes and ends with a marker saying how many bytes were
// cut (memory stays bounded: the rest is counted, not kept). The newline is
// not part of the line; a trailing '\r' is kept (it is the program's).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace stele::logs {

class LineSplitter {
 public:
  static constexpr size_t kDefaultMaxLine = 16 * 1024;
  explicit LineSplitter(size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

  // Calls emit(std::string_view line) for every line completed by `data`.
  template <class Emit>
  void feed(std::string_view data, Emit&& emit) {
    while (!data.empty()) {
      size_t nl = data.find('\n');
      std::string_view piece = data.substr(0, nl);
      if (partial_.empty() && cut_ == 0 && nl != std::string_view::npos && piece.size() <= max_line_) {
        emit(piece);  // the common case: a whole line inside one read, no copy
      } else {
        take(piece);
        if (nl != std::string_view::npos) emit_partial(emit);
      }
      if (nl == std::string_view::npos) break;
      data.remove_prefix(nl + 1);
    }
  }

  // Emits the pending partial line (at EOF, or when it waited too long).
  template <class Emit>
  void flush(Emit&& emit) {
    if (!partial_.empty() || cut_ > 0) emit_partial(emit);
  }

  bool has_partial() const { return !partial_.empty() || cut_ > 0; }
  uint64_t truncated_lines() const { return truncated_; }

 private:
  void take(std::string_view piece) {
    size_t room = max_line_ > partial_.size() ? max_line_ - partial_.size() : 0;
    partial_.append(piece.substr(0, room));
    if (piece.size() > room) cut_ += piece.size() - room;
  }
  template <class Emit>
  void emit_partial(Emit& emit) {
    if (cut_ > 0) {
      partial_ += " [stele: line truncated, ";
      partial_ += std::to_string(cut_);
      partial_ += " more bytes dropped]";
      ++truncated_;
    }
    emit(std::string_view(partial_));
    partial_.clear();
    cut_ = 0;
  }

  size_t max_line_;
  std::string partial_;
  uint64_t cut_ = 0;
  uint64_t truncated_ = 0;
};

}  // namespace stele::logs
