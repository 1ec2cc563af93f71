// Where a task's stdout/stderr go. The executor reads the task's pipes and
// hands every chunk to the sinks of that stream, so it stays in the data path
// (a later sink turns lines into log records).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/executor_io.h"
#include "logs/line_splitter.h"
#include "logs/spool.h"

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

// The task's output as log records (issue 4 point 1): one spool in the
// sandbox (`records.*`, logs/spool.h) that the agent ships. Each line of a
// stream becomes {"app", "release", "task", "node", "stream", ["step",] "log"}
// tagged `tag_base + "." + stream` (design.md "Names": `stele.<app
// name>.stdout|stderr`), or `fixed_tag` for every stream (pipeline steps:
// `stele.<app name>.pipeline`), timed when the executor read it (ns).
struct RecordFields {
  std::string app, task, node, step;
  int64_t release = 0;
  std::string tag_base;   // "stele.<app name>"
  std::string fixed_tag;  // non-empty: used for every stream
};

class TaskRecords {
 public:
  static constexpr const char* kPrefix = "records";
  TaskRecords(const std::string& sandbox, RecordFields fields);
  // One chunk read from stream 0 (stdout) or 1 (stderr).
  void write(int stream, std::string_view data);
  // Emits partial lines waiting longer than this (the executor's timer).
  bool has_partial() const;
  void flush_partials();
  // EOF of both pipes: the last partial lines, then the spool's end marker.
  void finish();

 private:
  void emit(int stream, std::string_view line, int64_t now_ns);
  std::string tag_[2];
  std::string prefix_[2];  // msgpack map header + fixed fields + the "log" key
  std::string rec_;
  logs::LineSplitter split_[2];
  logs::SpoolWriter spool_;
};

// Both: the rotating file and the records.
class RecordSink final : public OutputSink {
 public:
  RecordSink(std::unique_ptr<OutputSink> file, TaskRecords& records, int stream)
      : file_(std::move(file)), records_(records), stream_(stream) {}
  void write(std::string_view data) override {
    if (file_) file_->write(data);
    records_.write(stream_, data);
  }

 private:
  std::unique_ptr<OutputSink> file_;
  TaskRecords& records_;
  int stream_;
};

}  // namespace stele
