#include "agent/executor_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logs/msgpack.h"

namespace stele {

RotatingFileSink::RotatingFileSink(std::string path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  open();
}

void RotatingFileSink::open() {
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
  struct stat st;
  size_ = fd_ && ::fstat(fd_.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void RotatingFileSink::rotate() {
  fd_.reset();
  std::string old = path_ + ".1";
  ::rename(path_.c_str(), old.c_str());
  // The sandbox is writable by the task: never append to something it planted.
  ::unlink(path_.c_str());
  open();
}

void RotatingFileSink::write(std::string_view data) {
  while (!data.empty()) {
    if (size_ >= max_bytes_) rotate();
    if (!fd_) return;
    uint64_t room = max_bytes_ - size_;
    std::string_view part = data.substr(0, static_cast<size_t>(std::min<uint64_t>(room, data.size())));
    if (!write_all(fd_.get(), part)) return;
    size_ += part.size();
    data.remove_prefix(part.size());
  }
}

}  // namespace stele

// ---- records

namespace stele {

namespace {
int64_t realtime_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

TaskRecords::TaskRecords(const std::string& sandbox, RecordFields f) : spool_(sandbox, kPrefix) {
  static const char* const kStream[2] = {"stdout", "stderr"};
  for (int i = 0; i < 2; ++i) {
    tag_[i] = f.fixed_tag.empty() ? f.tag_base + "." + kStream[i] : f.fixed_tag;
    std::string& p = prefix_[i];
    logs::msgpack::Writer w(p);
    w.map(f.step.empty() ? 6 : 7);
    w.str("app"), w.str(f.app);
    w.str("release"), w.integer(f.release);
    w.str("task"), w.str(f.task);
    w.str("node"), w.str(f.node);
    w.str("stream"), w.str(kStream[i]);
    if (!f.step.empty()) w.str("step"), w.str(f.step);
    w.str("log");
  }
}

void TaskRecords::emit(int stream, std::string_view line, int64_t now_ns) {
  rec_.assign(prefix_[stream]);
  logs::msgpack::Writer(rec_).str(line);
  spool_.append(tag_[stream], now_ns, rec_);
}

void TaskRecords::write(int stream, std::string_view data) {
  int64_t now = realtime_ns();
  split_[stream].feed(data, [&](std::string_view line) { emit(stream, line, now); });
  spool_.flush();
}

bool TaskRecords::has_partial() const { return split_[0].has_partial() || split_[1].has_partial(); }

void TaskRecords::flush_partials() {
  int64_t now = realtime_ns();
  for (int i = 0; i < 2; ++i) split_[i].flush([&](std::string_view line) { emit(i, line, now); });
  spool_.flush();
}

void TaskRecords::finish() {
  flush_partials();
  spool_.finish();
}

}  // namespace stele
