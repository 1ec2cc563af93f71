#include "logs/forward_server.h"

#include <utility>  // before Asio with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <spdlog/spdlog.h>

#include "net/http.h"         // awaitable
#include "net/http_server.h"  // split_host_port
#include "net/offload.h"      // worker_pool

namespace stele::logs {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using net::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

// Requests decoded ahead while earlier ones are being stored are bounded per
// connection and server-wide: back-pressure on the peers once our disk is the
// bottleneck. A connection with nothing in flight may always take one request
// (at most max_request_bytes, as before decoding ahead existed).
constexpr size_t kMaxInFlight = 8;
constexpr size_t kMaxInFlightBytes = 16u << 20;
constexpr size_t kMaxServerInFlightBytes = 256u << 20;
// The group writer compacts the store on its own after this long idle.
constexpr auto kIdleCompaction = std::chrono::milliseconds(20);

std::string random_nonce() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) s.push_back(hex[rng() % 16]);
  return s;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string endpoint_text(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

// The store's one writer thread, doing group commit: it takes every request
// queued at that moment (from all connections), stores them with one
// LogStore::append_batch (one write + fdatasync per stream file) and hands
// each request its own result. Requests are stored in the order they were
// submitted. Block compression rides along the next batch's fdatasync
// (append_batch does it); only after kIdleCompaction without requests does
// the writer compact on its own. submit() never blocks on the store.
class GroupWriter {
 public:
  struct Completion {
    virtual ~Completion() = default;
    virtual void complete(Result<AppendResult> r) = 0;
  };
  struct Job {
    AppendRequest request;  // views stay valid until `done` is completed or destroyed
    std::unique_ptr<Completion> done;
    bool relay = false;     // an external sender's records: relayed once stored
  };

  GroupWriter(LogStore& store, std::function<void(std::span<const LogEntry>)> relay)
      : store_(store), relay_(std::move(relay)), thread_([this] { run(); }) {}
  ~GroupWriter() { shutdown(); }

  void submit(Job job) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        queue_.push_back(std::move(job));
        cv_.notify_one();
        return;
      }
    }
    job.done->complete(fail("forward input is shutting down"));
  }
  // Stores what is queued, then joins the thread. Idempotent.
  void shutdown() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::vector<Job> batch;
    std::vector<AppendRequest> requests;
    for (;;) {
      bool owed = store_.compaction_owed();  // not under mu_: submit() must never wait for the store
      {
        std::unique_lock lock(mu_);
        auto ready = [this] { return stopping_ || !queue_.empty(); };
        // Compaction rides along the next batch's fdatasync; only an idle
        // writer does it alone.
        if (!ready() && owed && !cv_.wait_for(lock, kIdleCompaction, ready)) {
          lock.unlock();
          store_.compact();
          continue;
        }
        cv_.wait(lock, ready);
        if (queue_.empty()) return;
        batch.swap(queue_);
      }
      requests.clear();
      for (const Job& j : batch) requests.push_back(j.request);
      auto results = store_.append_batch(requests);
      // Relayed before the ack; a resent chunk (duplicate) was relayed the first time.
      for (size_t i = 0; i < batch.size(); ++i)
        if (relay_ && batch[i].relay && results[i] && results[i]->stored > 0) relay_(batch[i].request.entries);
      for (size_t i = 0; i < batch.size(); ++i) batch[i].done->complete(std::move(results[i]));
      batch.clear();
    }
  }

  LogStore& store_;
  std::function<void(std::span<const LogEntry>)> relay_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Job> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::thread thread_;
};

// One events request between decode and ack. Its records are copied out of
// the decoder's buffer, so the connection decodes on while they are stored.
struct InFlight {
  std::string bytes;                 // the tags and records `entries` view
  std::vector<LogEntry> entries;
  std::string tag;                   // of the request, for messages
  std::optional<std::string> chunk;  // present: the sender wants an ack
  bool json = false;                 // ack in JSON
  bool done = false;                 // `result` is final
  Result<AppendResult> result;
  size_t cost() const { return bytes.size() + entries.size() * sizeof(LogEntry); }
};

