#include "metrics/carbon_relay.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/http_server.h"  // split_host_port

namespace stele::metrics {

Result<std::unique_ptr<CarbonRelay>> CarbonRelay::create(std::string upstream, size_t max_queue_bytes) {
  auto hp = net::split_host_port(upstream);
  if (!hp || hp->second == 0) return fail("--carbon-relay: expected host:port, got '" + upstream + "'");
  return std::unique_ptr<CarbonRelay>(
      new CarbonRelay(hp->first, std::to_string(hp->second), std::move(upstream), max_queue_bytes));
}

CarbonRelay::CarbonRelay(std::string host, std::string port, std::string upstream, size_t max_queue_bytes)
    : host_(std::move(host)), port_(std::move(port)), upstream_(std::move(upstream)), max_queue_bytes_(max_queue_bytes) {}

CarbonRelay::~CarbonRelay() { stop(); }

void CarbonRelay::start() {
  std::lock_guard<std::mutex> lk(mu_);
  if (running_) return;
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void CarbonRelay::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!running_) return;
    running_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CarbonRelay::enqueue(std::span<const Point> points) {
  if (points.empty() || !active_) return;
  std::string chunk;
  chunk.reserve(points.size() * 48);
  uint64_t n = 0;
  for (const Point& p : points) {
    if (std::isnan(p.value)) continue;
    fmt::format_to(std::back_inserter(chunk), "{} {} {}\n", p.name, p.value, p.time_s);
    ++n;
  }
  std::lock_guard<std::mutex> lk(mu_);
  queued_bytes_ += chunk.size();
  queue_.push_back(Chunk{next_id_++, std::move(chunk), n});
  while (queued_bytes_ > max_queue_bytes_ && queue_.size() > 1) {
    queued_bytes_ -= queue_.front().lines.size();
    dropped_ += queue_.front().points;
    queue_.pop_front();
  }
  cv_.notify_one();
}

namespace {
int connect_to(const std::string& host, const std::string& port, std::string& err) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    err = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    err = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}
}  // namespace

void CarbonRelay::run() {
  int fd = -1;
  auto backoff = std::chrono::milliseconds(250);
  std::unique_lock<std::mutex> lk(mu_);
  while (running_) {
    if (queue_.empty()) {
      cv_.wait(lk, [&] { return !running_ || !queue_.empty(); });
      continue;
    }
    Chunk c = queue_.front();  // copied: kept in the queue until written
    const std::string& chunk = c.lines;
    lk.unlock();
    std::string err;
    if (fd < 0) {
      fd = connect_to(host_, port_, err);
      if (fd >= 0) {
        ++connects_;
        backoff = std::chrono::milliseconds(250);
      }
    }
    size_t off = 0;
    while (fd >= 0 && off < chunk.size()) {
      ssize_t w = ::send(fd, chunk.data() + off, chunk.size() - off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        err = std::strerror(errno);
        ::close(fd);
        fd = -1;
        break;
      }
      off += size_t(w);
    }
    lk.lock();
    if (fd >= 0) {
      sent_ += c.points;
      if (!queue_.empty() && queue_.front().id == c.id) {  // not dropped meanwhile
        queued_bytes_ -= queue_.front().lines.size();
        queue_.pop_front();
      }
      continue;
    }
    ++errors_;
    spdlog::warn("metrics: carbon relay to {}: {} (retrying in {} ms)", upstream_, err, backoff.count());
    cv_.wait_for(lk, backoff, [&] { return !running_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
  }
  if (fd >= 0) ::close(fd);
}

CarbonRelayStats CarbonRelay::stats() const {
  CarbonRelayStats s;
  {
    std::lock_guard<std::mutex> lk(mu_);
    s.queued_bytes = queued_bytes_;
  }
  s.points_sent = sent_;
  s.points_dropped = dropped_;
  s.connects = connects_;
  s.errors = errors_;
  return s;
}

}  // namespace stele::metrics
