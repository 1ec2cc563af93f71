// AsyncSignal: coroutines wait until notify() or a timeout. Single-threaded:
// use from the io_context thread that owns it.
#pragma once
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace stele::net {

class AsyncSignal {
 public:
  explicit AsyncSignal(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  // Wakes every current waiter.
  void notify();
  // Returns after notify() or `timeout`, whichever comes first.
  boost::asio::awaitable<void> wait(std::chrono::milliseconds timeout);
  // How many notify() calls so far. A loop that reads its work and then
  // suspends (writing it out) before it waits would miss a notify() made
  // meanwhile: it takes generation() before reading and waits with
  // wait_since(), which returns at once when a notify() came in between.
  uint64_t generation() const { return generation_; }
  boost::asio::awaitable<void> wait_since(uint64_t seen, std::chrono::milliseconds timeout);

 private:
  boost::asio::any_io_executor ex_;
  uint64_t generation_ = 0;
  std::vector<std::weak_ptr<boost::asio::steady_timer>> waiters_;
};

// co_await sleep_for(d) on the current executor.
boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d);

}  // namespace stele::net
