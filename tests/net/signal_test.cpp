// AsyncSignal: a notify() made while the waiter was busy elsewhere (between
// reading its work and waiting) is not lost when it waits with wait_since().
#include "net/signal.h"

#include <gtest/gtest.h>

#include <chrono>
#include <utility>  // before asio, for g++ 12

#include <boost/asio/this_coro.hpp>

#include "../common/run_awaitable.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using stele::net::AsyncSignal;

stele::net::awaitable<double> waited_ms(bool notify_between, bool use_generation) {
  AsyncSignal sig(co_await boost::asio::this_coro::executor);
  uint64_t seen = sig.generation();
  if (notify_between) sig.notify();  // no waiter yet: the loop is busy writing
  auto t0 = Clock::now();
  if (use_generation) co_await sig.wait_since(seen, 300ms);
  else co_await sig.wait(300ms);
  co_return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

TEST(AsyncSignal, WaitSinceReturnsAtOnceAfterANotifyItWasNotWaitingFor) {
  EXPECT_LT(stele::test::run(waited_ms(true, true)), 50);
  EXPECT_GE(stele::test::run(waited_ms(false, true)), 250);  // nothing new: the timeout
  EXPECT_GE(stele::test::run(waited_ms(true, false)), 250);  // plain wait(): that notify is lost
}

}  // namespace