// Copies the request's entries; entries without a time get the time of receipt.
std::shared_ptr<InFlight> copy_request(const ForwardMessage& m) {
  auto f = std::make_shared<InFlight>();
  auto same = [](std::string_view a, std::string_view b) { return a.data() == b.data() && a.size() == b.size(); };
  size_t total = 0;
  std::string_view prev;
  for (const auto& e : m.entries) {
    if (!same(e.tag, prev)) total += e.tag.size(), prev = e.tag;
    total += e.record.size();
  }
  f->bytes.reserve(total);  // never reallocated below: the views stay valid
  f->entries.reserve(m.entries.size());
  int64_t now = 0;
  std::string_view tag;
  prev = {};
  for (const auto& e : m.entries) {
    if (!same(e.tag, prev)) {
      prev = e.tag;
      tag = std::string_view(f->bytes.data() + f->bytes.size(), e.tag.size());
      f->bytes.append(e.tag);
    }
    std::string_view rec(f->bytes.data() + f->bytes.size(), e.record.size());
    f->bytes.append(e.record);
    int64_t t = e.time_ns != 0 ? e.time_ns : now != 0 ? now : (now = now_ns());
    f->entries.push_back({tag, t, rec});
  }
  f->tag = m.tag;
  if (m.options.chunk) f->chunk = std::string(*m.options.chunk);
  f->json = m.json;
  return f;
}

// One connection: its socket, the requests it has in flight (in request
// order), and deadlines watched by a timer. io thread only.
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(tcp::socket s)
      : sock(std::move(s)), timer(sock.get_executor()), wake_acks(sock.get_executor()), wake_reader(sock.get_executor()) {}
  tcp::socket sock;  // the connection; moved into `tls` by a TLS input's handshake
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;
  asio::steady_timer timer;        // the watchdog's
  asio::steady_timer wake_acks;    // cancelled when an in-flight request is done (the ack loop waits on it)
  asio::steady_timer wake_reader;  // cancelled when one left the queue (the reader waits on it for room)
  Clock::time_point read_deadline = Clock::time_point::max();   // while waiting for the peer's bytes
  Clock::time_point write_deadline = Clock::time_point::max();  // while writing to the peer
  std::string peer;
  std::deque<std::shared_ptr<InFlight>> inflight;
  size_t inflight_bytes = 0;

  void set_read_deadline(Clock::time_point t) { read_deadline = t, timer.cancel(); }
  void set_write_deadline(Clock::time_point t) { write_deadline = t, timer.cancel(); }
  bool has_room(size_t server_bytes) const {
    return inflight.empty() || (inflight.size() < kMaxInFlight && inflight_bytes < kMaxInFlightBytes &&
                                server_bytes < kMaxServerInFlightBytes);
  }
  tcp::socket& lowest() { return tls ? tls->next_layer() : sock; }
  void close() {
    boost::system::error_code ec;
    lowest().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close(ec);
    timer.cancel();
    wake_acks.cancel();
    wake_reader.cancel();
  }
};

