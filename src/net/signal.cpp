#include "net/signal.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace stele::net {

namespace asio = boost::asio;

void AsyncSignal::notify() {
  ++generation_;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters)
    if (auto t = w.lock()) t->cancel();
}

asio::awaitable<void> AsyncSignal::wait(std::chrono::milliseconds timeout) {
  auto t = std::make_shared<asio::steady_timer>(ex_, timeout);
  waiters_.push_back(t);
  boost::system::error_code ec;
  co_await t->async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> AsyncSignal::wait_since(uint64_t seen, std::chrono::milliseconds timeout) {
  if (generation_ != seen) co_return;
  co_await wait(timeout);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace stele::net
