// Where a task's stdout/stderr go. The executor reads the task's pipes and
// hands every chunk to the sinks of that stream, so it stays in the data path
// (a later sink turns lines into log records).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/executor_io.h"

namespace stele {

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // Called with arbitrary chunks (not line-aligned), in order.
  virtual void write(std::string_view data) = 0;
};

// Appends to `path`; once the file would pass `max_bytes` it is renamed to
// `path`.1 (replacing the previous one) and a new file is started, so at most
// about 2 * max_bytes are kept. Open errors are remembered and retried on the
// next rotation; a sink never throws.
class RotatingFileSink final : public OutputSink {
 public:
  static constexpr uint64_t kDefaultMaxBytes = 10ull << 20;
  explicit RotatingFileSink(std::string path, uint64_t max_bytes = kDefaultMaxBytes);
  void write(std::string_view data) override;
  const std::string& path() const { return path_; }

 private:
  void open();
  void rotate();

  std::string path_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  UniqueFd fd_;
};

}  // namespace stele