// Waits until `t` is cancelled: an event without payload, so re-check state after.
awaitable<void> wait_for_poke(asio::steady_timer& t) {
  t.expires_at(Clock::time_point::max());
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Completes a stored request on the io thread and wakes its connection's ack loop.
struct StoredDone : GroupWriter::Completion {
  StoredDone(std::shared_ptr<InFlight> f, std::shared_ptr<Connection> c) : f(std::move(f)), c(std::move(c)) {}
  void complete(Result<AppendResult> r) override {
    auto ex = c->wake_acks.get_executor();
    asio::post(ex, [f = std::move(f), c = std::move(c), r = std::move(r)]() mutable {
      f->result = std::move(r);
      f->done = true;
      c->wake_acks.cancel();
    });
  }
  std::shared_ptr<InFlight> f;
  std::shared_ptr<Connection> c;
};

struct ForwardServer::Impl : std::enable_shared_from_this<ForwardServer::Impl> {
  Impl(asio::io_context& io, LogStore& store, ForwardServerOptions o)
      : io(io), store(store), opt(std::move(o)), acceptor(io), udp_sock(io) {}

  asio::io_context& io;
  LogStore& store;
  ForwardServerOptions opt;
  tcp::acceptor acceptor;
  udp::socket udp_sock;
  GroupWriter writer{store, opt.relay};  // the store's single writer: appends group-committed there
  std::string bound;
  bool stopped = false;
  std::set<std::shared_ptr<Connection>> conns;  // io thread only
  size_t inflight_bytes = 0;                     // of every connection's requests in flight; io thread only
  Stats stats;

  Result<std::string> bind();
  awaitable<void> accept_loop();
  awaitable<void> heartbeat_loop();
  awaitable<void> watchdog(std::shared_ptr<Connection> c);
  awaitable<void> session(std::shared_ptr<Connection> c);
  awaitable<bool> serve(Connection& c, ForwardDecoder& dec, const std::string& nonce, bool& authed);
  awaitable<bool> handle(Connection& c, const ForwardMessage& m, const std::string& nonce, bool& authed);
  awaitable<bool> handle_events(Connection& c, const ForwardMessage& m);
  awaitable<void> ack_loop(std::shared_ptr<Connection> c);
  awaitable<bool> wait_for_room(Connection& c);
  awaitable<bool> drain(Connection& c);
  void release_inflight(size_t bytes);
  awaitable<bool> send(Connection& c, std::string bytes);
  awaitable<bool> handshake_tls(Connection& c);
  bool refuse(Connection& c, const std::string& why);
};

Result<std::string> ForwardServer::Impl::bind() {
  auto hp = net::split_host_port(opt.listen);
  if (!hp) return fail(hp.error().message);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(hp->first, ec);
  if (ec) return fail("'" + hp->first + "' is not an IP address");
  // An ephemeral TCP port may be taken on UDP: then try another one.
  for (int attempt = 0; attempt < 8; ++attempt) {
    tcp::endpoint ep(addr, hp->second);
    acceptor = tcp::acceptor(io);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("cannot listen on " + opt.listen + " (tcp): " + ec.message());
    uint16_t port = acceptor.local_endpoint().port();
    udp_sock = udp::socket(io);
    udp_sock.open(addr.is_v6() ? udp::v6() : udp::v4(), ec);
    if (!ec) udp_sock.bind(udp::endpoint(addr, port), ec);
    if (!ec) return endpoint_text(acceptor.local_endpoint());
    acceptor.close();
    if (hp->second != 0) return fail("cannot listen on " + opt.listen + " (udp heartbeat): " + ec.message());
  }
  return fail("cannot listen on " + opt.listen + ": no port free on both tcp and udp");
}

awaitable<void> ForwardServer::Impl::accept_loop() {
  auto self = shared_from_this();
  while (!stopped) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      spdlog::warn("forward: accept on {}: {}", bound, ec.message());
      continue;
    }
    auto c = std::make_shared<Connection>(std::move(sock));
    boost::system::error_code pec;
    auto ep = c->sock.remote_endpoint(pec);
    c->peer = pec ? std::string("?") : endpoint_text(ep);
    c->sock.set_option(tcp::no_delay(true), pec);
    conns.insert(c);
    ++stats.connections;
    asio::co_spawn(io, watchdog(c), asio::detached);
    asio::co_spawn(io, ack_loop(c), asio::detached);
    asio::co_spawn(io, session(c), asio::detached);
  }
}

