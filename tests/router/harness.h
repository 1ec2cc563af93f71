// Test harness for the router: blocking-socket HTTP backends and clients on
// 127.0.0.1 (threads, so a backend can hang or trickle without an event
// loop), and a Proxy running on its own io thread.
#pragma once
#include <utility>  // before asio, for g++ 12

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "router/http1.h"
#include "router/proxy.h"
#include "router/route_table.h"

namespace stele::router::test {

using namespace std::chrono_literals;

inline int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};  // no test waits this long for a byte
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A port nobody listens on (bound, then closed).
inline uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Chunked payload -> data (the test's own decoder, independent of the proxy's).
inline std::string dechunk(std::string_view in) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t eol = in.find("\r\n", at);
    if (eol == std::string_view::npos) return out + "<bad chunking>";
    size_t n = std::stoul(std::string(in.substr(at, eol - at)), nullptr, 16);
    if (n == 0) return out;
    out += in.substr(eol + 2, n);
    at = eol + 2 + n + 2;
  }
}

// Reads one HTTP message head + body from fd, `buf` holding bytes already
// read (and keeping the bytes after this message).
struct Message {
  int status = 0;  // responses
  std::string method, target;
  int minor = 1;
  std::map<std::string, std::string> headers;  // lower-cased names, last value
  std::vector<std::pair<std::string, std::string>> all_headers;
  std::string body;      // de-chunked
  std::string raw_body;  // as received
  bool chunked = false;
  bool ok = false;
  std::string header(const std::string& n) const {
    auto it = headers.find(n);
    return it == headers.end() ? "" : it->second;
  }
};

inline bool fill(int fd, std::string& buf) {
  char tmp[65536];
  ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

inline void take_headers(Message& m, const http1::Header* hs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    std::string name(hs[i].name);
    for (auto& c : name) c = static_cast<char>(tolower(c));
    m.headers[name] = std::string(hs[i].value);
    m.all_headers.emplace_back(name, std::string(hs[i].value));
  }
}

inline bool read_body(int fd, std::string& buf, const http1::MessageInfo& info, Message& m) {
  if (info.body == http1::BodyKind::kLength) {
    while (buf.size() < info.length)
      if (!fill(fd, buf)) return false;
    m.raw_body = buf.substr(0, info.length);
    buf.erase(0, info.length);
  } else if (info.body == http1::BodyKind::kChunked) {
    http1::ChunkedDecoder dec;
    for (;;) {
      http1::ChunkedDecoder::Status st;
      size_t used = dec.feed(std::string_view(buf).substr(m.raw_body.size()), st);
      m.raw_body.append(buf, m.raw_body.size(), used);
      if (st == http1::ChunkedDecoder::Status::kDone) break;
      if (st == http1::ChunkedDecoder::Status::kError || !fill(fd, buf)) return false;
    }
    buf.erase(0, m.raw_body.size());
    m.chunked = true;
  } else if (info.body == http1::BodyKind::kUntilClose) {
    while (fill(fd, buf)) {
    }
    m.raw_body = std::move(buf);
    buf.clear();
  }
  m.body = m.chunked ? dechunk(m.raw_body) : m.raw_body;
  return true;
}

inline Message read_response(int fd, std::string& buf, bool head_request = false) {
  Message m;
  auto h = std::make_unique<http1::ResponseHead>();
  size_t scanned = 0;
  http1::ParseError err;
  for (;;) {
    auto st = http1::parse_response(buf, 1 << 20, scanned, *h, err);
    if (st == http1::ParseStatus::kDone) break;
    if (st == http1::ParseStatus::kError || !fill(fd, buf)) return m;
  }
  m.status = h->status;
  m.minor = h->minor_version;
  take_headers(m, h->headers, h->num_headers);
  http1::MessageInfo info;
  http1::response_info(*h, head_request, info, err);
  buf.erase(0, h->head_len);
  m.ok = read_body(fd, buf, info, m);
  return m;
}

inline Message read_request(int fd, std::string& buf) {
  Message m;
  auto h = std::make_unique<http1::RequestHead>();
  size_t scanned = 0;
  http1::ParseError err;
  for (;;) {
    auto st = http1::parse_request(buf, 1 << 20, scanned, *h, err);
    if (st == http1::ParseStatus::kDone) break;
    if (st == http1::ParseStatus::kError || !fill(fd, buf)) return m;
  }
  m.method = std::string(h->method);
  m.target = std::string(h->target);
  m.minor = h->minor_version;
  take_headers(m, h->headers, h->num_headers);
  http1::MessageInfo info;
  http1::request_info(*h, info, err);
  buf.erase(0, h->head_len);
  m.ok = read_body(fd, buf, info, m);
  return m;
}

// One request on a new connection; the response.
inline Message fetch(uint16_t port, const std::string& raw, bool head_request = false) {
  int fd = connect_to(port);
  if (fd < 0) return {};
  send_all(fd, raw);
  std::string buf;
  Message m = read_response(fd, buf, head_request);
  ::close(fd);
  return m;
}

inline std::string get(std::string_view host, std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra) + "\r\n";
}

