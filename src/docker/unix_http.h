// Blocking HTTP/1.1 over a unix socket (the Engine API's transport). Each
// exchange opens its own connection and runs Beast on a private io_context
// until done or until its deadline, when the socket is closed and the call
// fails with "timed out". No threads; safe to use from the executor's single
// thread. Not thread-safe (one UnixHttp per thread).
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stele::docker {

using Deadline = std::chrono::steady_clock::time_point;
inline Deadline deadline_in(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }
inline constexpr Deadline kNoDeadline = Deadline::max();

struct HttpCall {
  std::string method = "GET";
  std::string target;        // "/v1.41/containers/json?all=1"
  std::string body;          // sent when body_file is empty
  std::string body_file;     // path whose bytes are the body (load, build)
  std::string content_type;  // default "application/json" when a body is sent
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;  // whole body; for stream(): only the body of a non-2xx answer (≤ 64 KiB)
};

class UnixHttp {
 public:
  explicit UnixHttp(std::string socket_path) : path_(std::move(socket_path)) {}
  const std::string& socket_path() const { return path_; }

  // The whole answer (body up to 256 MiB). Transport failures (no socket,
  // refused, timed out, malformed answer) are errors; any HTTP status is not.
  Result<HttpReply> exchange(const HttpCall& call, Deadline deadline) const;

  // A 2xx body goes to on_data piece by piece as it arrives, until it ends
  // or on_data returns false; other answers are returned whole in the reply.
  Result<HttpReply> stream(const HttpCall& call, Deadline deadline,
                           const std::function<bool(std::string_view)>& on_data) const;

 private:
  std::string path_;
};

}  // namespace stele::docker
