// AsyncSignal: coroutines wait until notify() or a timeout. Single-threaded:
// use from the io_context thread that owns it.
#pragma once
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
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

 private:
  boost::asio::any_io_executor ex_;
  std::vector<std::weak_ptr<boost::asio::steady_timer>> waiters_;
};

// co_await sleep_for(d) on the current executor.
boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d);

}  // namespace stele::net