// What a backend does with a request.
struct Reply {
  enum class Mode { kNormal, kHang, kUpgradeEcho, kCloseSilently };
  std::string raw;  // the whole response
  Mode mode = Mode::kNormal;
  std::chrono::milliseconds delay{0};
  bool close_after = false;
};

inline std::string ok_response(std::string_view body, std::string_view extra = "") {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra) + "\r\n" +
         std::string(body);
}

// A threaded HTTP/1.1 backend on 127.0.0.1 with keep-alive. By default it
// answers 200 with its name as the body.
class Backend {
 public:
  using Handler = std::function<Reply(const Message&)>;

  explicit Backend(std::string name, Handler h = {}) : name_(std::move(name)), handler_(std::move(h)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 128);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Backend() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    {
      std::lock_guard lk(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    acceptor_.join();
    for (auto& t : conns_) t.join();
    for (int fd : open_fds_) ::close(fd);
  }

  std::vector<Message> requests() {
    std::lock_guard lk(mu_);
    return received_;
  }
  Message last() {
    std::lock_guard lk(mu_);
    return received_.empty() ? Message{} : received_.back();
  }

  uint16_t port = 0;
  std::atomic<int> accepts{0};
  std::atomic<int> active{0};  // requests being handled now

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      if (stopping_) {
        ::close(fd);
        return;
      }
      ++accepts;
      std::lock_guard lk(mu_);
      open_fds_.push_back(fd);
      conns_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buf;
    for (;;) {
      Message m = read_request(fd, buf);
      if (!m.ok) break;
      {
        std::lock_guard lk(mu_);
        received_.push_back(m);
      }
      ++active;
      Reply r = handler_ ? handler_(m) : Reply{ok_response(name_)};
      if (r.delay.count()) std::this_thread::sleep_for(r.delay);
      --active;
      if (r.mode == Reply::Mode::kCloseSilently) break;
      if (r.mode == Reply::Mode::kHang) {
        while (!stopping_) std::this_thread::sleep_for(10ms);
        break;
      }
      if (!send_all(fd, r.raw)) break;
      if (r.mode == Reply::Mode::kUpgradeEcho) {
        std::string echo = std::move(buf);
        for (;;) {
          if (!echo.empty() && !send_all(fd, echo)) break;
          echo.clear();
          if (!fill(fd, echo)) break;
        }
        break;
      }
      if (r.close_after || m.header("connection") == "close") break;
    }
    ::shutdown(fd, SHUT_RDWR);
  }

  std::string name_;
  Handler handler_;
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<int> open_fds_;
  std::vector<Message> received_;
  std::atomic<bool> stopping_{false};
};

inline ProxyOptions fast_options() {
  ProxyOptions o;
  o.header_timeout = 400ms;
  o.keepalive_timeout = 2s;
  o.idle_timeout = 2s;
  o.connect_timeout = 500ms;
  o.response_timeout = 500ms;
  o.pool_idle_timeout = 2s;
  o.sweep_interval = 20ms;
  return o;
}

inline Instance instance(std::string task, uint16_t port, bool healthy = true) {
  Instance in;
  in.task = std::move(task);
  in.host = "127.0.0.1";
  in.ports = {port};
  in.healthy = healthy;
  return in;
}

inline Route route(std::string host, std::string path, std::string app, Balance b = Balance::kRoundRobin) {
  Route r;
  r.host = std::move(host);
  r.path = std::move(path);
  r.app = std::move(app);
  r.balance = b;
  return r;
}

inline RouteTable make_table(uint64_t version, std::vector<Route> routes, RouteTable::Apps apps) {
  auto t = RouteTable::make(version, std::move(routes), std::move(apps));
  EXPECT_TRUE(t) << t.error().message;
  return t ? std::move(*t) : RouteTable();
}

// A Proxy on 127.0.0.1:0 served by its own thread, collecting access lines.
class ProxyHarness {
 public:
  explicit ProxyHarness(ProxyOptions o = fast_options()) : proxy(io, o) {
    auto bound = proxy.listen("127.0.0.1:0");
    EXPECT_TRUE(bound) << bound.error().message;
    port = static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1)));
    proxy.set_access_log([this](const AccessRecord& r) {
      std::lock_guard lk(mu_);
      lines_.push_back(format_ltsv(r));
    });
    thread_ = std::thread([this] { io.run(); });
  }
  ~ProxyHarness() {
    proxy.stop();
    io.stop();
    thread_.join();
  }

  void set_table(RouteTable t) {
    uint64_t v = t.version();
    proxy.set_table(std::move(t));
    for (int i = 0; i < 500 && proxy.applied_version() != v; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(proxy.applied_version(), v);
  }

  // Runs f on the io thread and returns its result.
  template <class F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    boost::asio::post(io, [&task] { task(); });
    return fut.get();
  }

  // The access lines so far, after waiting up to a second for `at_least`
  // (a line is written after its response, so it may trail the client).
  std::vector<std::string> lines(size_t at_least = 0) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lk(mu_);
        if (lines_.size() >= at_least) return lines_;
      }
      std::this_thread::sleep_for(1ms);
    }
    std::lock_guard lk(mu_);
    return lines_;
  }

  boost::asio::io_context io;
  Proxy proxy;
  uint16_t port = 0;

 private:
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace stele::router::test
