#include "agent/steps.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>
#include <utility>  // before Asio with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "agent/executor_protocol.h"
#include "artifact/slug.h"
#include "net/http_client.h"
#include "net/signal.h"

namespace stele::agent {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// ---- the launch command's "step"

Result<std::optional<StepSpec>> parse_step(const Json& cmd) {
  if (!cmd.contains("step") || cmd["step"].is_null()) return std::optional<StepSpec>();
  const Json& j = cmd["step"];
  Error err{"invalid step", {}, 422};
  auto bad = [&](std::string path, std::string why) { err.details.push_back({"/step/" + path, {why}}); };
  if (!j.is_object()) return fail(Error{"invalid step", {{"/step", {"must be an object"}}}, 422});
  StepSpec s;
  auto text = [&](const char* key, std::string& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (j[key].is_string()) out = j[key].get<std::string>();
    else bad(key, "must be a string");
  };
  text("kind", s.kind);
  text("cmd", s.cmd);
  text("source", s.source);
  text("cacheKey", s.cache_key);
  if (j.contains("timeoutSeconds") && !j["timeoutSeconds"].is_null()) {
    if (j["timeoutSeconds"].is_number() && j["timeoutSeconds"].get<double>() >= 0)
      s.timeout_seconds = j["timeoutSeconds"].get<double>();
    else bad("timeoutSeconds", "must be a non-negative number");
  }
  static const std::set<std::string> kinds = {"build", "test", "release", "run"};
  if (!kinds.count(s.kind)) bad("kind", "must be one of build, test, release, run");
  if (s.cmd.empty()) bad("cmd", "is required");
  if (!err.details.empty()) return fail(std::move(err));
  return std::optional<StepSpec>(std::move(s));
}

std::string step_shell_command(const std::string& cmd) { return "exec 2>&1\n" + cmd; }

// ---- reading the output file

namespace {

// `path` if it is a regular file owned by us (the executor runs as root
// like the agent), opened without following a final symlink.
UniqueFd open_trusted(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) return UniqueFd();
  return fd;
}

uint64_t file_size(const UniqueFd& fd) {
  struct stat st;
  return fd && ::fstat(fd.get(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

ino_t inode(const UniqueFd& fd) {
  struct stat st;
  return fd && ::fstat(fd.get(), &st) == 0 ? st.st_ino : 0;
}

std::string pread_some(const UniqueFd& fd, uint64_t pos, size_t max) {
  std::string buf(max, '\0');
  ssize_t n;
  do n = ::pread(fd.get(), buf.data(), max, off_t(pos));
  while (n < 0 && errno == EINTR);
  buf.resize(n > 0 ? size_t(n) : 0);
  return buf;
}

}  // namespace

OutputTail::OutputTail(std::string sandbox) : sandbox_(std::move(sandbox)) {}

// The executor renames stdout to stdout.1 and starts a new stdout: the file
// we hold becomes the previous one. The first open (a restarted agent may
// find a rotation already done) takes stdout.1 as the start of the output.
void OutputTail::follow_rotation() {
  std::string path = sandbox_ + "/" + sandbox_files::kStdout;
  if (!opened_) {
    UniqueFd cur = open_trusted(path);
    if (!cur) return;
    opened_ = true;
    prev_ = open_trusted(path + ".1");
    cur_start_ = file_size(prev_);
    cur_ = std::move(cur);
    return;
  }
  UniqueFd now = open_trusted(path);
  if (!now || inode(now) == inode(cur_)) return;
  prev_start_ = cur_start_;
  cur_start_ += file_size(cur_);
  prev_ = std::move(cur_);
  cur_ = std::move(now);
}

std::string OutputTail::read(uint64_t& offset, size_t max) {
  follow_rotation();
  if (!cur_) return {};
  if (offset >= cur_start_) return pread_some(cur_, offset - cur_start_, max);
  if (prev_ && offset >= prev_start_) {
    std::string out = pread_some(prev_, offset - prev_start_, std::min<uint64_t>(max, cur_start_ - offset));
    if (!out.empty()) return out;
  }
  spdlog::warn("output of {}: bytes {}..{} were rotated away; skipped", sandbox_, offset, cur_start_);
  offset = cur_start_;
  return pread_some(cur_, 0, max);
}

// ---- shipping it

struct OutputShipper::State {
  explicit State(asio::any_io_executor ex) : io(ex), wake(ex), done_signal(ex) {}
  asio::any_io_executor io;
  OutputShipperOptions opts;
  net::AsyncSignal wake, done_signal;
  uint64_t offset = 0;  // what the server has
  bool finishing = false, done = false, stopped = false;
  int refusals = 0;     // consecutive 4xx answers other than 409
};

namespace {
constexpr size_t kChunk = 1 << 20;
constexpr int kMaxRefusals = 100;  // ~8 minutes of 4xx answers: the server will not take it

// The offset the server reports after a POST, or an error to retry.
Result<uint64_t> next_offset(uint64_t offset, const std::string& body, Result<net::ClientResponse> r,
                             int& refusals) {
  if (!r) return fail(r.error().message);
  auto j = r->json();
  bool has_offset = j && j->is_object() && (*j)["offset"].is_number_unsigned();
  if ((r->status / 100 == 2 || r->status == 409) && has_offset) {
    refusals = 0;
    return (*j)["offset"].get<uint64_t>();
  }
  if (r->status / 100 == 2) return offset + body.size();
  if (r->status / 100 == 4 && r->status != 409) ++refusals;
  return fail("HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200));
}
}  // namespace

OutputShipper::OutputShipper(asio::any_io_executor io, OutputShipperOptions opts)
    : state_(std::make_shared<State>(io)) {
  state_->opts = std::move(opts);
}

OutputShipper::~OutputShipper() {
  state_->stopped = true;
  state_->wake.notify();
}

void OutputShipper::start() { asio::co_spawn(state_->io, run(state_), asio::detached); }

void OutputShipper::finish() {
  state_->finishing = true;
  state_->wake.notify();
}

net::awaitable<void> OutputShipper::drained() {
  auto s = state_;
  while (!s->done && !s->stopped) co_await s->done_signal.wait(1s);
}

uint64_t OutputShipper::delivered() const { return state_->offset; }

net::awaitable<void> OutputShipper::run(std::shared_ptr<State> s) {
  OutputTail tail(s->opts.sandbox);
  const OutputShipperOptions& o = s->opts;
  net::Headers headers = o.headers;
  headers.emplace_back("Content-Type", "application/octet-stream");
  auto backoff = 200ms;
  while (!s->stopped) {
    bool last_round = s->finishing;  // read after the end: the file is complete
    uint64_t at = s->offset;
    std::string chunk = tail.read(at, kChunk);
    if (chunk.empty()) {
      if (last_round) break;
      co_await s->wake.wait(200ms);
      continue;
    }
    std::string url = o.server_url + "/api/v1/agent/output?task=" + net::percent_encode(o.task_id) +
                      "&offset=" + std::to_string(at);
    auto r = co_await net::http_request("POST", url, chunk, headers, 30s);
    if (s->stopped) co_return;
    auto next = next_offset(at, chunk, std::move(r), s->refusals);
    if (next) {
      s->offset = *next;
      backoff = 200ms;
      continue;
    }
    spdlog::warn("output of {}: {} (retrying)", o.task_id, next.error().message);
    if (s->refusals >= kMaxRefusals) {
      spdlog::error("output of {}: the server keeps refusing it; giving up", o.task_id);
      break;
    }
    co_await net::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  s->done = true;
  s->done_signal.notify();
}

// ---- the built slug

namespace {
Result<std::string> read_whole(const std::string& path) {
  auto data = read_file(path);
  if (!data) return fail(errno_message("read " + path, errno));
  return std::move(*data);
}

Result<void> put_slug(const std::string& url, const std::string& body, net::Headers headers) {
  headers.emplace_back("Content-Type", "application/octet-stream");
  std::string last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(500 << attempt));
    auto r = net::http_request_sync("PUT", url, body, headers, std::chrono::seconds(300));
    if (r && r->status / 100 == 2) return {};
    last = r ? "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200) : r.error().message;
    if (r && r->status / 100 == 4) break;  // refused: retrying will not help
  }
  return fail(last);
}
}  // namespace

Result<UploadedSlug> pack_and_upload(const std::string& app_dir, const std::string& out_dir,
                                     const std::string& server_url, const net::Headers& headers) {
  auto slug = artifact::make_slug(app_dir, out_dir);
  if (!slug) return fail(slug.error().message);
  auto body = read_whole(slug->path);
  if (!body) return fail(body.error());
  if (auto r = put_slug(server_url + "/api/v1/artifacts/" + slug->digest, *body, headers); !r) return fail(r.error());
  return UploadedSlug{slug->digest, slug->size};
}

}  // namespace stele::agent