// Fluentd's in_forward answers each heartbeat datagram with "\0".
awaitable<void> ForwardServer::Impl::heartbeat_loop() {
  auto self = shared_from_this();
  char buf[256];
  static const char kAnswer[1] = {0};
  while (!stopped) {
    udp::endpoint from;
    boost::system::error_code ec;
    co_await udp_sock.async_receive_from(asio::buffer(buf), from, asio::redirect_error(asio::use_awaitable, ec));
    if (stopped || ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. ICMP unreachable from an earlier answer
    co_await udp_sock.async_send_to(asio::buffer(kAnswer), from, asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Closes the connection once a deadline passes (reads idle, writes stuck).
awaitable<void> ForwardServer::Impl::watchdog(std::shared_ptr<Connection> c) {
  while (c->lowest().is_open()) {
    c->timer.expires_at(std::min(c->read_deadline, c->write_deadline));
    boost::system::error_code ec;
    co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!c->lowest().is_open()) co_return;
    auto now = Clock::now();
    if (now >= c->write_deadline) {
      spdlog::info("forward: {}: closing connection: a write took longer than {} s", c->peer, opt.write_timeout.count());
    } else if (now >= c->read_deadline) {
      spdlog::info("forward: {}: closing idle connection", c->peer);
    } else {
      continue;
    }
    c->close();
    co_return;
  }
}

bool ForwardServer::Impl::refuse(Connection& c, const std::string& why) {
  spdlog::warn("forward: {}: closing connection: {}", c.peer, why);
  ++stats.closed_on_error;
  return false;
}

awaitable<bool> ForwardServer::Impl::send(Connection& c, std::string bytes) {
  c.set_write_deadline(Clock::now() + opt.write_timeout);
  boost::system::error_code ec;
  if (c.tls) co_await asio::async_write(*c.tls, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  else co_await asio::async_write(c.sock, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  c.set_write_deadline(Clock::time_point::max());
  co_return !ec;
}

// A TLS input: the handshake under the write deadline (the watchdog closes a
// peer that stalls it); a failed one (plain forward, a client that does not
// trust the certificate) closes the connection with a warning.
awaitable<bool> ForwardServer::Impl::handshake_tls(Connection& c) {
  c.tls = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(c.sock), *opt.tls);
  c.set_write_deadline(Clock::now() + opt.write_timeout);
  boost::system::error_code ec;
  co_await c.tls->async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  c.set_write_deadline(Clock::time_point::max());
  if (ec) co_return refuse(c, "TLS handshake failed: " + ec.message());
  co_return true;
}

awaitable<void> ForwardServer::Impl::session(std::shared_ptr<Connection> c) {
  auto self = shared_from_this();
  ForwardLimits limits;
  limits.max_request_bytes = opt.max_request_bytes;
  ForwardDecoder dec(limits);
  bool authed = opt.shared_key.empty();
  std::string nonce;
  bool ok = true;
  if (opt.tls) ok = co_await handshake_tls(*c);
  if (ok && !authed) {
    nonce = random_nonce();
    std::string helo = encode_helo(nonce, "", true);
    ok = co_await send(*c, std::move(helo));
  }
  if (ok) co_await serve(*c, dec, nonce, authed);
  c->close();
  conns.erase(c);
  release_inflight(c->inflight_bytes);  // what the ack loop will not pop any more (still stored, unacked)
  c->inflight_bytes = 0;
  c->inflight.clear();
}

void ForwardServer::Impl::release_inflight(size_t bytes) {
  bool was_full = inflight_bytes >= kMaxServerInFlightBytes;
  inflight_bytes -= bytes;
  if (was_full && inflight_bytes < kMaxServerInFlightBytes)
    for (const auto& other : conns) other->wake_reader.cancel();  // some may wait for the server-wide budget
}

// Sends the acks of the connection's requests in request order, each once its
// records are stored; the first refused request closes the connection. The
// only writer to the socket while requests are in flight (HELO and PONG go
// out before any events are accepted).
awaitable<void> ForwardServer::Impl::ack_loop(std::shared_ptr<Connection> c) {
  auto self = shared_from_this();
  while (c->lowest().is_open()) {
    if (c->inflight.empty() || !c->inflight.front()->done) {
      co_await wait_for_poke(c->wake_acks);
      continue;
    }
    std::string acks;  // every ack that is ready goes out in one write
    while (!c->inflight.empty() && c->inflight.front()->done) {
      std::shared_ptr<InFlight> f = std::move(c->inflight.front());
      c->inflight.pop_front();
      c->inflight_bytes -= f->cost();
      release_inflight(f->cost());
      if (!f->result) {
        if (!acks.empty()) co_await send(*c, std::move(acks));
        refuse(*c, "store refused " + std::to_string(f->entries.size()) + " record(s) of tag '" + f->tag +
                       "': " + f->result.error().message);
        c->close();
        co_return;
      }
      stats.records += f->result->stored;
      stats.duplicates += f->result->duplicates;
      if (f->chunk) {
        acks += f->json ? encode_ack_json(*f->chunk) : encode_ack(*f->chunk);
        ++stats.acks;
      }
    }
    if (!acks.empty() && !stopped && !co_await send(*c, std::move(acks))) {
      c->close();
      co_return;
    }
    c->wake_reader.cancel();  // room for the reader's next request
  }
}

// Waits until the connection may take one more request in flight; false once closed.
awaitable<bool> ForwardServer::Impl::wait_for_room(Connection& c) {
  while (c.lowest().is_open() && !c.has_room(inflight_bytes)) co_await wait_for_poke(c.wake_reader);
  co_return c.lowest().is_open();
}

// Waits until every request in flight is stored and acked; false once closed.
awaitable<bool> ForwardServer::Impl::drain(Connection& c) {
  while (c.lowest().is_open() && !c.inflight.empty()) co_await wait_for_poke(c.wake_reader);
  co_return c.lowest().is_open();
}

// Reads and handles requests until the peer closes or a request is refused.
// Requests already decoded are acked before a refusal closes the connection.
awaitable<bool> ForwardServer::Impl::serve(Connection& c, ForwardDecoder& dec, const std::string& nonce,
                                           bool& authed) {
  for (;;) {
    for (;;) {
      if (!co_await wait_for_room(c)) co_return false;
      auto m = dec.next();
      if (!m) co_return co_await drain(c) && refuse(c, m.error().message);
      if (!*m) break;
      bool keep = co_await handle(c, **m, nonce, authed);
      if (!keep || stopped) co_return false;
    }
    auto space = dec.prepare(64 << 10);
    c.set_read_deadline(Clock::now() + opt.idle_timeout);
    boost::system::error_code ec;
    auto buf = asio::buffer(space.data(), space.size());
    size_t n = c.tls ? co_await c.tls->async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec))
                     : co_await c.sock.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
    c.set_read_deadline(Clock::time_point::max());  // from here on we wait for our own disk, not the peer
    dec.commit(n);
    if (ec) {
      if (dec.buffered() > 0 && ec == asio::error::eof) {
        // A partial request at EOF: decode what is complete, report the rest.
        auto m = dec.next();
        while (m && *m) {
          bool keep = co_await handle(c, **m, nonce, authed);
          if (!keep || !co_await wait_for_room(c)) co_return false;
          m = dec.next();
        }
        if (!m) co_return co_await drain(c) && refuse(c, m.error().message);
        if (dec.buffered() > 0)
          co_return co_await drain(c) &&
              refuse(c, "connection closed inside a request (" + std::to_string(dec.buffered()) + " bytes)");
      }
      co_return co_await drain(c);  // a sender that half-closed still gets its acks
    }
  }
}

awaitable<bool> ForwardServer::Impl::handle(Connection& c, const ForwardMessage& m, const std::string& nonce,
                                            bool& authed) {
  ++stats.requests;
  if (m.kind == ForwardKind::kPing) {
    if (opt.shared_key.empty()) co_return refuse(c, "PING without a handshake (no shared key configured)");
    if (authed) co_return co_await drain(c) && refuse(c, "second PING after authentication");
    auto v = verify_ping(m.ping, nonce, opt.shared_key);
    std::string pong = encode_pong(bool(v), v ? "" : v.error().message, opt.self_hostname, m.ping, nonce,
                                   opt.shared_key);
    bool sent = co_await send(c, std::move(pong));
    if (!v) co_return refuse(c, "handshake refused (" + v.error().message + ") from host '" +
                                    std::string(m.ping.hostname) + "'");
    authed = true;
    co_return sent;
  }
  if (m.kind != ForwardKind::kEvents)
    co_return co_await drain(c) && refuse(c, "unexpected handshake or ack message from a client");
  if (!authed) co_return refuse(c, "events before the shared-key handshake (PING expected)");
  co_return co_await handle_events(c, m);
}

// Queues the request behind the connection's earlier ones: records go to the
// group writer; the ack loop acks it in order once stored.
awaitable<bool> ForwardServer::Impl::handle_events(Connection& c, const ForwardMessage& m) {
  std::shared_ptr<InFlight> f;
  std::function<Result<void>()> make_durable;  // a signal request's durability wait
  if (m.options.fluent_signal.value_or(0) != 0) {
    std::string which = "fluent_signal " + std::to_string(*m.options.fluent_signal) + " request refused: ";
    if (!opt.signal_sink) co_return co_await drain(c) && refuse(c, which + "no sink for that signal on this server");
    auto r = opt.signal_sink(m);
    if (!r) co_return co_await drain(c) && refuse(c, which + r.error().message);
    make_durable = std::move(*r);
  } else if (!m.entries.empty()) {
    if (m.options.chunk && m.options.chunk->size() > LogStore::kMaxChunkIdBytes)  // refused before anything is stored
      co_return co_await drain(c) && refuse(c, "chunk id of " + std::to_string(m.options.chunk->size()) +
                                                   " bytes (at most " + std::to_string(LogStore::kMaxChunkIdBytes) + ")");
    f = copy_request(m);
  } else if (!m.payload.empty()) {
    co_return co_await drain(c) &&
        refuse(c, "PackedForward payload without entries for tag '" + std::string(m.tag) + "'");
  }
  if (!f) {  // nothing to store: acked in its turn
    f = std::make_shared<InFlight>();
    if (m.options.chunk) f->chunk = std::string(*m.options.chunk);
    f->json = m.json;
    f->done = true;
  }
  c.inflight.push_back(f);
  c.inflight_bytes += f->cost();
  inflight_bytes += f->cost();
  if (make_durable) {
    // Acked in its turn once the sink's store says the points are durable.
    f->done = false;
    auto done = std::make_shared<StoredDone>(f, c.shared_from_this());
    boost::asio::post(net::worker_pool(), [make_durable = std::move(make_durable), done] {
      auto r = make_durable();
      done->complete(r ? Result<AppendResult>(AppendResult{}) : Result<AppendResult>(fail(r.error())));
    });
  } else if (f->done) {
    c.wake_acks.cancel();
  } else {
    std::string_view chunk = f->chunk ? std::string_view(*f->chunk) : std::string_view{};
    writer.submit({AppendRequest{f->entries, chunk}, std::make_unique<StoredDone>(f, c.shared_from_this()),
                   !m.options.replicated});
  }
  co_return true;
}

ForwardServer::ForwardServer(asio::io_context& io, LogStore& store, ForwardServerOptions options)
    : impl_(std::make_shared<Impl>(io, store, std::move(options))) {}

ForwardServer::~ForwardServer() {
  stop();
  impl_->writer.shutdown();  // no append may outlive the decoder buffers it reads
}

Result<std::string> ForwardServer::start() {
  auto b = impl_->bind();
  if (!b) return fail("--forward-listen: " + b.error().message);
  impl_->bound = *b;
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  asio::co_spawn(impl_->io, impl_->heartbeat_loop(), asio::detached);
  return *b;
}

std::string ForwardServer::address() const { return impl_->bound; }

void ForwardServer::stop() {
  auto& i = *impl_;
  if (i.stopped) return;
  i.stopped = true;
  boost::system::error_code ec;
  i.acceptor.close(ec);
  i.udp_sock.close(ec);
  for (auto& c : i.conns) c->close();
}

ForwardServer::Stats ForwardServer::stats() const { return impl_->stats; }

}  // namespace stele::logs
