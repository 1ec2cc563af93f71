#include "agent/executor_protocol.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/executor_io.h"

namespace stele {

void to_json(Json& j, const TaskStatus& s) {
  j = Json{{"type", "status"},   {"task_id", s.task_id}, {"state", s.state},
           {"pid", s.pid},       {"started_ms", s.started_ms}, {"reason", s.reason},
           {"message", s.message}, {"time_ms", s.time_ms}};
  if (s.exit_code) j["exit_code"] = *s.exit_code;
  if (s.signal) j["signal"] = *s.signal;
}

void from_json(const Json& j, TaskStatus& s) {
  s.task_id = j.value("task_id", std::string());
  s.state = j.value("state", std::string());
  s.pid = j.value("pid", 0);
  s.started_ms = j.value("started_ms", int64_t(0));
  s.time_ms = j.value("time_ms", int64_t(0));
  s.reason = j.value("reason", std::string());
  s.message = j.value("message", std::string());
  s.exit_code = j.contains("exit_code") && j["exit_code"].is_number_integer()
                    ? std::optional<int>(j["exit_code"].get<int>())
                    : std::nullopt;
  s.signal = j.contains("signal") && j["signal"].is_number_integer()
                 ? std::optional<int>(j["signal"].get<int>())
                 : std::nullopt;
}

bool is_terminal_state(const std::string& state) {
  return state == "finished" || state == "failed" || state == "killed" || state == "lost";
}

Result<TaskStatus> read_status_file(const std::string& dir) {
  std::string path = dir + "/" + sandbox_files::kStatus;
  auto text = read_file(path);
  if (!text) return fail(errno_message("read " + path, errno));
  auto j = parse_json(*text);
  if (!j) return fail(path + ": " + j.error().message);
  try {
    return j->get<TaskStatus>();
  } catch (const std::exception& e) {
    return fail(path + ": " + e.what());
  }
}

Result<void> write_status_file(const std::string& dir, const TaskStatus& s) {
  return write_file_atomic(dir + "/" + sandbox_files::kStatus, Json(s).dump() + "\n");
}

int connect_executor_socket(const std::string& dir) {
  std::string path = dir + "/" + sandbox_files::kSocket;
  UniqueFd dirfd;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    dirfd.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return -1;
    path = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/" + sandbox_files::kSocket;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Non-blocking: a full listen backlog fails (EAGAIN) instead of stalling
  // the caller's thread.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return -1;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  return fd.release();
}

}  // namespace stele
